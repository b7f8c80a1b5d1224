import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Either, Fiber, Option, TestClock } from "effect"
import {
  CmcBadRequest,
  CmcBadResponse,
  type CmcError,
  CmcNotConfigured,
  CmcRateLimited,
  CmcSymbolNotFound,
  CmcTimeout,
  CmcUnauthorized,
  CmcUnavailable
} from "../../src/Cmc/Errors.js"
import { type CmcRetrySettings, cmcRetryPolicy, defaultRetryAfterMs, parseRetryAfter } from "../../src/Cmc/Retry.js"

const settings: CmcRetrySettings = {
  maxRetries: 4,
  initialBackoff: "100 millis",
  maxBackoff: "300 millis",
  backoffMultiplier: 2
}

const unavailable = new CmcUnavailable({ status: 503, message: "down" })
const rateLimited = (retryAfterMs: number) =>
  new CmcRateLimited({ errorCode: 1008, retryAfterMs, message: "slow down" })

/** Runs an attempt that fails with `failWith(n)` (n = 1, 2, …; null = succeed) under the policy on the TestClock. */
const drive = (policy: CmcRetrySettings, failWith: (attempt: number) => CmcError | null) =>
  Effect.gen(function* () {
    const at: Array<number> = []
    const fiber = yield* Effect.gen(function* () {
      at.push(yield* Clock.currentTimeMillis)
      const error = failWith(at.length)
      if (error !== null) return yield* Effect.fail(error)
      return "ok" as const
    }).pipe(Effect.retry(cmcRetryPolicy(policy)), Effect.either, Effect.fork)
    yield* TestClock.adjust("1 hour")
    const result = yield* Fiber.join(fiber)
    const gaps = at.slice(1).map((t, i) => t - (at[i] ?? 0))
    return { result, attempts: at.length, gaps }
  })

describe("cmcRetryPolicy", () => {
  it.effect("exponential from initialBackoff x multiplier, jittered, capped at maxBackoff, maxRetries retries", () =>
    Effect.gen(function* () {
      const { result, attempts, gaps } = yield* drive(settings, () => unavailable)
      expect(Either.getLeft(result)).toEqual(Option.some(unavailable))
      expect(attempts).toBe(5)
      const [g1 = 0, g2 = 0, g3 = 0, g4 = 0] = gaps
      expect(g1).toBeGreaterThanOrEqual(80)
      expect(g1).toBeLessThanOrEqual(120)
      expect(g2).toBeGreaterThanOrEqual(160)
      expect(g2).toBeLessThanOrEqual(240)
      // 400 and 800 ms jittered, both over the 300 ms cap (fractional ms from jitter add up, hence toBeCloseTo)
      expect(g3).toBeCloseTo(300, 6)
      expect(g4).toBeCloseTo(300, 6)
    })
  )

  it.effect("maxRetries 0 means one attempt", () =>
    Effect.gen(function* () {
      const { attempts } = yield* drive({ ...settings, maxRetries: 0 }, () => unavailable)
      expect(attempts).toBe(1)
    })
  )

  it.effect("retries CmcTimeout and CmcUnavailable until success", () =>
    Effect.gen(function* () {
      const timeout = new CmcTimeout({ timeoutMs: 10, message: "slow" })
      const { result, attempts } = yield* drive(settings, (n) => (n === 1 ? timeout : n === 2 ? unavailable : null))
      expect(result).toEqual(Either.right("ok"))
      expect(attempts).toBe(3)
    })
  )

  it.effect("never retries the non-retryable errors", () =>
    Effect.gen(function* () {
      const errors: ReadonlyArray<CmcError> = [
        new CmcUnauthorized({ status: 401, errorCode: 1001, message: "bad key" }),
        new CmcBadResponse({ status: 200, message: "html" }),
        new CmcBadRequest({ status: 400, errorCode: 400, message: "bad convert" }),
        new CmcSymbolNotFound({ symbols: ["FOO"], message: "no FOO" }),
        new CmcNotConfigured({ message: "no key" })
      ]
      for (const error of errors) {
        const { result, attempts } = yield* drive(settings, () => error)
        expect(attempts).toBe(1)
        expect(Either.getLeft(result)).toEqual(Option.some(error))
      }
    })
  )

  it.effect("waits at least Retry-After after a 429", () =>
    Effect.gen(function* () {
      const { result, gaps } = yield* drive({ ...settings, maxBackoff: "10 seconds" }, (n) =>
        n === 1 ? rateLimited(5_000) : null
      )
      expect(result).toEqual(Either.right("ok"))
      expect(gaps).toEqual([5_000])
    })
  )

  it.effect("keeps the backoff when it is longer than Retry-After", () =>
    Effect.gen(function* () {
      const { gaps } = yield* drive({ ...settings, initialBackoff: "1 second", maxBackoff: "10 seconds" }, (n) =>
        n === 1 ? rateLimited(10) : null
      )
      expect(gaps[0]).toBeGreaterThanOrEqual(800)
      expect(gaps[0]).toBeLessThanOrEqual(1200)
    })
  )

  it.effect("does not retry a 429 asking for longer than maxBackoff", () =>
    Effect.gen(function* () {
      const limited = rateLimited(301)
      const { result, attempts } = yield* drive(settings, () => limited)
      expect(attempts).toBe(1)
      expect(Either.getLeft(result)).toEqual(Option.some(limited))
    })
  )
})

describe("parseRetryAfter", () => {
  const now = Date.UTC(2024, 4, 1, 12, 35, 0)

  it("reads delta-seconds", () => {
    expect(parseRetryAfter("2", now)).toEqual(Option.some(2_000))
    expect(parseRetryAfter(" 0 ", now)).toEqual(Option.some(0))
    expect(parseRetryAfter("1.5", now)).toEqual(Option.some(1_500))
  })

  it("reads an HTTP-date relative to now; a past date means now", () => {
    expect(parseRetryAfter("Wed, 01 May 2024 12:35:30 GMT", now)).toEqual(Option.some(30_000))
    expect(parseRetryAfter("Wed, 01 May 2024 12:00:00 GMT", now)).toEqual(Option.some(0))
  })

  it("ignores absent or unreadable values", () => {
    expect(parseRetryAfter(undefined, now)).toEqual(Option.none())
    expect(parseRetryAfter("", now)).toEqual(Option.none())
    expect(parseRetryAfter("soon", now)).toEqual(Option.none())
    expect(parseRetryAfter("-5", now)).toEqual(Option.none())
    expect(parseRetryAfter("1e3", now)).toEqual(Option.none())
  })
})

describe("defaultRetryAfterMs", () => {
  it("is a minute for 1008, 1011 and unknown codes", () => {
    const now = Date.UTC(2024, 4, 1, 12, 0, 0)
    expect(defaultRetryAfterMs(1008, now)).toBe(60_000)
    expect(defaultRetryAfterMs(1011, now)).toBe(60_000)
    expect(defaultRetryAfterMs(null, now)).toBe(60_000)
  })

  it("waits for the next UTC day (1009) or month (1010)", () => {
    expect(defaultRetryAfterMs(1009, Date.UTC(2024, 4, 1, 23, 59, 0))).toBe(60_000)
    expect(defaultRetryAfterMs(1010, Date.UTC(2024, 4, 31, 23, 0, 0))).toBe(3_600_000)
    expect(defaultRetryAfterMs(1010, Date.UTC(2024, 11, 31, 23, 59, 0))).toBe(60_000)
  })
})
