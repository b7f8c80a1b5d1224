import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Either, Fiber, Option, Ref, TestClock } from "effect"
import type { ResolvedMarket } from "../../src/Exchange/Exchange.js"
import { makeResilientExchange, type ResilienceSettings } from "../../src/Resilience/ResilientExchange.js"
import {
  badPayload,
  banned,
  makeFakeUpstream,
  notFound,
  rateLimited,
  settings,
  settle,
  timeout,
  unavailable
} from "./fakeExchange.js"

const BTC: ResolvedMarket = { exchange: "binance", symbol: "BTC/USDT" }

const setup = (s: ResilienceSettings) =>
  Effect.gen(function* () {
    const fake = yield* makeFakeUpstream
    const { exchange, resilience } = yield* makeResilientExchange(fake.service, s)
    const circuit = Effect.map(resilience.circuits, (all) => all["binance"])
    const callTimes = Ref.get(fake.calls)
    return { fake, exchange, circuit, callTimes }
  })

const gaps = (times: ReadonlyArray<number>) => times.slice(1).map((t, i) => t - (times[i] ?? 0))

describe("retries", () => {
  it.scoped("retryable failures: exactly MAX_RETRIES retries, exponential, jittered, capped at MAX_BACKOFF", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(settings({ maxBackoff: Duration.millis(300) }))
      yield* fake.script(unavailable, timeout, unavailable, unavailable, unavailable)
      const result = yield* settle(exchange.ticker(BTC))
      expect(Either.getLeft(result)).toEqual(Option.some(unavailable))
      const times = yield* callTimes
      expect(times).toHaveLength(4)
      const [g1 = 0, g2 = 0, g3 = 0] = gaps(times)
      expect(g1).toBeGreaterThanOrEqual(80)
      expect(g1).toBeLessThanOrEqual(120)
      expect(g2).toBeGreaterThanOrEqual(160)
      expect(g2).toBeLessThanOrEqual(240)
      expect(g3).toBeCloseTo(300, 0)
    })
  )

  it.scoped("a transient failure then success returns the value", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(settings())
      yield* fake.script(unavailable, timeout)
      const result = yield* settle(exchange.ticker(BTC))
      expect(Either.isRight(result)).toBe(true)
      expect(yield* callTimes).toHaveLength(3)
    })
  )

  it.scoped("non-retryable failures (unknown symbol, bad payload) fail at once", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(settings())
      yield* fake.script(notFound, badPayload)
      expect(Either.getLeft(yield* settle(exchange.ticker(BTC)))).toEqual(Option.some(notFound))
      expect(Either.getLeft(yield* settle(exchange.ticker(BTC)))).toEqual(Option.some(badPayload))
      expect(yield* callTimes).toHaveLength(2)
    })
  )

  it.scoped("MAX_RETRIES=0 means one attempt", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(settings({ maxRetries: 0 }))
      yield* fake.script(unavailable)
      expect(Either.isLeft(yield* settle(exchange.ticker(BTC)))).toBe(true)
      expect(yield* callTimes).toHaveLength(1)
    })
  )
})

describe("429 and Retry-After", () => {
  it.scoped("a Retry-After within MAX_BACKOFF is waited out, then the call is retried", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(settings())
      yield* fake.script(rateLimited(1))
      const result = yield* settle(exchange.ticker(BTC))
      expect(Either.isRight(result)).toBe(true)
      const [gap = 0] = gaps(yield* callTimes)
      expect(gap).toBeGreaterThanOrEqual(1000)
      expect(gap).toBeLessThan(1100)
    })
  )

  it.scoped("a Retry-After beyond MAX_BACKOFF fails at once and pauses every call for that window", () =>
    Effect.gen(function* () {
      const { fake, exchange, circuit, callTimes } = yield* setup(settings())
      yield* fake.script(rateLimited(30))
      const first = yield* settle(exchange.ticker(BTC), "1 millis")
      expect(Either.getLeft(first)).toEqual(Option.some(rateLimited(30)))
      yield* TestClock.adjust("10 seconds")
      const paused = yield* settle(exchange.ticker(BTC), "1 millis")
      expect(
        Either.getLeft(paused).pipe(Option.map((e) => [e._tag, e.code, "retryAfter" in e && e.retryAfter]))
      ).toEqual(Option.some(["RateLimited", "upstream_rate_limited", 20]))
      expect(yield* callTimes).toHaveLength(1)
      expect((yield* circuit)?.rateLimitedFor).toBe(20)
      // within MAX_BACKOFF of the end the pause is waited out instead of refused
      yield* TestClock.adjust("18500 millis")
      const waited = yield* settle(exchange.ticker(BTC), "2 seconds")
      expect(Either.isRight(waited)).toBe(true)
      const times = yield* callTimes
      expect(times).toHaveLength(2)
      expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(30_000)
    })
  )
})

