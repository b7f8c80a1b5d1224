import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Fiber, Layer, Queue, type Scope, Stream, TestClock } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { NotSupported, SymbolNotFound, UpstreamUnavailable } from "../../src/Domain/Errors.js"
import { BookLevel, OrderBook } from "../../src/Domain/Market.js"
import type { StreamChannel } from "../../src/Exchange/Exchange.js"
import type { SubscriptionEvent } from "../../src/Streams/Events.js"
import { StreamHub, type SubscriptionRequest } from "../../src/Streams/StreamHub.js"
import { UpstreamRegistry } from "../../src/Streams/UpstreamRegistry.js"
import { makeScripted, type Scripted, subscribeTo, ticker, TRADES_PER_POLL } from "./scripted.js"

/** A hub over the scripted exchange, living as long as the test's scope; defaults: 5 s grace, 30 s stall, 2 s polls. */
const hubWith = (
  watchable?: ReadonlyArray<StreamChannel>,
  env: Record<string, string> = {}
): Effect.Effect<{ readonly hub: StreamHub; readonly scripted: Scripted }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scripted = yield* makeScripted(watchable)
    const context = yield* Layer.build(
      StreamHub.Default.pipe(Layer.provide(scripted.layer), Layer.provide(AppConfig.fromRecord(env).pipe(Layer.orDie)))
    )
    return { hub: Context.get(context, StreamHub), scripted }
  })

const TICKER: SubscriptionRequest = { channel: "ticker", exchange: "binance", symbol: "BTC/USDT", threshold: 0 }

const collect = (hub: StreamHub, request: SubscriptionRequest, n: number) =>
  Effect.gen(function* () {
    const subscription = yield* hub.validate(request)
    return yield* subscribeTo(hub, subscription).pipe(
      Stream.take(n),
      Stream.runCollect,
      Effect.map(Chunk.toArray),
      Effect.fork
    )
  }).pipe(Effect.orDie)

/** Lets forked fibers reach their next suspension point without moving the clock. */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

const summary = (events: ReadonlyArray<SubscriptionEvent>) =>
  events.map((e) => {
    switch (e.event_type) {
      case "ticker":
        return `ticker ${e.last} ${e.price_change_percent}`
      case "status":
        return `${e.status} #${e.attempt}: ${e.reason}`
      case "error":
        return `error ${e.code}`
      default:
        return e.event_type
    }
  })

