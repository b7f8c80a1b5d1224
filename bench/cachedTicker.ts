import autocannon from "autocannon"
import { readFileSync } from "node:fs"
import { startEmulator } from "../src/emulator/index.js"
import { fmt, freePort, median, startProcess, startServer, waitFor200 } from "./lib.js"

export interface LoadResult {
  readonly name: string
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
  /** CPU time of the serving process per answer, in µs, under a fixed request rate. */
  readonly cpuUs: number
}

/** The fixed rate of the CPU measurement: below what the slowest target answers, so every target serves all of it. */
export const FIXED_RATE = Number(process.env.BENCH_FIXED_RATE ?? 5000)

/** User + system CPU seconds of a process so far (Linux /proc; clock ticks of 10 ms). */
const cpuSeconds = (pid: number | undefined): number => {
  if (pid === undefined) return NaN
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/**
 * CPU per answer at a fixed rate: unlike requests/s at saturation, it does not depend on how the scheduler shares the
 * two cores between the load generator and the server, so it moves far less from run to run.
 */
const cpuPerAnswer = async (url: string, pid: number | undefined, seconds: number) => {
  const before = cpuSeconds(pid)
  const result = await autocannon({ url, connections: 64, duration: seconds, overallRate: FIXED_RATE })
  return ((cpuSeconds(pid) - before) * 1e6) / Math.max(1, result.requests.total)
}

const TICKER = "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT"

/** Node writes these itself on every answer, the baseline's too. */
const NODE_HEADERS: ReadonlySet<string> = new Set(["date", "connection", "keep-alive", "transfer-encoding"])

const answerHeaders = (response: Response): Record<string, string> =>
  Object.fromEntries([...response.headers].filter(([name]) => !NODE_HEADERS.has(name)))

const load = async (url: string, seconds: number) => {
  const result = await autocannon({ url, connections: 64, duration: seconds })
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx
  }
}

/**
 * Benchmark 1: requests per second and latency of a cached ticker, against a bare node:http server answering the
 * same pre-encoded JSON. All targets run at once and are loaded in turn, `rounds` times, so that the machine's
 * drift spreads over all of them; each figure is the median of its rounds.
 */
export const cachedTicker = async (seconds: number, rounds: number) => {
  const emulator = await startEmulator({ clock: "frozen" })
  const common = {
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
    TICKER_CACHE_TTL: "3600",
    CCXT_THROTTLE: "false"
  }
  const variants: ReadonlyArray<readonly [string, Record<string, string>]> = [
    [
      "server, default settings (Redis cache, rate limit on, request logs)",
      {
        REDIS_ENABLED: "true",
        REDIS_KEY_PREFIX: `bench-${Date.now()}:`,
        RATE_LIMIT_ENABLED: "true",
        RATE_LIMIT_REQUESTS: "1000000000",
        LOG_LEVEL: "info"
      }
    ],
    [
      "server, Redis cache, rate limit on, logs off",
      {
        REDIS_ENABLED: "true",
        REDIS_KEY_PREFIX: `bench-rl-${Date.now()}:`,
        RATE_LIMIT_ENABLED: "true",
        RATE_LIMIT_REQUESTS: "1000000000",
        LOG_LEVEL: "warn"
      }
    ],
    [
      "server, Redis cache, no rate limit, request logs",
      {
        REDIS_ENABLED: "true",
        REDIS_KEY_PREFIX: `bench-log-${Date.now()}:`,
        RATE_LIMIT_ENABLED: "false",
        LOG_LEVEL: "info"
      }
    ],
    ["server, memory cache, no rate limit, logs off", { REDIS_ENABLED: "false", RATE_LIMIT_ENABLED: "false" }]
  ]
  const servers: Array<{ name: string; url: string; pid: number | undefined; stop: () => Promise<void> }> = []
  try {
    let body = ""
    let headers: Record<string, string> | undefined
    for (const [name, env] of variants) {
      const server = await startServer({ ...common, ...env })
      servers.push({ name, url: server.url + TICKER, pid: server.process.pid, stop: server.stop })
      const first = await fetch(server.url + TICKER)
      body = await first.text()
      if (first.status !== 200) throw new Error(`warm-up failed: ${first.status} ${body}`)
      // the default server's cached answer as it goes out: the baseline sends the same headers
      if (headers === undefined) headers = answerHeaders(await fetch(server.url + TICKER))
    }
    const port = await freePort()
    const baseline = startProcess(["bench/baseline-server.mjs"], {
      PORT: String(port),
      HOST: "127.0.0.1",
      BASELINE_BODY: body,
      BASELINE_HEADERS: JSON.stringify(headers ?? {})
    })
    servers.unshift({
      name: "bare node:http, same status, headers and body (baseline)",
      url: `http://127.0.0.1:${port}${TICKER}`,
      pid: baseline.process.pid,
      stop: baseline.stop
    })
    await waitFor200(`http://127.0.0.1:${port}/`, performance.now())
    for (const s of servers) await load(s.url, 2)

    const samples = servers.map(() => [] as Array<Awaited<ReturnType<typeof load>>>)
    for (let round = 0; round < rounds; round++) {
      for (const [i, s] of servers.entries()) samples[i]?.push(await load(s.url, seconds))
    }
    const cpu = servers.map(() => [] as Array<number>)
    for (let round = 0; round < 3; round++) {
      for (const [i, s] of servers.entries()) cpu[i]?.push(await cpuPerAnswer(s.url, s.pid, seconds))
    }
    return servers.map((s, i): LoadResult => {
      const runs = samples[i] ?? []
      return {
        cpuUs: median(cpu[i] ?? []),
        name: s.name,
        rps: median(runs.map((r) => r.rps)),
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
        errors: runs.reduce((n, r) => n + r.errors, 0)
      }
    })
  } finally {
    for (const s of servers) await s.stop()
    await emulator.close()
  }
}

export const cachedTickerTable = (results: ReadonlyArray<LoadResult>) => {
  const baseline = results[0]?.rps ?? NaN
  const baselineCpu = results[0]?.cpuUs ?? NaN
  const rows = results.map(
    (r) =>
      `| ${r.name} | ${fmt(r.rps)} | ${fmt((r.rps / baseline) * 100)} % | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${r.errors} | ${fmt(r.cpuUs, 1)} | ${fmt((baselineCpu / r.cpuUs) * 100)} % |`
  )
  return [
    `| cached \`/v1/markets/ticker\`, 64 connections | requests/s | vs baseline | p50 ms | p99 ms | errors | CPU µs per answer at ${fmt(FIXED_RATE)}/s | CPU vs baseline |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows
  ].join("\n")
}