describe("circuit", () => {
  it.scoped("418: one call, then none for the ban window; callers get upstream_banned with the remaining time", () =>
    Effect.gen(function* () {
      const { fake, exchange, circuit, callTimes } = yield* setup(settings())
      yield* fake.script(banned(120))
      const first = yield* settle(exchange.ticker(BTC), "1 millis")
      expect(Either.getLeft(first)).toEqual(Option.some(banned(120)))
      expect(yield* circuit).toEqual({
        state: "open",
        reason: "banned",
        retryAfter: 120,
        consecutiveFailures: 0,
        rateLimitedFor: null
      })
      yield* TestClock.adjust("20 seconds")
      for (let i = 0; i < 5; i++) {
        const refused = yield* settle(exchange.ticker(BTC), "1 millis")
        const error = Either.getLeft(refused)
        expect(Option.map(error, (e) => e.code)).toEqual(Option.some("upstream_banned"))
        expect(Option.map(error, (e) => ("retryAfter" in e ? e.retryAfter : null))).toEqual(Option.some(100))
      }
      // resolving a symbol is local once markets are loaded, so it still works during the ban
      expect(Either.isRight(yield* settle(exchange.resolve("binance", "BTC/USDT"), "1 millis"))).toBe(true)
      expect(yield* callTimes).toHaveLength(1)
      yield* TestClock.adjust("100 seconds")
      expect((yield* circuit)?.state).toBe("half-open")
      const after = yield* settle(exchange.ticker(BTC), "1 millis")
      expect(Either.isRight(after)).toBe(true)
      expect((yield* circuit)?.state).toBe("closed")
      expect(yield* callTimes).toHaveLength(2)
    })
  )

  it.scoped("a ban during another request's retries stops them: no call goes out after the 418", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(settings())
      yield* fake.script(unavailable, banned(60))
      const result = yield* settle(exchange.ticker(BTC), "5 seconds")
      expect(Option.map(Either.getLeft(result), (e) => e.code)).toEqual(Option.some("upstream_banned"))
      expect(yield* callTimes).toHaveLength(2)
    })
  )

  it.scoped("a call that was in flight when the ban began does not close the circuit", () =>
    Effect.gen(function* () {
      const { fake, exchange, circuit } = yield* setup(settings({ maxRetries: 0 }))
      yield* fake.script({ delay: "1 second", then: null }, banned(60))
      const slow = yield* Effect.fork(exchange.ticker(BTC))
      yield* TestClock.adjust("10 millis")
      yield* settle(exchange.ticker({ exchange: "binance", symbol: "ETH/USDT" }), "1 millis")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(slow)
      expect((yield* circuit)?.state).toBe("open")
    })
  )

  it.scoped("CIRCUIT_FAILURE_THRESHOLD consecutive failures open it; one probe after the cooldown decides", () =>
    Effect.gen(function* () {
      const { fake, exchange, circuit, callTimes } = yield* setup(
        settings({ maxRetries: 0, circuitFailureThreshold: 2, circuitCooldown: Duration.seconds(30) })
      )
      yield* fake.script(unavailable, timeout)
      yield* settle(exchange.ticker(BTC), "1 millis")
      expect((yield* circuit)?.state).toBe("closed")
      yield* settle(exchange.ticker(BTC), "1 millis")
      expect(yield* circuit).toMatchObject({ state: "open", reason: "failing", retryAfter: 30, consecutiveFailures: 2 })
      const refused = yield* settle(exchange.ticker(BTC), "1 millis")
      expect(Option.map(Either.getLeft(refused), (e) => e.code)).toEqual(Option.some("upstream_unavailable"))
      expect(yield* callTimes).toHaveLength(2)

      // the probe fails: open again for another cooldown
      yield* TestClock.adjust("30 seconds")
      yield* fake.script({ delay: "1 second", then: unavailable })
      const probe = yield* Effect.fork(Effect.either(exchange.ticker(BTC)))
      yield* TestClock.adjust("10 millis")
      const duringProbe = yield* settle(exchange.ticker(BTC), "1 millis")
      expect(Option.map(Either.getLeft(duringProbe), (e) => e.message)).toEqual(
        Option.some("binance is being checked after failing; retry in 1 s")
      )
      yield* TestClock.adjust("1 second")
      expect(Either.isLeft(yield* Fiber.join(probe))).toBe(true)
      expect((yield* circuit)?.state).toBe("open")
      expect(yield* callTimes).toHaveLength(3)

      // the next probe succeeds: closed, counter reset
      yield* TestClock.adjust("30 seconds")
      expect(Either.isRight(yield* settle(exchange.ticker(BTC), "1 millis"))).toBe(true)
      expect(yield* circuit).toMatchObject({ state: "closed", consecutiveFailures: 0 })
    })
  )

  it.scoped("one failure that opens the circuit says 'failed once', not 'failed 1 times in a row'", () =>
    Effect.gen(function* () {
      const { fake, exchange } = yield* setup(settings({ maxRetries: 0, circuitFailureThreshold: 1 }))
      yield* fake.script(unavailable)
      yield* settle(exchange.ticker(BTC), "1 millis")
      const refused = yield* settle(exchange.ticker(BTC), "1 millis")
      expect(Option.map(Either.getLeft(refused), (e) => e.message)).toEqual(
        Option.some("binance failed once; requests to it are paused for another 30 s")
      )
    })
  )

  it.scoped("an interrupted probe lets the next caller probe", () =>
    Effect.gen(function* () {
      const { fake, exchange, circuit } = yield* setup(settings({ maxRetries: 0, circuitFailureThreshold: 1 }))
      yield* fake.script(unavailable, { delay: "10 seconds", then: null })
      yield* settle(exchange.ticker(BTC), "1 millis")
      yield* TestClock.adjust("30 seconds")
      const probe = yield* Effect.fork(exchange.ticker(BTC))
      yield* TestClock.adjust("10 millis")
      yield* Fiber.interrupt(probe)
      expect(Either.isRight(yield* settle(exchange.ticker(BTC), "1 millis"))).toBe(true)
      expect((yield* circuit)?.state).toBe("closed")
    })
  )

  it.scoped("loading markets goes through the circuit; resolving once loaded does not", () =>
    Effect.gen(function* () {
      const { fake, exchange, callTimes } = yield* setup(settings({ maxRetries: 1 }))
      yield* fake.setMarketsLoaded(false)
      yield* fake.script(banned(60))
      const load = yield* settle(exchange.resolve("binance", "BTC/USDT"), "1 millis")
      expect(Option.map(Either.getLeft(load), (e) => e._tag)).toEqual(Option.some("UpstreamUnavailable"))
      const again = yield* settle(exchange.resolve("binance", "BTC/USDT"), "1 millis")
      expect(Option.map(Either.getLeft(again), (e) => ("code" in e ? e.code : null))).toEqual(
        Option.some("upstream_banned")
      )
      expect(yield* callTimes).toHaveLength(1)
    })
  )
})

