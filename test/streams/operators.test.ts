import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Option, Stream, TestClock } from "effect"
import type { Subscription, SubscriptionEvent, TickerSample, UpstreamMessage } from "../../src/Streams/Events.js"
import {
  heartbeats,
  makeSubscriptionFilter,
  makeTickerThreshold,
  thresholdStep,
  TickerThreshold
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

/** What one subscriber's filter lets through of `messages`, in order. */
const run = (step: (m: UpstreamMessage) => SubscriptionEvent | undefined, messages: ReadonlyArray<UpstreamMessage>) =>
  messages.flatMap((m) => {
    const event = step(m)
    return event === undefined ? [] : [event]
  })

/** One sample per second, `prices[i]` at t = (i + 1) s. */
const samplesEverySecond = (prices: ReadonlyArray<number>) => prices.map((p, i) => sample(p, (i + 1) * 1000))

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

const tickers = (events: ReadonlyArray<SubscriptionEvent>) =>
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

describe("ticker threshold", () => {
  it("measures from the last event sent, so a slow drift still fires (gotcha 3)", () => {
    // +0.05 % per second for 50 s against a 1 % threshold: every step is below it, the sum is not
    const prices = Array.from({ length: 50 }, (_, i) => 100 * 1.0005 ** i)
    const out = run(makeTickerThreshold(0.01), samplesEverySecond(prices))
    const expected = expectedKept(prices, 0.01)
    expect(expected).toHaveLength(3)
    expect(tickers(out)).toEqual(expected)
    // the first event is the immediate snapshot, at the first sample's time
    expect(out[0]).toMatchObject({ event_type: "ticker", last: 100, timestamp: 1000, price_change_percent: 0 })
  })

  it("sends every sample with threshold 0 and passes status and error messages through", () => {
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
    const out = run(makeTickerThreshold(0), [sample(10), sample(10), status, sample(10.5)])
    expect(out.map((e) => e.event_type)).toEqual(["ticker", "ticker", "status", "ticker"])
    expect(out[2]).toBe(status)
    expect(tickers(out)).toEqual([
      { last: 10, pct: 0 },
      { last: 10, pct: 0 },
      { last: 10.5, pct: 5 }
    ])
  })

  it("keeps a separate reference price per subscriber", () => {
    const prices = [100, 100.3, 100.6, 100.9, 101.2, 99]
    const samples = samplesEverySecond(prices)
    expect(tickers(run(makeTickerThreshold(0.005), samples))).toEqual(expectedKept(prices, 0.005))
    expect(tickers(run(makeTickerThreshold(0.002), samples))).toEqual(expectedKept(prices, 0.002))
  })

  it("subscribers that agree on the change get the same event object, so it is encoded once", () => {
    const samples = samplesEverySecond([100, 101, 103])
    const a = run(makeTickerThreshold(0), samples)
    const b = run(makeTickerThreshold(0.01), samples)
    const late = run(makeTickerThreshold(0), samples.slice(1))
    expect(b[0]).toBe(a[0])
    expect(b[1]).toBe(a[1])
    // a late joiner's first event has a change of 0, not the +1 % the others saw: a different object
    expect(late[0]).not.toBe(a[1])
    expect(late[0]).toMatchObject({ last: 101, price_change_percent: 0 })
  })
})

describe("ticker threshold applied where the subscriber sends", () => {
  const tickerSubscription: Subscription = {
    channel: "ticker",
    exchange: "binance",
    symbol: "BTC/USDT",
    interval: null,
    depth: 10,
    threshold: 0.01
  }

  it("the fan-out passes every sample as one candidate event, shared by all such subscribers", () => {
    const samples = samplesEverySecond([100, 100.5, 100.2])
    const a = run(makeSubscriptionFilter(tickerSubscription, { thresholdAtSend: true }), samples)
    const b = run(makeSubscriptionFilter({ ...tickerSubscription, threshold: 0.5 }, { thresholdAtSend: true }), samples)
    expect(tickers(a)).toEqual([
      { last: 100, pct: 0 },
      { last: 100.5, pct: 0 },
      { last: 100.2, pct: 0 }
    ])
    a.forEach((event, i) => expect(b[i]).toBe(event))
  })

  it("TickerThreshold measures a candidate from the last one it passed and sets its change", () => {
    const [c100, c101, c100_5, c103] = run(
      makeSubscriptionFilter(tickerSubscription, { thresholdAtSend: true }),
      samplesEverySecond([100, 101, 100.5, 103])
    ).flatMap((e) => (e.event_type === "ticker" ? [e] : []))
    const one = new TickerThreshold(0.01)
    const other = new TickerThreshold(0.01)
    // the first candidate already says 0 %: it goes out as it is
    expect(one.pass(c100!)).toBe(c100)
    const sent101 = one.pass(c101!)
    expect(sent101).toEqual({ ...c101, price_change_percent: 1 })
    expect(one.pass(c100_5!)).toBeUndefined()
    expect(one.pass(c103!)).toEqual({ ...c103, price_change_percent: ((103 - 101) / 101) * 100 })
    // another subscriber that agrees on the change gets the very same object
    expect(other.pass(c100!)).toBe(c100)
    expect(other.pass(c101!)).toBe(sent101)
  })
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
})

describe("subscription filter", () => {
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
  const subscription = (depth: number): Subscription => ({
    channel: "orderbook",
    exchange: "kraken",
    symbol: "BTC/USD",
    interval: null,
    depth,
    threshold: 0
  })

  it("cuts books to the subscriber's depth, sharing the cut between subscribers of the same depth", () => {
    const [three] = run(makeSubscriptionFilter(subscription(3)), [book])
    const [again] = run(makeSubscriptionFilter(subscription(3)), [book])
    const [all] = run(makeSubscriptionFilter(subscription(100)), [book])
    expect(three).toMatchObject({ bids: levels(3, 99, -1), asks: levels(3, 101, 1) })
    expect(again).toBe(three)
    expect(all).toBe(book)
  })
})
