import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Option, Schedule, Stream, TestClock } from "effect"
import type { SubscriptionEvent, TickerSample, UpstreamMessage } from "../../src/Streams/Events.js"
import {
  forSubscription,
  heartbeats,
  thresholdStep,
  tickerThreshold,
  withHeartbeats
} from "../../src/Streams/Operators.js"

const sample = (last: number, timestamp = 0): TickerSample => ({
  event_type: "ticker_sample",
  exchange: "binance",
  symbol: "BTC/USDT",
  bid: last - 1,
  ask: last + 1,
  last,
  timestamp
})

/** One sample per virtual second, `prices[i]` at t = (i + 1) s. */
const samplesEverySecond = (prices: ReadonlyArray<number>): Stream.Stream<UpstreamMessage> =>
  Stream.fromSchedule(Schedule.spaced("1 second")).pipe(
    Stream.take(prices.length),
    Stream.map((i) => sample(prices[i] ?? 0, (i + 1) * 1000))
  )

/** The rule spelled out independently: keep a price when it moved by `threshold` from the last kept one. */
const expectedKept = (prices: ReadonlyArray<number>, threshold: number) => {
  const kept: Array<{ last: number; pct: number }> = []
  for (const p of prices) {
    const previous = kept.at(-1)?.last
    if (previous === undefined) kept.push({ last: p, pct: 0 })
    else if (Math.abs((p - previous) / previous) >= threshold)
      kept.push({ last: p, pct: ((p - previous) / previous) * 100 })
  }
  return kept
}

const tickers = (events: ReadonlyArray<SubscriptionEvent | { event_type: "heartbeat" }>) =>
  events.flatMap((e) => (e.event_type === "ticker" ? [{ last: e.last, pct: e.price_change_percent }] : []))

describe("thresholdStep", () => {
  it("passes the first price with 0 %, then only moves of at least the threshold, either way", () => {
    expect(thresholdStep(undefined, 100, 0.01)).toEqual(Option.some(0))
    expect(thresholdStep(100, 100.99, 0.01)).toEqual(Option.none())
    expect(thresholdStep(100, 101, 0.01)).toEqual(Option.some(1))
    expect(thresholdStep(100, 98, 0.01)).toEqual(Option.some(-2))
    expect(thresholdStep(100, 100, 0)).toEqual(Option.some(0))
  })
})

describe("tickerThreshold on virtual time", () => {
  it.effect("measures from the last event sent, so a slow drift still fires (gotcha 3)", () =>
    Effect.gen(function* () {
      // +0.05 % per second for 50 s against a 1 % threshold: every step is below it, the sum is not
      const prices = Array.from({ length: 50 }, (_, i) => 100 * 1.0005 ** i)
      const fiber = yield* samplesEverySecond(prices).pipe(tickerThreshold(0.01), Stream.runCollect, Effect.fork)
      yield* TestClock.adjust("50 seconds")
      const out = Chunk.toArray(yield* Fiber.join(fiber))
      const expected = expectedKept(prices, 0.01)
      expect(expected).toHaveLength(3)
      expect(tickers(out)).toEqual(expected)
      // the first event is the immediate snapshot, at the first sample's time
      expect(out[0]).toMatchObject({ event_type: "ticker", last: 100, timestamp: 1000, price_change_percent: 0 })
    })
  )

  it.effect("sends every sample with threshold 0 and passes status and error messages through", () =>
    Effect.gen(function* () {
      const status: UpstreamMessage = {
        event_type: "status",
        status: "reconnecting",
        channel: "ticker",
        exchange: "binance",
        symbol: "BTC/USDT",
        reason: "no data for 30 s",
        attempt: 1,
        timestamp: 5
      }
      const out = yield* Stream.make<Array<UpstreamMessage>>(sample(10), sample(10), status, sample(10.5)).pipe(
        tickerThreshold(0),
        Stream.runCollect
      )
      expect(Chunk.toArray(out).map((e) => e.event_type)).toEqual(["ticker", "ticker", "status", "ticker"])
      expect(tickers(Chunk.toArray(out))).toEqual([
        { last: 10, pct: 0 },
        { last: 10, pct: 0 },
        { last: 10.5, pct: 5 }
      ])
    })
  )

  it.effect("keeps a separate reference price per subscriber", () =>
    Effect.gen(function* () {
      const prices = [100, 100.3, 100.6, 100.9, 101.2, 99]
      const run = (threshold: number) =>
        samplesEverySecond(prices).pipe(tickerThreshold(threshold), Stream.runCollect, Effect.fork)
      const loose = yield* run(0.005)
      const tight = yield* run(0.002)
      yield* TestClock.adjust("6 seconds")
      expect(tickers(Chunk.toArray(yield* Fiber.join(loose)))).toEqual(expectedKept(prices, 0.005))
      expect(tickers(Chunk.toArray(yield* Fiber.join(tight)))).toEqual(expectedKept(prices, 0.002))
    })
  )
})

