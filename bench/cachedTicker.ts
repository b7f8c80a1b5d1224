import autocannon from "autocannon"
import { startEmulator } from "../src/emulator/index.js"
import { fmt, freePort, startProcess, startServer, waitFor200 } from "./lib.js"

export interface LoadResult {
  readonly name: string
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly errors: number
  readonly non2xx: number
}

const load = async (name: string, url: string, seconds: number, headers: Record<string, string> = {}) => {
  const result = await autocannon({ url, connections: 64, duration: seconds, headers })
  return {
    name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx
  } satisfies LoadResult
}

const TICKER = "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT"

/**
 * Benchmark 1: requests per second and latency of a cached ticker, against a bare node:http server answering the
 * same pre-encoded JSON. Each variant is warmed up, then loaded for `seconds`.
 */
export const cachedTicker = async (seconds: number) => {
  const emulator = await startEmulator({ clock: "frozen" })
  const common = {
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
    TICKER_CACHE_TTL: "3600",
    CCXT_THROTTLE: "false"
  }
  const results: Array<LoadResult> = []
  try {
    const variants: ReadonlyArray<readonly [string, Record<string, string>]> = [
      ["server, memory cache", { REDIS_ENABLED: "false", RATE_LIMIT_ENABLED: "false" }],
      [
        "server, Redis cache",
        { REDIS_ENABLED: "true", REDIS_KEY_PREFIX: `bench-${Date.now()}:`, RATE_LIMIT_ENABLED: "false" }
      ],
      [
        "server, Redis cache + rate limit",
        {
          REDIS_ENABLED: "true",
          REDIS_KEY_PREFIX: `bench-rl-${Date.now()}:`,
          RATE_LIMIT_ENABLED: "true",
          RATE_LIMIT_REQUESTS: "1000000000"
        }
      ]
    ]
    let body = ""
    for (const [name, env] of variants) {
      const server = await startServer({ ...common, ...env })
      try {
        const first = await fetch(server.url + TICKER)
        body = await first.text()
        if (first.status !== 200) throw new Error(`warm-up failed: ${first.status} ${body}`)
        await load("warm-up", server.url + TICKER, 2)
        results.push(await load(name, server.url + TICKER, seconds))
      } finally {
        await server.stop()
      }
    }
    const port = await freePort()
    const baseline = startProcess(["bench/baseline-server.mjs"], {
      PORT: String(port),
      HOST: "127.0.0.1",
      BASELINE_BODY: body
    })
    try {
      const url = `http://127.0.0.1:${port}`
      await waitFor200(url, performance.now())
      await load("warm-up", url + TICKER, 2)
      results.unshift(await load("bare node:http, same bytes (baseline)", url + TICKER, seconds))
    } finally {
      await baseline.stop()
    }
    return results
  } finally {
    await emulator.close()
  }
}

export const cachedTickerTable = (results: ReadonlyArray<LoadResult>) => {
  const baseline = results[0]?.rps ?? NaN
  const rows = results.map(
    (r) =>
      `| ${r.name} | ${fmt(r.rps)} | ${fmt((r.rps / baseline) * 100)} % | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${r.errors + r.non2xx} |`
  )
  return [
    "| cached `/v1/markets/ticker` (64 connections) | requests/s | vs baseline | p50 ms | p99 ms | errors |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...rows
  ].join("\n")
}
