import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Option, Ref, TestClock } from "effect"
import type { MarketError } from "../../src/Domain/Errors.js"
import type { ResolvedMarket } from "../../src/Exchange/Exchange.js"
import { withRequestDeadline } from "../../src/Resilience/Deadline.js"
import { makeResilientExchange, type ResilienceSettings } from "../../src/Resilience/ResilientExchange.js"
import { makeFakeUpstreamFor, rateLimited, settings, settle, timeout, unavailable } from "./fakeExchange.js"

const BTC: ResolvedMarket = { exchange: "binance", symbol: "BTC/USDT" }

const setup = (s: ResilienceSettings, id = "binance") =>
  Effect.gen(function* () {
    const fake = yield* makeFakeUpstreamFor(id)
    const { exchange, resilience } = yield* makeResilientExchange(fake.service, {
      ...s,
      enabledExchanges: [id],
      exchangeRateLimits: { [id]: s.exchangeRateLimits["binance"] ?? Option.none() }
    })
    const circuit = Effect.map(resilience.circuits, (all) => all[id])
    return { fake, exchange, circuit, callTimes: Ref.get(fake.calls) }
  })

const retryAfterOf = (e: MarketError) => ("retryAfter" in e ? e.retryAfter : null)

describe("Retry-After is capped at RETRY_AFTER_MAX", () => {
  it.scoped("Retry-After: 100000 pauses the exchange for 60 s (the default cap), not 27.8 h", () =>
    Effect.gen(function* () {
      const { fake, exchange, circuit, callTimes } = yield* setup(settings())
      yield* fake.script(rateLimited(100_000))
      const first = yield* settle(exchange.ticker(BTC), "1 millis")
      expect(Either.getLeft(first).pipe(Option.map((e) => [e.code, retryAfterOf(e)]))).toEqual(
        Option.some(["upstream_rate_limited", 60])
      )
      expect((yield* circuit)?.rateLimitedFor).toBe(60)
      yield* TestClock.adjust("30 seconds")
      const paused = yield* settle(exchange.ticker(BTC), "1 millis")
      expect(Either.getLeft(paused).pipe(Option.map(retryAfterOf))).toEqual(Option.some(30))
      expect(yield* callTimes).toHaveLength(1)
      yield* TestClock.adjust("30 seconds")
      expect(Either.isRight(yield* settle(exchange.ticker(BTC), "1 millis"))).toBe(true)
      expect(yield* callTimes).toHaveLength(2)
    })
  )

  it.scoped("a configured RETRY_AFTER_MAX of 5 s bounds the pause to 5 s", () =>
    Effect.gen(function* () {
      const { fake, exchange, circuit } = yield* setup(settings({ retryAfterMax: Duration.seconds(5) }))
      yield* fake.script(rateLimited(3600))
      const first = yield* settle(exchange.ticker(BTC), "1 millis")
      expect(Either.getLeft(first).pipe(Option.map(retryAfterOf))).toEqual(Option.some(5))
      expect((yield* circuit)?.rateLimitedFor).toBe(5)
    })
  )
})

describe("REQUEST_DEADLINE bounds a request's upstream time, retries included", () => {
  it.scoped("an upstream that never answers: 504 at the 15 s default deadline, after 2 attempts (not ~47 s)", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(
        settings({ initialBackoff: Duration.seconds(1), maxBackoff: Duration.seconds(60) })
      )
      yield* fake.script({ delay: "10 seconds", then: timeout }, { delay: "10 seconds", then: timeout })
      const fiber = yield* Effect.fork(Effect.either(exchange.ticker(BTC)))
      yield* TestClock.adjust("14999 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 millis")
      const result = yield* Fiber.join(fiber)
      expect(Either.getLeft(result).pipe(Option.map((e) => [e._tag, e.message]))).toEqual(
        Option.some(["UpstreamTimeout", "binance did not complete fetchTicker within the request deadline of 15 s"])
      )
      expect(yield* callTimes).toHaveLength(2)
    })
  )

  it.scoped("a retry whose backoff would end past the deadline is not started: the failure comes at once", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(
        settings({
          initialBackoff: Duration.seconds(8),
          maxBackoff: Duration.seconds(60),
          requestDeadline: Duration.seconds(5)
        })
      )
      yield* fake.script(unavailable)
      const fiber = yield* Effect.fork(Effect.either(exchange.ticker(BTC)))
      yield* TestClock.adjust("1 millis")
      const done = yield* Fiber.poll(fiber)
      expect(
        Option.flatMap(done, (exit) => (exit._tag === "Success" ? Either.getLeft(exit.value) : Option.none()))
      ).toEqual(Option.some(unavailable))
      expect(yield* callTimes).toHaveLength(1)
    })
  )

  it.scoped("one request's deadline is shared by its market load and its call", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(settings({ requestDeadline: Duration.seconds(10) }))
      yield* fake.setMarketsLoaded(false)
      yield* fake.script({ delay: "7 seconds", then: null }, { delay: "7 seconds", then: null })
      const request = exchange.resolve("binance", "BTC/USDT").pipe(
        Effect.flatMap((market) => exchange.ticker(market)),
        withRequestDeadline(10_000)
      )
      const result = yield* settle(request, "1 minute")
      expect(Either.getLeft(result).pipe(Option.map((e) => e._tag))).toEqual(Option.some("UpstreamTimeout"))
      expect(yield* callTimes).toEqual([0, 7000])
    })
  )
})