describe("heartbeats on virtual time", () => {
  it.effect("one every interval, stamped with the clock, the first after one interval", () =>
    Effect.gen(function* () {
      const fiber = yield* heartbeats("15 seconds").pipe(Stream.take(4), Stream.runCollect, Effect.fork)
      yield* TestClock.adjust("59 seconds")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 second")
      const beats = Chunk.toArray(yield* Fiber.join(fiber))
      expect(beats).toEqual(
        [15_000, 30_000, 45_000, 60_000].map((timestamp) => ({ event_type: "heartbeat", timestamp }))
      )
    })
  )

  it.effect("merge into the data stream and stop with it", () =>
    Effect.gen(function* () {
      const prices = Array.from({ length: 10 }, (_, i) => 100 + i)
      const fiber = yield* samplesEverySecond(prices).pipe(
        tickerThreshold(0),
        withHeartbeats("4 seconds"),
        Stream.runCollect,
        Effect.fork
      )
      yield* TestClock.adjust("30 seconds")
      const out = Chunk.toArray(yield* Fiber.join(fiber))
      expect(tickers(out).map((t) => t.last)).toEqual(prices)
      // data ends at t = 10 s: heartbeats at 4 s and 8 s only
      expect(out.filter((e) => e.event_type === "heartbeat")).toEqual([
        { event_type: "heartbeat", timestamp: 4000 },
        { event_type: "heartbeat", timestamp: 8000 }
      ])
      const order = out.map((e) => (e.event_type === "heartbeat" ? `hb@${e.timestamp}` : "t"))
      expect(order.indexOf("hb@4000")).toBeGreaterThan(2)
    })
  )
})

describe("forSubscription", () => {
  it.effect("cuts books to the subscriber's depth and ends after an error", () =>
    Effect.gen(function* () {
      const levels = (n: number, from: number, step: number) =>
        Array.from({ length: n }, (_, i) => ({ price: from + i * step, amount: 1 }))
      const book: UpstreamMessage = {
        event_type: "orderbook",
        exchange: "kraken",
        symbol: "BTC/USD",
        bids: levels(100, 99, -1),
        asks: levels(100, 101, 1),
        timestamp: 1
      }
      const error: UpstreamMessage = { event_type: "error", code: "symbol_not_found", message: "gone" }
      const out = yield* Stream.make<Array<UpstreamMessage>>(book, error, book).pipe(
        forSubscription({
          channel: "orderbook",
          exchange: "kraken",
          symbol: "BTC/USD",
          interval: null,
          depth: 3,
          threshold: 0
        }),
        Stream.runCollect
      )
      const events = Chunk.toArray(out)
      expect(events.map((e) => e.event_type)).toEqual(["orderbook", "error"])
      expect(events[0]).toMatchObject({ bids: levels(3, 99, -1), asks: levels(3, 101, 1) })
    })
  )
})
