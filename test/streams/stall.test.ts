import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { eventually, openSse } from "./clients.js"
import { type StreamServer, startStreamServer } from "./server.js"

let emulator: Emulator
let server: StreamServer

beforeAll(async () => {
  emulator = await startEmulator({ wsPushIntervalMs: 50 })
  server = await startStreamServer({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken",
    STREAM_STALL_TIMEOUT: "0.5",
    TICKER_DELTA_THRESHOLD: "0"
  })
})

afterAll(async () => {
  await server?.close()
  await emulator?.close()
})

describe("upstream watchdog", () => {
  it("a silently stalled exchange stream is reset; subscribers see it reconnecting, then data resumes", async () => {
    const sse = await openSse(`${server.http}/v1/stream/ticker?exchange=kraken&symbol=BTC/USD`)
    try {
      await sse.next("ticker")
      const from = sse.frames.length
      emulator.inject({ kind: "ws-stall", exchange: "kraken" })
      const stalled = await sse.next("status", (e) => e["status"] === "reconnecting", { from })
      expect(stalled).toMatchObject({
        event_type: "status",
        channel: "ticker",
        exchange: "kraken",
        symbol: "BTC/USD",
        reason: "no data for 0.5 s",
        attempt: 1
      })
      // still silent: the watchdog keeps trying, counting its attempts
      await sse.next("status", (e) => e["attempt"] === 2, { from })
      emulator.clearFaults()
      const live = await sse.next("status", (e) => e["status"] === "live", { from })
      expect(live).toMatchObject({ exchange: "kraken", attempt: 0 })
      const liveAt = sse.frames.findIndex((f) => f.data === live)
      const resumed = await sse.next("ticker", () => true, { from: liveAt })
      expect(resumed).toMatchObject({ exchange: "kraken", symbol: "BTC/USD" })
      // nothing was sent while the exchange was silent, and the old connection is gone
      const stallAt = sse.frames.findIndex((f) => f.data === stalled)
      expect(sse.frames.slice(stallAt, liveAt).filter((f) => f.data?.["event_type"] === "ticker")).toEqual([])
      expect(emulator.wsSubscriptions("kraken")).toBe(1)
    } finally {
      sse.close()
    }
  })

  it("a dropped exchange connection is retried with backoff and reported as reconnecting", async () => {
    const sse = await openSse(`${server.http}/v1/stream/orderbook?exchange=binance&symbol=BTC/USDT&depth=2`)
    try {
      await sse.next("orderbook")
      const from = sse.frames.length
      emulator.inject({ kind: "ws-close", exchange: "binance", times: 1 })
      const reconnecting = await sse.next("status", (e) => e["status"] === "reconnecting", { from })
      expect(String(reconnecting["reason"])).toMatch(/binance/)
      const live = await sse.next("status", (e) => e["status"] === "live", { from })
      // every book after the resync is exactly the model's book of some recent second: rebuilt from a fresh
      // snapshot, no stale or missing levels (a book fresh from a REST snapshot carries the server's clock)
      const liveAt = sse.frames.findIndex((f) => f.data === live)
      const booksAfter = () =>
        sse.frames.slice(liveAt).flatMap((f) => (f.data?.["event_type"] === "orderbook" && f.data ? [f.data] : []))
      const books = await eventually(() => (booksAfter().length >= 3 ? booksAfter() : undefined))
      const levels = (side: ReadonlyArray<readonly [number, number]>) =>
        side.map(([price, amount]) => ({ price, amount }))
      const now = emulator.now()
      const modelBooks = Array.from({ length: 30 }, (_, i) => {
        const model = emulator.model.orderBook("binance", "BTC/USDT", now + 1000 - i * 1000, 2)
        return JSON.stringify({ bids: levels(model.bids), asks: levels(model.asks) })
      })
      for (const book of books.slice(0, 3)) {
        expect(modelBooks).toContain(JSON.stringify({ bids: book["bids"], asks: book["asks"] }))
      }
    } finally {
      sse.close()
    }
  })
})