describe("outbound budget", () => {
  it.scoped("a per-exchange token bucket: 2 requests per second whatever the concurrency", () =>
    Effect.gen(function* () {
      const { exchange, callTimes } = yield* setup(
        settings({ exchangeRateLimits: { binance: Option.some(2) }, maxBackoff: Duration.seconds(60) })
      )
      const start = yield* Clock.currentTimeMillis
      const fibers = yield* Effect.forEach(Array.from({ length: 8 }), () => Effect.fork(exchange.ticker(BTC)))
      yield* TestClock.adjust("1 millis")
      expect(yield* callTimes).toHaveLength(2)
      yield* TestClock.adjust("1 second")
      expect(yield* callTimes).toHaveLength(4)
      yield* TestClock.adjust("2 seconds")
      expect(yield* callTimes).toHaveLength(8)
      yield* Effect.forEach(fibers, Fiber.join)
      const times = (yield* callTimes).map((t) => t - start)
      expect(times.slice(2).every((t, i) => t >= 500 * (i + 1))).toBe(true)
    })
  )

  it.scoped("callers that would wait longer than MAX_BACKOFF for budget are refused with 429 at once", () =>
    Effect.gen(function* () {
      const { exchange, callTimes } = yield* setup(
        settings({ exchangeRateLimits: { binance: Option.some(1) }, maxBackoff: Duration.seconds(2) })
      )
      const fibers = yield* Effect.forEach(Array.from({ length: 5 }), () =>
        Effect.fork(Effect.either(exchange.ticker(BTC)))
      )
      yield* TestClock.adjust("10 seconds")
      const results = yield* Effect.forEach(fibers, Fiber.join)
      expect(results.filter(Either.isRight)).toHaveLength(3)
      const refused = results.filter(Either.isLeft).map((r) => r.left)
      expect(refused.map((e) => e.code)).toEqual(["upstream_rate_limited", "upstream_rate_limited"])
      expect(yield* callTimes).toHaveLength(3)
    })
  )

  it.scoped("budget from ccxt's rateLimit when none is configured", () =>
    Effect.gen(function* () {
      const fake = yield* makeFakeUpstream
      const { exchange } = yield* makeResilientExchange(
        fake.service,
        settings({ exchangeRateLimits: {}, maxBackoff: Duration.seconds(60) }),
        { rateLimitMs: () => Effect.succeed(Option.some(500)) }
      )
      yield* Effect.forEach(Array.from({ length: 4 }), () => Effect.fork(exchange.ticker(BTC)))
      yield* TestClock.adjust("1 millis")
      expect(yield* Ref.get(fake.calls)).toHaveLength(2)
      yield* TestClock.adjust("1 second")
      expect(yield* Ref.get(fake.calls)).toHaveLength(4)
    })
  )
})
