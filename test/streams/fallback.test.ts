import { Layer, Logger, LogLevel } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { eventually, openSse } from "./clients.js"
import { type StreamServer, startStreamServer } from "./server.js"

let emulator: Emulator
let server: StreamServer
const lines: Array<{ readonly level: string; readonly message: string }> = []

/** Every log line at Info and above, as level and first message part. */
const capture = Layer.merge(
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      const first = Array.isArray(message) ? message[0] : message
      lines.push({ level: logLevel.label, message: String(first) })
    })
  ),
  Logger.minimumLogLevel(LogLevel.Info)
)

beforeAll(async () => {
  emulator = await startEmulator({ wsPushIntervalMs: 100 })
  server = await startStreamServer(
    { ...emulator.env(), ENABLED_EXCHANGES: "coinbaseexchange", CCXT_THROTTLE: "false" },
    undefined,
    capture
  )
})

afterAll(async () => {
  await server?.close()
  await emulator?.close()
})

describe("coinbaseexchange's documented book polling fallback", () => {
  it("warns once per server, says once per upstream that it polls, and polls later upstreams at once", async () => {
    // three upstreams one after the other: BTC/USD twice (the second after the first stopped), then ETH/USD
    for (const symbol of ["BTC/USD", "BTC/USD", "ETH/USD"]) {
      const sse = await openSse(`${server.http}/v1/stream/orderbook?exchange=coinbaseexchange&symbol=${symbol}`)
      await sse.next("orderbook", undefined, { timeoutMs: 10_000 })
      sse.close()
      await eventually(async () => ((await server.stats()).upstreams === 0 ? true : undefined), 5000)
    }
    const about = lines.filter(
      (l) => l.message.includes("watchOrderBook") || l.message.includes("polls") || l.message.includes("polling")
    )
    expect(about).toEqual([
      {
        level: "WARN",
        // the exchange layer's wording; what matters here is that it comes once
        message: expect.stringContaining("coinbaseexchange streams watchOrderBook only with API credentials")
      },
      { level: "INFO", message: "stream upstream falls back to polling" },
      { level: "INFO", message: "stream upstream polls" },
      { level: "INFO", message: "stream upstream polls" }
    ])
    expect(lines.filter((l) => l.level === "WARN" || l.level === "ERROR")).toHaveLength(1)
  })
})
