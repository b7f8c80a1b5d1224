import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { eventually, ofType, openSse, openWs } from "./clients.js"
import { type StreamServer, startStreamServer } from "./server.js"

/** A deploy's reconnect storm: every client comes back at once, while the fresh server still loads its market list. */
const SSE = 80
const WS_TICKER = 40
const WS_REALTIME = 40
const WS_MULTIPLEXED = 40
const MARKET_LOAD_MS = 1500

let emulator: Emulator
let server: StreamServer

beforeAll(async () => {
  emulator = await startEmulator({ wsPushIntervalMs: 100 })
  // the first (and only) market list load takes a while: every subscriber below arrives during it
  emulator.inject({
    kind: "delay",
    exchange: "binance",
    endpoint: "/api/v3/exchangeInfo",
    delayMs: MARKET_LOAD_MS,
    times: 1
  })
  server = await startStreamServer({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance",
    CCXT_THROTTLE: "false",
    EXCHANGE_TIMEOUT: "10",
    STREAM_STALL_TIMEOUT: "20"
  })
})

afterAll(async () => {
  await server?.close()
  await emulator?.close()
})

describe("a reconnect storm on a cold server", () => {
  it("hundreds of subscribers over SSE and both WebSocket routes share one exchange subscription", async () => {
    const query = "exchange=binance&symbol=BTC/USDT"
    const started = Date.now()
    const [sse, single, multi] = await Promise.all([
      Promise.all(Array.from({ length: SSE }, () => openSse(`${server.http}/v1/stream/ticker?${query}`))),
      Promise.all([
        ...Array.from({ length: WS_TICKER }, () => openWs(`${server.ws}/ws/ticker?${query}`)),
        ...Array.from({ length: WS_REALTIME }, () => openWs(`${server.ws}/ws/realtime?${query}`))
      ]),
      Promise.all(
        Array.from({ length: WS_MULTIPLEXED }, async () => {
          const client = await openWs(`${server.ws}/ws`)
          client.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "BTC/USDT" })
          return client
        })
      )
    ])
    try {
      // they all arrived while the one market list load was still running
      expect(Date.now() - started).toBeGreaterThanOrEqual(MARKET_LOAD_MS * 0.9)
      await Promise.all([
        ...sse.map((s) => s.next("ticker", undefined, { timeoutMs: 20_000 })),
        ...[...single, ...multi].map((w) => w.next(ofType("ticker"), { timeoutMs: 20_000 }))
      ])
      expect(emulator.requestCount("binance", "/api/v3/exchangeInfo")).toBe(1)
      expect(emulator.wsSubscriptions("binance")).toBe(1)
      expect(await server.stats()).toMatchObject({
        upstreams: 1,
        subscribers: SSE + WS_TICKER + WS_REALTIME + WS_MULTIPLEXED
      })
    } finally {
      for (const s of sse) s.close()
      await Promise.all([...single, ...multi].map((w) => w.close()))
    }
    await eventually(async () => ((await server.stats()).subscribers === 0 ? true : undefined), 10_000)
  }, 60_000)
})
