import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { startEmulator } from "../src/emulator/index.js"
import { freePort, median, sleep, startProcess, startServer } from "./lib.js"

const rssOf = (pid: number | undefined): number => {
  if (pid === undefined) return NaN
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const match = /VmRSS:\s+(\d+) kB/.exec(status)
  return match === null ? NaN : Number(match[1]) * 1024
}

export interface Received {
  readonly messages: number
  readonly p50: number
  readonly p99: number
}

interface Clients {
  /** Resolves once every client is connected. */
  readonly connected: Promise<void>
  /** Resolves with what the clients received while measuring: messages, and latency percentiles in ms. */
  readonly result: Promise<Received>
  readonly stop: () => void
}

/** The load generator (bench/fanout-clients.mjs) in its own process, so it shares no event loop with the others. */
export const runClients = (env: Record<string, string>): Clients => {
  const child = spawn(process.execPath, ["bench/fanout-clients.mjs"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"]
  })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const next = async () => {
    const line = await lines.next()
    if (line.done === true) throw new Error("the fan-out clients exited early")
    return JSON.parse(line.value) as Record<string, unknown>
  }
  const connected = next().then(() => undefined)
  const result = connected.then(async () => (await next()) as unknown as Received)
  // a client stopped before it reported (the warm-up one) is not an error of the benchmark
  result.catch(() => undefined)
  return { connected, result, stop: () => void child.kill() }
}

export const summarize = (received: Received, seconds: number) => ({
  perSecond: received.messages / seconds,
  p50: received.p50,
  p99: received.p99
})

export type Summary = ReturnType<typeof summarize>

export const medianOf = (runs: ReadonlyArray<Summary>) => ({
  perSecond: median(runs.map((r) => r.perSecond)),
  p50: median(runs.map((r) => r.p50)),
  p99: median(runs.map((r) => r.p99))
})

/**
 * Benchmark 3: `ws` and SSE subscribers on one symbol of the live emulator. Latency is the time from the exchange's
 * event (its timestamp) to the client; the baseline is a bare `ws` server process broadcasting a same-shaped payload
 * to the same number of clients at the same rate. Server, baseline, clients and emulator are separate processes
 * (the emulator in this one). Server and baseline are measured in turn, `rounds` times: a tail percentile on a
 * shared machine moves from run to run, so each round is reported and the figures are their medians. Memory is read
 * in the first round.
 */
export const fanout = async (wsClients: number, sseClients: number, seconds: number, rounds: number) => {
  const pushMs = 250
  const settleMs = 3000
  const emulator = await startEmulator({ clock: "live", startTime: Date.now(), wsPushIntervalMs: pushMs })
  const server = await startServer({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
    REDIS_ENABLED: "false",
    RATE_LIMIT_ENABLED: "false",
    CCXT_THROTTLE: "false",
    STREAM_HEARTBEAT_INTERVAL: "30"
  })
  const port = await freePort()
  const bare = startProcess(["bench/ws-baseline-server.mjs"], { PORT: String(port), PUSH_MS: String(pushMs) })
  const query = "exchange=binance&symbol=BTC/USDT&threshold=0"
  let warm: Clients | undefined
  try {
    // one subscriber first, so that the upstream and its buffers exist before the baseline RSS is read
    warm = runClients({
      WS_CLIENTS: "1",
      SSE_CLIENTS: "0",
      WS_URL: `${server.url.replace("http", "ws")}/ws/ticker?${query}`,
      SECONDS: String(rounds * (seconds * 2 + 30)),
      SETTLE_MS: "0"
    })
    await warm.connected
    await sleep(2_000)
    const served: Array<Summary> = []
    const baseline: Array<Summary> = []
    let bytesPerSubscriber = NaN
    let upstreamSubscriptions = NaN
    for (let round = 0; round < rounds; round++) {
      const rssBefore = rssOf(server.process.pid)
      const clients = runClients({
        WS_CLIENTS: String(wsClients),
        SSE_CLIENTS: String(sseClients),
        WS_URL: `${server.url.replace("http", "ws")}/ws/ticker?${query}`,
        SSE_URL: `${server.url}/v1/stream/ticker?${query}`,
        SECONDS: String(seconds),
        SETTLE_MS: String(settleMs)
      })
      await clients.connected
      await sleep(settleMs + (seconds * 1000) / 2)
      if (round === 0) {
        bytesPerSubscriber = (rssOf(server.process.pid) - rssBefore) / (wsClients + sseClients)
        upstreamSubscriptions = emulator.wsSubscriptions("binance")
      }
      served.push(summarize(await clients.result, seconds))

      const baselineClients = runClients({
        WS_CLIENTS: String(wsClients + sseClients),
        SSE_CLIENTS: "0",
        WS_URL: `ws://127.0.0.1:${port}`,
        SECONDS: String(seconds),
        SETTLE_MS: "1000"
      })
      baseline.push(summarize(await baselineClients.result, seconds))
    }
    return {
      wsClients,
      sseClients,
      seconds,
      pushMs,
      rounds: { served, baseline },
      served: medianOf(served),
      baseline: medianOf(baseline),
      upstreamSubscriptions,
      bytesPerSubscriber
    }
  } finally {
    warm?.stop()
    await bare.stop()
    await server.stop()
    await emulator.close()
  }
}
