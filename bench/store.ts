import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startEmulator } from "../src/emulator/index.js"
import { fmt, startServer } from "./lib.js"

const MINUTE = 60_000
const YEAR = 525_600
const KLINES = "/api/v3/klines"

/** Peak resident memory of a process (Linux), in MiB. */
const peakRssMiB = (pid: number | undefined): number => {
  if (pid === undefined) return NaN
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match?.[1] === undefined ? NaN : Number(match[1]) / 1024
  } catch {
    return NaN
  }
}

/** Reads a response to its end without keeping it; counts lines. */
const countLines = async (url: string): Promise<{ status: number; lines: number }> => {
  const res = await fetch(url)
  let lines = 0
  if (res.body !== null) {
    for await (const chunk of res.body) {
      for (const byte of chunk as Uint8Array) if (byte === 10) lines += 1
    }
  }
  return { status: res.status, lines }
}

export interface StoreScenario {
  readonly name: string
  readonly seconds: number
  readonly candles: number
  readonly exchangeRequests: number
  readonly apiRequests: number
  readonly peakRssMiB: number
}

/**
 * A year of 1m binance candles (525,600): paged by a client through /v1/markets/ohlcv with the store off (2,000 a
 * call, each call paged upstream), streamed from /v1/history/ohlcv into an empty store (fetched and stored), and
 * streamed again by a fresh server process from the stored file. Exchange requests are counted at the emulator.
 */
export const storeBench = async (): Promise<ReadonlyArray<StoreScenario>> => {
  const emulator = await startEmulator({ clock: "frozen" })
  const until = emulator.now()
  const since = until - YEAR * MINUTE
  const dir = mkdtempSync(join(tmpdir(), "bench-store-"))
  const env = (database: string) => ({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance",
    REDIS_ENABLED: "false",
    RATE_LIMIT_ENABLED: "false",
    CCXT_THROTTLE: "false",
    DATABASE_URL: database
  })
  const history = (url: string) =>
    `${url}/v1/history/ohlcv?exchange=binance&symbol=BTC/USDT&interval=1m&since=${since}&until=${until}&format=ndjson`
  const scenarios: Array<StoreScenario> = []
  const run = async (name: string, database: string, client: (url: string) => Promise<[number, number]>) => {
    const server = await startServer(env(database))
    try {
      emulator.resetCounts()
      const started = performance.now()
      const [candles, apiRequests] = await client(server.url)
      scenarios.push({
        name,
        seconds: (performance.now() - started) / 1000,
        candles,
        apiRequests,
        exchangeRequests: emulator.requestCount("binance", KLINES),
        peakRssMiB: peakRssMiB(server.process.pid)
      })
    } finally {
      await server.stop()
    }
  }
  try {
    await run("store off: client pages /v1/markets/ohlcv (limit 2000)", "none", async (url) => {
      let candles = 0
      let calls = 0
      for (let cursor = since; cursor < until; cursor += 2000 * MINUTE) {
        const limit = Math.min(2000, (until - cursor) / MINUTE)
        const res = await fetch(
          `${url}/v1/markets/ohlcv?exchange=binance&symbol=BTC/USDT&interval=1m&since=${cursor}&limit=${limit}`
        )
        const body = (await res.json()) as { candles?: ReadonlyArray<unknown> }
        candles += body.candles?.length ?? 0
        calls += 1
      }
      return [candles, calls]
    })
    const file = `sqlite://${join(dir, "market.sqlite")}`
    await run("/v1/history/ohlcv, empty store (fetched, stored)", file, async (url) => {
      const r = await countLines(history(url))
      return [r.lines, 1]
    })
    await run("/v1/history/ohlcv, from the store (new process)", file, async (url) => {
      const r = await countLines(history(url))
      return [r.lines, 1]
    })
    return scenarios
  } finally {
    await emulator.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

export const storeBenchTable = (scenarios: ReadonlyArray<StoreScenario>): string =>
  [
    "| a year of 1m candles | seconds | candles | API requests | exchange requests | server peak RSS |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...scenarios.map(
      (s) =>
        `| ${s.name} | ${fmt(s.seconds, 1)} | ${fmt(s.candles)} | ${fmt(s.apiRequests)} | ${fmt(s.exchangeRequests)} | ${fmt(s.peakRssMiB)} MiB |`
    )
  ].join("\n")