describe("StreamHub on virtual time", () => {
  it.scoped("the upstream registry serves subscriptions on its own, without the gateway side", () =>
    Effect.gen(function* () {
      const scripted = yield* makeScripted()
      const context = yield* Layer.build(
        UpstreamRegistry.Default.pipe(
          Layer.provide(scripted.layer),
          Layer.provide(AppConfig.fromRecord({}).pipe(Layer.orDie))
        )
      )
      const registry = Context.get(context, UpstreamRegistry)
      const subscription = yield* Effect.orDie(registry.validate(TICKER))
      const events: Array<SubscriptionEvent> = []
      const detach = yield* registry.attach(subscription, { event: (e) => void events.push(e), end: () => undefined })
      yield* settle
      yield* Queue.offer(scripted.ticker, Effect.succeed(ticker(100)))
      yield* settle
      expect(summary(events)).toEqual(["ticker 100 0"])
      expect(yield* registry.stats).toEqual({ upstreams: 1, subscribers: 1 })
      yield* detach()
      expect(yield* registry.stats).toEqual({ upstreams: 1, subscribers: 0 })
      yield* TestClock.adjust("5001 millis")
      expect(yield* registry.stats).toEqual({ upstreams: 0, subscribers: 0 })
      expect(yield* scripted.counters).toMatchObject({ opened: 1, closed: 1 })
    })
  )

  it.scoped("N subscribers share one upstream, which stops one idle grace after the last leaves", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith()
      const subscribers = yield* Effect.all([collect(hub, TICKER, 2), collect(hub, TICKER, 2), collect(hub, TICKER, 2)])
      yield* settle
      yield* Queue.offerAll(scripted.ticker, [Effect.succeed(ticker(100)), Effect.succeed(ticker(101))])
      for (const fiber of subscribers) {
        expect(summary(yield* Fiber.join(fiber))).toEqual(["ticker 100 0", "ticker 101 1"])
      }
      expect(yield* scripted.counters).toMatchObject({ opened: 1, closed: 0 })
      expect((yield* hub.stats).upstreams).toBe(1)

      yield* TestClock.adjust("4999 millis")
      expect((yield* scripted.counters).closed).toBe(0)
      yield* TestClock.adjust("2 millis")
      expect(yield* scripted.counters).toMatchObject({ opened: 1, closed: 1 })
      expect(yield* hub.stats).toMatchObject({ upstreams: 0, subscribers: 0 })
    })
  )

  it.scoped("one subscriber leaving keeps the upstream for the others; the grace starts when the last leaves", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith()
      const early = yield* collect(hub, TICKER, 1)
      const late = yield* collect(hub, TICKER, 3)
      yield* settle
      yield* Queue.offer(scripted.ticker, Effect.succeed(ticker(100)))
      expect(summary(yield* Fiber.join(early))).toEqual(["ticker 100 0"])
      yield* settle
      expect(yield* hub.stats).toMatchObject({ upstreams: 1, subscribers: 1 })
      yield* TestClock.adjust("10 seconds")
      expect((yield* scripted.counters).closed).toBe(0)
      yield* Queue.offerAll(scripted.ticker, [Effect.succeed(ticker(125)), Effect.succeed(ticker(100))])
      expect(summary(yield* Fiber.join(late))).toEqual(["ticker 100 0", "ticker 125 25", "ticker 100 -20"])
      yield* settle
      expect(yield* hub.stats).toMatchObject({ upstreams: 1, subscribers: 0 })
      yield* TestClock.adjust("5001 millis")
      expect(yield* scripted.counters).toMatchObject({ opened: 1, closed: 1 })
    })
  )

  it.scoped("a subscriber arriving within the grace reuses the upstream and gets its snapshot at once", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith()
      const first = yield* collect(hub, TICKER, 1)
      yield* settle
      yield* Queue.offer(scripted.ticker, Effect.succeed(ticker(100)))
      yield* Fiber.join(first)
      yield* TestClock.adjust("3 seconds")
      const late = yield* collect(hub, { ...TICKER, threshold: 0.5 }, 1)
      yield* settle
      expect(summary(yield* Fiber.join(late))).toEqual(["ticker 100 0"])
      expect(yield* scripted.counters).toMatchObject({ opened: 1, closed: 0 })
    })
  )

  it.scoped("the watchdog resets a silent watcher, announces it, and says when data flows again", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith()
      const fiber = yield* collect(hub, TICKER, 5)
      yield* settle
      yield* Queue.offer(scripted.ticker, Effect.succeed(ticker(100)))
      yield* settle
      yield* TestClock.adjust("30 seconds")
      expect((yield* scripted.counters).resets).toBe(1)
      // the first stall resubscribes at once; a second one waits for the backoff (2 s, jittered) first
      yield* TestClock.adjust("30 seconds")
      expect((yield* scripted.counters).resets).toBe(2)
      yield* TestClock.adjust("3 seconds")
      yield* Queue.offer(scripted.ticker, Effect.succeed(ticker(100.5)))
      expect(summary(yield* Fiber.join(fiber))).toEqual([
        "ticker 100 0",
        "reconnecting #1: no data for 30 s",
        "reconnecting #2: no data for 30 s",
        "live #0: receiving data again",
        "ticker 100.5 0.5"
      ])
    })
  )

  it.scoped("transient failures are retried with exponential backoff and reported with their attempt", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith()
      const fiber = yield* collect(hub, TICKER, 4)
      const down = new UpstreamUnavailable({
        code: "upstream_unavailable",
        message: "binance could not be reached; retry in 5 s",
        source: "binance",
        retryAfter: 5
      })
      yield* Queue.offerAll(scripted.ticker, [Effect.fail(down), Effect.fail(down), Effect.succeed(ticker(100))])
      yield* settle
      expect((yield* scripted.counters).resets).toBe(1)
      yield* TestClock.adjust("799 millis")
      expect((yield* scripted.counters).resets).toBe(1)
      yield* TestClock.adjust("4 seconds")
      const events = yield* Fiber.join(fiber)
      expect(summary(events)).toEqual([
        "reconnecting #1: binance could not be reached; retry in 5 s",
        "reconnecting #2: binance could not be reached; retry in 5 s",
        "live #0: receiving data again",
        "ticker 100 0"
      ])
      // waits of 1 s, then 2 s, each jittered by ±20 %
      const [first, second, live] = events.map((e) => (e.event_type === "status" ? e.timestamp : -1))
      expect(first).toBe(0)
      expect(second).toBeGreaterThanOrEqual(800)
      expect(second).toBeLessThanOrEqual(1200)
      expect((live ?? 0) - (second ?? 0)).toBeGreaterThanOrEqual(1600)
      expect((live ?? 0) - (second ?? 0)).toBeLessThanOrEqual(2400)
    })
  )

  it.scoped("a permanent error ends the stream with an error event; the next subscriber starts afresh", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith()
      const fiber = yield* collect(hub, TICKER, 10)
      yield* Queue.offer(
        scripted.ticker,
        Effect.fail(
          new SymbolNotFound({ message: "delisted", exchange: "binance", symbol: "BTC/USDT", suggestions: [] })
        )
      )
      const events = yield* Fiber.join(fiber)
      expect(events).toEqual([
        {
          event_type: "error",
          code: "symbol_not_found",
          message: "delisted",
          channel: "ticker",
          exchange: "binance",
          symbol: "BTC/USDT"
        }
      ])
      const again = yield* collect(hub, TICKER, 1)
      yield* settle
      yield* Queue.offer(scripted.ticker, Effect.succeed(ticker(7)))
      expect(summary(yield* Fiber.join(again))).toEqual(["ticker 7 0"])
      expect((yield* scripted.counters).opened).toBe(2)
    })
  )

  it.scoped("without watch support it polls REST every STREAM_POLL_INTERVAL", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith([])
      const fiber = yield* collect(hub, TICKER, 6)
      yield* settle
      yield* TestClock.adjust("9999 millis")
      expect((yield* scripted.counters).polls).toEqual({ ticker: 5 })
      yield* TestClock.adjust("1 millis")
      expect(summary(yield* Fiber.join(fiber))).toEqual([
        "ticker 100 0",
        "ticker 101 1",
        "ticker 102 0.9900990099009901",
        "ticker 103 0.9803921568627451",
        "ticker 104 0.9708737864077669",
        "ticker 105 0.9615384615384616"
      ])
      expect((yield* scripted.counters).opened).toBe(0)
    })
  )

  it.scoped(
    "polled trades: what the exchange had when the upstream started is not sent, later polls send only new ones",
    () =>
      Effect.gen(function* () {
        const { hub, scripted } = yield* hubWith([])
        const subscription = yield* hub.validate({ channel: "trades", exchange: "binance", symbol: "BTC/USDT" })
        const fiber = yield* subscribeTo(hub, subscription).pipe(
          Stream.interruptAfter("10500 millis"),
          Stream.runCollect,
          Effect.map(Chunk.toArray),
          Effect.fork
        )
        yield* settle
        yield* TestClock.adjust("11 seconds")
        const events = yield* Fiber.join(fiber)
        // the baseline at once, then a poll every 2 s
        expect((yield* scripted.counters).polls).toEqual({ trades: 6 })
        // every answer holds 100 trades, 10 of them new: the baseline's are never sent, each later one's new ten once
        const ids = (from: number) => Array.from({ length: TRADES_PER_POLL }, (_, i) => String(from + i))
        expect(events.map((e) => (e.event_type === "trades" ? e.trades.map((t) => t.trade_id) : e.event_type))).toEqual(
          [1100, 1110, 1120, 1130, 1140].map(ids)
        )
        expect(events.every((e) => e.event_type === "trades" && e.dropped === 0)).toBe(true)
      })
  )

  it.scoped("falls back to polling when the watch is not available after all (NotSupported)", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith()
      const fiber = yield* collect(hub, TICKER, 2)
      yield* Queue.offer(
        scripted.ticker,
        Effect.fail(new NotSupported({ message: "needs credentials", exchange: "binance", method: "watchTicker" }))
      )
      yield* settle
      yield* TestClock.adjust("2 seconds")
      expect(summary(yield* Fiber.join(fiber))).toEqual(["ticker 100 0", "ticker 101 1"])
    })
  )

  it.scoped("a crossed book is never passed on: the watcher is reset for a fresh snapshot", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith()
      const book = (bid: number, ask: number) =>
        new OrderBook({
          exchange: "binance",
          symbol: "BTC/USDT",
          bids: [new BookLevel({ price: bid, amount: 1 })],
          asks: [new BookLevel({ price: ask, amount: 1 })],
          timestamp: 1
        })
      const fiber = yield* collect(hub, { channel: "orderbook", exchange: "binance", symbol: "BTC/USDT" }, 3)
      yield* Queue.offerAll(scripted.book, [Effect.succeed(book(101, 100)), Effect.succeed(book(99, 100))])
      const events = yield* Fiber.join(fiber)
      expect(summary(events)).toEqual([
        "reconnecting #1: crossed order book",
        "live #0: receiving data again",
        "orderbook"
      ])
      expect(events[2]).toMatchObject({ bids: [{ price: 99, amount: 1 }], asks: [{ price: 100, amount: 1 }] })
      expect((yield* scripted.counters).resets).toBe(1)
    })
  )

  it.scoped("an empty book (a broken snapshot parsed into nothing) is never passed on either", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith()
      const empty = new OrderBook({ exchange: "binance", symbol: "BTC/USDT", bids: [], asks: [], timestamp: 1 })
      const good = new OrderBook({
        exchange: "binance",
        symbol: "BTC/USDT",
        bids: [new BookLevel({ price: 99, amount: 1 })],
        asks: [new BookLevel({ price: 100, amount: 1 })],
        timestamp: 2
      })
      const fiber = yield* collect(hub, { channel: "orderbook", exchange: "binance", symbol: "BTC/USDT" }, 3)
      yield* Queue.offerAll(scripted.book, [Effect.succeed(empty), Effect.succeed(good)])
      const events = yield* Fiber.join(fiber)
      expect(summary(events)).toEqual([
        "reconnecting #1: empty order book",
        "live #0: receiving data again",
        "orderbook"
      ])
      expect(events[2]).toMatchObject({ bids: [{ price: 99, amount: 1 }], asks: [{ price: 100, amount: 1 }] })
      expect((yield* scripted.counters).resets).toBe(1)
    })
  )

  it.scoped("every connection gets one heartbeat per interval, a tenth of the connections at a time", () =>
    Effect.gen(function* () {
      const { hub } = yield* hubWith(undefined, { STREAM_HEARTBEAT_INTERVAL: "10" })
      const beats = new Map<number, Array<number>>()
      const ids = Array.from({ length: 20 }, () => {
        const mine: Array<number> = []
        const id = hub.register({
          stats: (id) => ({
            id,
            transport: "ws",
            subscriptions: 0,
            bufferedBytes: 0,
            pendingEvents: 0,
            pendingBytes: 0,
            dropped: 0,
            conflated: 0
          }),
          heartbeat: (event) => void mine.push(event.timestamp),
          closing: () => undefined,
          terminate: () => undefined
        })
        beats.set(id, mine)
        return id
      })
      yield* TestClock.adjust("1 second")
      const first = ids.filter((id) => beats.get(id)?.length === 1)
      // ids 1..20 of a fresh hub: the first beat (slot 0) goes to ids that are multiples of 10
      expect(first).toEqual([10, 20])
      yield* TestClock.adjust("9 seconds")
      expect(ids.map((id) => beats.get(id)?.length)).toEqual(ids.map(() => 1))
      yield* TestClock.adjust("10 seconds")
      for (const id of ids) {
        const [a, b] = beats.get(id) ?? []
        expect(b! - a!).toBe(10_000)
      }
      hub.unregister(ids[0]!)
      yield* TestClock.adjust("10 seconds")
      expect(beats.get(ids[0]!)).toHaveLength(2)
      expect(beats.get(ids[1]!)).toHaveLength(3)
      for (const id of ids) hub.unregister(id)
    })
  )

  it.scoped("validation resolves symbols and rejects unknown markets and intervals before any upstream", () =>
    Effect.gen(function* () {
      const { hub, scripted } = yield* hubWith()
      expect(yield* hub.validate({ channel: "ohlcv", exchange: "binance", symbol: "btc-usdt" })).toEqual({
        channel: "ohlcv",
        exchange: "binance",
        symbol: "BTC/USDT",
        interval: "1m",
        depth: 10,
        threshold: 0.001
      })
      const errors = yield* Effect.all([
        Effect.flip(hub.validate({ channel: "ticker", exchange: "binanse", symbol: "BTC/USDT" })),
        Effect.flip(hub.validate({ channel: "ticker", exchange: "binance", symbol: "NOPE/USDT" })),
        Effect.flip(hub.validate({ channel: "ohlcv", exchange: "binance", symbol: "BTC/USDT", interval: "7m" }))
      ])
      expect(errors.map((e) => e._tag)).toEqual(["UnknownExchange", "SymbolNotFound", "UnsupportedInterval"])
      expect((yield* scripted.counters).opened).toBe(0)
    })
  )
})