describe("cold start: the market list load is shared", () => {
  it.scoped("300 concurrent cold requests share one load and one budget token, and none is refused", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(
        settings({ exchangeRateLimits: { binance: Option.some(1) }, maxBackoff: Duration.seconds(60) })
      )
      yield* fake.setMarketsLoaded(false)
      yield* fake.script({ delay: "500 millis", then: null })
      const fibers = yield* Effect.forEach(Array.from({ length: 300 }), () =>
        Effect.fork(Effect.either(exchange.resolve("binance", "BTC/USDT")))
      )
      yield* TestClock.adjust("500 millis")
      const results = yield* Effect.forEach(fibers, Fiber.join)
      expect(results.filter(Either.isRight)).toHaveLength(300)
      expect(yield* callTimes).toEqual([0])
    })
  )

  it.scoped("a failed shared load fails every waiter with its error; the next request loads again", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(settings({ maxRetries: 0 }))
      yield* fake.setMarketsLoaded(false)
      yield* fake.script({ delay: "100 millis", then: unavailable })
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }), () =>
        Effect.fork(Effect.either(exchange.resolve("binance", "BTC/USDT")))
      )
      yield* TestClock.adjust("100 millis")
      const results = yield* Effect.forEach(fibers, Fiber.join)
      expect(results.map((r) => Either.getLeft(r).pipe(Option.map((e) => e.code)))).toEqual(
        Array.from({ length: 20 }, () => Option.some("upstream_unavailable"))
      )
      expect(yield* callTimes).toHaveLength(1)
      expect(Either.isRight(yield* settle(exchange.resolve("binance", "BTC/USDT"), "1 millis"))).toBe(true)
      expect(yield* callTimes).toHaveLength(2)
    })
  )
})

describe("the budget is charged what is really sent", () => {
  it.scoped("coinbaseexchange /tickers of 4 symbols sends 4 requests: 4 tokens of a 2 per second budget", () =>
    Effect.gen(function* () {
      const { exchange, callTimes } = yield* setup(
        settings({ exchangeRateLimits: { binance: Option.some(2) }, maxBackoff: Duration.seconds(60) }),
        "coinbaseexchange"
      )
      const bulk = yield* Effect.fork(exchange.tickers("coinbaseexchange", ["A/USD", "B/USD", "C/USD", "D/USD"]))
      yield* TestClock.adjust("1 millis")
      // two tokens in the bucket, two more a second later
      expect(yield* callTimes).toEqual([])
      yield* TestClock.adjust("1 second")
      expect(yield* callTimes).toEqual([1000])
      yield* Fiber.join(bulk)
      // the bucket is empty again: the next single ticker waits for its token
      const next = yield* Effect.fork(exchange.ticker({ exchange: "coinbaseexchange", symbol: "A/USD" }))
      yield* TestClock.adjust("498 millis")
      expect(yield* callTimes).toHaveLength(1)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(next)
      expect(yield* callTimes).toEqual([1000, 1500])
    })
  )

  it.scoped("binance /tickers is one bulk request: one token", () =>
    Effect.gen(function* () {
      const { exchange, callTimes } = yield* setup(
        settings({ exchangeRateLimits: { binance: Option.some(2) }, maxBackoff: Duration.seconds(60) })
      )
      yield* settle(exchange.tickers("binance", ["A/USDT", "B/USDT", "C/USDT", "D/USDT"]), "1 millis")
      yield* settle(exchange.ticker(BTC), "1 millis")
      // both went out at once (the second one 1 ms later, when the test clock moved)
      expect(yield* callTimes).toEqual([0, 1])
    })
  )
})
