import { describe, expect, it } from "@effect/vitest"
import { Data, Deferred, Duration, Effect, Fiber, Layer, Option, Ref, TestClock } from "effect"
import { KvCache } from "../../src/Cache/KvCache.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCache } from "../../src/Cache/ResponseCache.js"
import { decodeStored, encodeStored, ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"

class Boom extends Data.TaggedError("Boom")<{ readonly n: number }> {}

const TestLayer = ResponseCacheLive.pipe(Layer.provideMerge(MemoryKvCacheLive({ maxEntries: 1_000 })))

/** A fetch that counts its runs and answers with a body naming the run. */
const counting = Effect.gen(function* () {
  const calls = yield* Ref.make(0)
  const fetch = Ref.updateAndGet(calls, (n) => n + 1).pipe(Effect.map((n) => JSON.stringify({ run: n })))
  return { calls, fetch }
})

/** Runs `effect` in the background, moves the TestClock by `by`, and waits for the result. */
const settleAfter = <A, E>(effect: Effect.Effect<A, E>, by: Duration.Duration) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(by)
    return yield* Fiber.join(fiber)
  })

describe("ResponseCache over the memory KvCache", () => {
  it.effect("MISS stores the body with its fetch time; a HIT returns it with the true Age", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const { calls, fetch } = yield* counting
      yield* TestClock.setTime(1_700_000_000_000)

      const miss = yield* cache.getOrFetch("ticker:BTC", Duration.seconds(10), fetch)
      expect(miss).toEqual({ body: '{"run":1}', storedAt: 1_700_000_000_000, age: 0, state: "MISS" })
      expect(yield* (yield* KvCache).get("ticker:BTC")).toEqual(Option.some('1700000000000\n{"run":1}'))

      yield* TestClock.adjust(Duration.millis(2_999))
      const hit = yield* cache.getOrFetch("ticker:BTC", Duration.seconds(10), fetch)
      expect(hit).toEqual({ body: '{"run":1}', storedAt: 1_700_000_000_000, age: 2, state: "HIT" })

      yield* TestClock.adjust(Duration.millis(1))
      expect((yield* cache.getOrFetch("ticker:BTC", Duration.seconds(10), fetch)).age).toBe(3)
      expect(yield* Ref.get(calls)).toBe(1)

      yield* TestClock.adjust(Duration.seconds(7))
      const expired = yield* cache.getOrFetch("ticker:BTC", Duration.seconds(10), fetch)
      expect(expired).toEqual({ body: '{"run":2}', storedAt: 1_700_000_010_000, age: 0, state: "MISS" })
      expect(yield* Ref.get(calls)).toBe(2)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("100 concurrent callers of one cold key run fetch exactly once and share the body", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const { calls, fetch } = yield* counting
      const slowFetch = Effect.zipRight(Effect.sleep(Duration.seconds(1)), fetch)

      const fiber = yield* Effect.all(
        Array.from({ length: 100 }, () => cache.getOrFetch("hot", Duration.seconds(5), slowFetch)),
        { concurrency: "unbounded" }
      ).pipe(Effect.fork)
      yield* TestClock.adjust(Duration.seconds(1))
      const results = yield* Fiber.join(fiber)

      expect(yield* Ref.get(calls)).toBe(1)
      expect(results).toHaveLength(100)
      expect(new Set(results.map((r) => r.body))).toEqual(new Set(['{"run":1}']))
      expect(results.every((r) => r.state === "MISS" && r.age === 0)).toBe(true)
      expect(yield* cache.getOrFetch("hot", Duration.seconds(5), slowFetch)).toMatchObject({
        body: '{"run":1}',
        state: "HIT"
      })
      expect(yield* Ref.get(calls)).toBe(1)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("a failure reaches every concurrent waiter and is not cached", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const calls = yield* Ref.make(0)
      const failing = Ref.updateAndGet(calls, (n) => n + 1).pipe(
        Effect.zipLeft(Effect.sleep(Duration.millis(100))),
        Effect.flatMap((n) => Effect.fail(new Boom({ n })))
      )
      const attempt = cache.getOrFetch("bad", Duration.seconds(5), failing)

      const errors = yield* settleAfter(
        Effect.all(
          Array.from({ length: 10 }, () => Effect.flip(attempt)),
          { concurrency: "unbounded" }
        ),
        Duration.millis(100)
      )
      expect(errors).toEqual(Array.from({ length: 10 }, () => new Boom({ n: 1 })))
      expect(yield* Ref.get(calls)).toBe(1)
      expect(yield* (yield* KvCache).get("bad")).toEqual(Option.none())

      expect(yield* settleAfter(Effect.flip(attempt), Duration.millis(100))).toEqual(new Boom({ n: 2 }))
      expect(yield* Ref.get(calls)).toBe(2)
      const ok = yield* cache.getOrFetch("bad", Duration.seconds(5), Effect.succeed('"fine"'))
      expect(ok).toMatchObject({ body: '"fine"', state: "MISS" })
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("different keys fetch separately", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const { calls, fetch } = yield* counting
      const [a, b] = yield* Effect.all(
        [cache.getOrFetch("a", Duration.seconds(5), fetch), cache.getOrFetch("b", Duration.seconds(5), fetch)],
        { concurrency: "unbounded" }
      )
      expect(yield* Ref.get(calls)).toBe(2)
      expect(new Set([a.body, b.body])).toEqual(new Set(['{"run":1}', '{"run":2}']))
      expect((yield* cache.getOrFetch("a", Duration.seconds(5), fetch)).body).toBe(a.body)
      expect((yield* cache.getOrFetch("b", Duration.seconds(5), fetch)).body).toBe(b.body)
      expect(yield* Ref.get(calls)).toBe(2)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("a TTL of zero never stores, but concurrent callers still share one fetch", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const { calls, fetch } = yield* counting
      const slowFetch = Effect.zipRight(Effect.sleep(Duration.millis(50)), fetch)

      const fiber = yield* Effect.all(
        Array.from({ length: 5 }, () => cache.getOrFetch("live", Duration.zero, slowFetch)),
        { concurrency: "unbounded" }
      ).pipe(Effect.fork)
      yield* TestClock.adjust(Duration.millis(50))
      const results = yield* Fiber.join(fiber)
      expect(yield* Ref.get(calls)).toBe(1)
      expect(results.map((r) => r.body)).toEqual(Array(5).fill('{"run":1}'))
      expect(yield* (yield* KvCache).get("live")).toEqual(Option.none())

      const next = yield* cache.getOrFetch("live", Duration.zero, fetch)
      expect(next).toMatchObject({ body: '{"run":2}', state: "MISS", age: 0 })
      expect(yield* Ref.get(calls)).toBe(2)
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("an interrupted first caller does not strand the others: the fetch completes for them", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const { calls, fetch } = yield* counting
      const gate = yield* Deferred.make<void>()
      const gated = Effect.zipRight(Deferred.await(gate), fetch)

      const leader = yield* Effect.fork(cache.getOrFetch("k", Duration.seconds(5), gated))
      yield* Effect.yieldNow()
      const follower = yield* Effect.fork(cache.getOrFetch("k", Duration.seconds(5), gated))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(leader)
      yield* Deferred.succeed(gate, undefined)

      expect(yield* Fiber.join(follower)).toMatchObject({ body: '{"run":1}', state: "MISS" })
      expect(yield* Ref.get(calls)).toBe(1)
      expect((yield* cache.getOrFetch("k", Duration.seconds(5), fetch)).state).toBe("HIT")
    }).pipe(Effect.provide(TestLayer))
  )

  it.effect("when every caller gives up, the fetch is interrupted and the next caller starts afresh", () =>
    Effect.gen(function* () {
      const cache = yield* ResponseCache
      const { calls, fetch } = yield* counting
      const interrupted = yield* Ref.make(0)
      const hanging = Effect.zipRight(
        Ref.update(calls, (n) => n + 1),
        Effect.never.pipe(Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1)))
      )

      const a = yield* Effect.fork(cache.getOrFetch("k", Duration.seconds(5), hanging))
      const b = yield* Effect.fork(cache.getOrFetch("k", Duration.seconds(5), hanging))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(a)
      expect(yield* Ref.get(interrupted)).toBe(0)
      yield* Fiber.interrupt(b)
      yield* Effect.yieldNow()
      expect(yield* Ref.get(interrupted)).toBe(1)
      expect(yield* Ref.get(calls)).toBe(1)

      const fresh = yield* cache.getOrFetch("k", Duration.seconds(5), fetch)
      expect(fresh).toMatchObject({ body: '{"run":2}', state: "MISS" })
    }).pipe(Effect.provide(TestLayer))
  )

  it("stored values round-trip through the storage encoding", () => {
    expect(decodeStored(encodeStored(42, 'a\nb{"x":1}'))).toEqual(Option.some({ storedAt: 42, body: 'a\nb{"x":1}' }))
    expect(decodeStored("garbage")).toEqual(Option.none())
    expect(decodeStored("12.5\nbody")).toEqual(Option.none())
  })
})
