import { describe, expect, it } from "@effect/vitest"
import { Data, Duration, Effect, Either, Layer, Option, Ref, TestClock } from "effect"
import { KvCache } from "../../src/Cache/KvCache.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCache } from "../../src/Cache/ResponseCache.js"
import { makeResponseCache, ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"

class Down extends Data.TaggedError("Down")<{ readonly transient: boolean }> {}

const TestLayer = ResponseCacheLive.pipe(Layer.provideMerge(MemoryKvCacheLive({ maxEntries: 1_000 })))
const T0 = 1_700_000_000_000
const TTL = Duration.seconds(10)
const options = { staleIfError: Duration.seconds(60), serveStale: (e: Down) => e.transient }

/** A fetch whose outcome the test switches: the body names the run. */
const switchable = Effect.gen(function* () {
  const calls = yield* Ref.make(0)
  const failing = yield* Ref.make<Down | null>(null)
  const fetch = Effect.gen(function* () {
    const n = yield* Ref.updateAndGet(calls, (c) => c + 1)
    const error = yield* Ref.get(failing)
    if (error !== null) return yield* Effect.fail(error)
    return JSON.stringify({ run: n })
  })
  return { calls, fetch, fail: (e: Down | null) => Ref.set(failing, e) }
})

describe("ResponseCache stale-if-error", () => {
  it.effect("a failed refresh within TTL + window serves the previous body as STALE with its true Age", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const { calls, fetch, fail } = yield* switchable
      yield* TestClock.setTime(T0)
      expect((yield* cache.getOrFetch("k", TTL, fetch, options)).state).toBe("MISS")
      // kept for TTL + window so that it outlives its freshness
      yield* TestClock.adjust("69 seconds")
      expect(Option.isSome(yield* (yield* KvCache).get("k"))).toBe(true)

      yield* TestClock.setTime(T0 + 25_000)
      yield* fail(new Down({ transient: true }))
      const stale = yield* cache.getOrFetch("k", TTL, fetch, options)
      expect(stale).toEqual({ body: '{"run":1}', storedAt: T0, age: 25, state: "STALE" })
      // the failure is not cached: the next request tries the upstream again
      yield* cache.getOrFetch("k", TTL, fetch, options)
      expect(yield* Ref.get(calls)).toBe(3)

      yield* fail(null)
      expect(yield* cache.getOrFetch("k", TTL, fetch, options)).toEqual({
        body: '{"run":4}',
        storedAt: T0 + 25_000,
        age: 0,
        state: "MISS"
      })
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("past the window, or for failures that are not upstream trouble, the error is returned", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const { fetch, fail } = yield* switchable
      yield* TestClock.setTime(T0)
      yield* cache.getOrFetch("k", TTL, fetch, options)

      yield* TestClock.adjust("30 seconds")
      yield* fail(new Down({ transient: false }))
      const notServed = yield* Effect.either(cache.getOrFetch("k", TTL, fetch, options))
      expect(Either.getLeft(notServed)).toEqual(Option.some(new Down({ transient: false })))

      yield* TestClock.setTime(T0 + 70_000)
      yield* fail(new Down({ transient: true }))
      const tooOld = yield* Effect.either(cache.getOrFetch("k", TTL, fetch, options))
      expect(Either.isLeft(tooOld)).toBe(true)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("without a window (the default) nothing stale is served", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const { fetch, fail } = yield* switchable
      yield* cache.getOrFetch("k", TTL, fetch)
      yield* TestClock.adjust("11 seconds")
      yield* fail(new Down({ transient: true }))
      expect(Either.isLeft(yield* Effect.either(cache.getOrFetch("k", TTL, fetch)))).toBe(true)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("the cache-wide staleFor applies when a call names no window", () =>
    Effect.gen(function* () {
      const cache = yield* makeResponseCache({ staleFor: "30 seconds" })
      const { fetch, fail } = yield* switchable
      yield* TestClock.setTime(T0)
      yield* cache.getOrFetch("k", TTL, fetch)
      yield* TestClock.adjust("39 seconds")
      yield* fail(new Down({ transient: true }))
      expect((yield* cache.getOrFetch("k", TTL, fetch)).state).toBe("STALE")
    }).pipe(Effect.scoped, Effect.provide(MemoryKvCacheLive({ maxEntries: 100 })))
  )

  it.effect("concurrent callers of a failing key share one fetch and all get the stale body", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const { calls, fetch, fail } = yield* switchable
      yield* cache.getOrFetch("k", TTL, fetch, options)
      yield* TestClock.adjust("15 seconds")
      yield* fail(new Down({ transient: true }))
      const slow = Effect.zipRight(Effect.sleep("1 second"), fetch)
      const fiber = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 20 }, () => cache.getOrFetch("k", TTL, slow, options)),
          { concurrency: "unbounded" }
        )
      )
      yield* TestClock.adjust("1 second")
      const results = yield* fiber.await.pipe(Effect.flatten)
      expect(new Set(results.map((r) => `${r.state} ${r.body} ${r.age}`))).toEqual(new Set(['STALE {"run":1} 16']))
      expect(yield* Ref.get(calls)).toBe(2)
    }).pipe(Effect.provide(TestLayer))
  )
})
