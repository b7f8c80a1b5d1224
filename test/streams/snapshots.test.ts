import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Emulator, type FaultKind, startEmulator } from "../../src/emulator/index.js"
import { eventually, type Json, openSse, type SseClient, type SseFrame } from "./clients.js"
import { type StreamServer, startStreamServer } from "./server.js"

/** Broken 200 answers ccxt would parse into an empty book. */
const BROKEN_BODIES: ReadonlyArray<FaultKind> = ["truncated-json", "html-200", "empty-200", "empty-object-200"]

let emulator: Emulator
let server: StreamServer

beforeAll(async () => {
  emulator = await startEmulator({ wsPushIntervalMs: 100 })
  server = await startStreamServer({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,coinbaseexchange",
    CCXT_THROTTLE: "false",
    // far beyond each test's wait: recovery must not come from the watchdog
    STREAM_STALL_TIMEOUT: "30"
  })
})

afterAll(async () => {
  await server?.close()
  await emulator?.close()
})

const books = (frames: ReadonlyArray<SseFrame>) =>
  frames.filter((f) => f.data?.["event_type"] === "orderbook").map((f) => f.data as Json)
const isEmpty = (book: Json) =>
  (book["bids"] as Array<unknown>).length === 0 && (book["asks"] as Array<unknown>).length === 0

/**
 * The subscriber hears "reconnecting" with the gate's reason, then a good book; never an empty one. (Order books are
 * what a broken body used to become: ccxt parses it into an empty book.)
 */
const expectRecovery = async (sse: SseClient, exchange: string, method: string) => {
  const book = await sse.next("orderbook", undefined, { timeoutMs: 10_000 })
  expect((book["bids"] as Array<unknown>).length).toBeGreaterThan(0)
  expect((book["asks"] as Array<unknown>).length).toBeGreaterThan(0)
  const reconnecting = sse.frames.findIndex(
    (f) => f.data?.["event_type"] === "status" && f.data?.["status"] === "reconnecting"
  )
  expect(reconnecting).toBeGreaterThanOrEqual(0)
  expect(reconnecting).toBeLessThan(sse.frames.findIndex((f) => f.data?.["event_type"] === "orderbook"))
  expect(sse.frames[reconnecting]?.data).toMatchObject({
    event_type: "status",
    status: "reconnecting",
    channel: "orderbook",
    exchange,
    attempt: 1,
    reason: expect.stringMatching(new RegExp(`^${exchange} sent a bad response to ${method}: `))
  })
  expect(books(sse.frames).filter(isEmpty)).toEqual([])
}

const idle = () => eventually(async () => ((await server.stats()).upstreams === 0 ? true : undefined), 10_000)

describe("a snapshot that fails the integrity gate is never published", () => {
  it.each(BROKEN_BODIES)(
    "coinbaseexchange polled book, %s: reconnecting with the reason, then the next good book",
    async (kind) => {
      await idle()
      emulator.clearFaults()
      emulator.resetCounts()
      emulator.inject({ kind, exchange: "coinbaseexchange", endpoint: "/products/BTC-USD/book", times: 2 })
      const sse = await openSse(`${server.http}/v1/stream/orderbook?exchange=coinbaseexchange&symbol=BTC/USD`)
      try {
        await expectRecovery(sse, "coinbaseexchange", "fetchOrderBook")
        // one poll per broken answer, then the good one
        expect(emulator.requestCount("coinbaseexchange", "/products/BTC-USD/book")).toBe(3)
      } finally {
        sse.close()
      }
    }
  )

  it.each(BROKEN_BODIES)(
    "binance streamed book whose REST snapshot is %s: reconnecting, then a good book",
    async (kind) => {
      await idle()
      emulator.clearFaults()
      emulator.resetCounts()
      emulator.inject({ kind, exchange: "binance", endpoint: "/api/v3/depth", times: 5 })
      const sse = await openSse(`${server.http}/v1/stream/orderbook?exchange=binance&symbol=BTC/USDT`)
      try {
        await expectRecovery(sse, "binance", "watchOrderBook")
      } finally {
        sse.close()
      }
    }
  )
})
