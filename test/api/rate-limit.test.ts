import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import fc from "fast-check"
import { AppConfig } from "../../src/AppConfig.js"
import { KvCache, type KvCacheService, type WindowCount } from "../../src/Cache/KvCache.js"
import { localAccounting, makeRateLimiter, type RateLimiterService } from "../../src/Http/RateLimit.js"

/** A shared counter standing in for Redis: each increment lands and is answered after its own random delay. */
const makeSharedCounter = () => {
  const state = { count: 0, calls: 0, shared: true }
  const later = <A>(f: () => A) =>
    new Promise<A>((resolve) => setTimeout(() => resolve(f()), Math.floor(Math.random() * 3)))
  const kv: KvCacheService = {
    get: () => Effect.succeed(Option.none()),
    set: () => Effect.void,
    increment: (_key, _window, by = 1) =>
      Effect.promise(async () => {
        const count = await later(() => {
          state.calls += 1
          state.count += by
          return state.count
        })
        return await later((): WindowCount => ({ count, resetInMs: 60_000 }))
      }),
    countsShared: () => state.shared,
    status: Effect.succeed({ backend: "redis", redis: "up" })
  }
  return { state, kv }
}

/** `instances` rate limiters over one KvCache, as several servers over one Redis; closed with `close`. */
const makeInstances = async (kv: KvCacheService, limit: number, instances: number) => {
  const scope = Effect.runSync(Scope.make())
  const layer = Layer.merge(AppConfig.fromRecord({ RATE_LIMIT_REQUESTS: String(limit) }), Layer.succeed(KvCache, kv))
  const limiters: Array<RateLimiterService> = []
  for (let i = 0; i < instances; i++) {
    limiters.push(await Effect.runPromise(makeRateLimiter.pipe(Effect.provide(layer), Scope.extend(scope))))
  }
  return { limiters, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

/** Sends `total` requests of one client, spread over the instances by `pick`, `concurrency` at a time. */
const load = async (
  limiters: ReadonlyArray<RateLimiterService>,
  total: number,
  concurrency: number,
  pick: (i: number) => number
) => {
  let next = 0
  let admitted = 0
  const remaining: Array<number> = []
  const worker = async () => {
    while (next < total) {
      const limiter = limiters[pick(next++) % limiters.length]
      if (limiter === undefined) return
      const decision = await Effect.runPromise(limiter.check("ip:1"))
      remaining.push(Number(decision.headers["ratelimit-remaining"]))
      if (decision.allowed) admitted += 1
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { admitted, remaining }
}

describe("local accounting of the inbound rate limit", () => {
  it("small limits are always exact; larger ones keep 10 % for exact decisions", () => {
    expect(localAccounting(3)).toEqual({ threshold: 20, maxUnsynced: 5 })
    expect(localAccounting(100)).toEqual({ threshold: 20, maxUnsynced: 5 })
    expect(localAccounting(1_000)).toEqual({ threshold: 100, maxUnsynced: 25 })
    expect(localAccounting(1_000_000_000)).toEqual({ threshold: 100_000_000, maxUnsynced: 25_000_000 })
  })

  it("far from the limit requests are decided without a round trip and reach the counter in batches", async () => {
    const { state, kv } = makeSharedCounter()
    const { limiters, close } = await makeInstances(kv, 100_000, 1)
    const [limiter] = limiters
    if (limiter === undefined) throw new Error("no limiter")
    // the first request of a window reads the shared counter; the next ones are local
    expect((await Effect.runPromise(limiter.check("ip:1"))).headers["ratelimit-remaining"]).toBe("99999")
    const local = Array.from({ length: 500 }, () => limiter.tryLocal("ip:1"))
    expect(local.every((d) => d?.allowed === true)).toBe(true)
    expect(local.at(-1)?.headers["ratelimit-remaining"]).toBe("99499")
    expect(state.calls).toBe(1)
    await Effect.runPromise(limiter.sync)
    expect([state.calls, state.count]).toEqual([2, 501])
    await close()
  })

  it("near the limit every request is exact: increments by another instance are seen at once", async () => {
    const { state, kv } = makeSharedCounter()
    const { limiters, close } = await makeInstances(kv, 40, 1)
    const [limiter] = limiters
    if (limiter === undefined) throw new Error("no limiter")
    await Effect.runPromise(limiter.check("ip:1"))
    expect(limiter.tryLocal("ip:1")?.headers["ratelimit-remaining"]).toBe("38")
    await Effect.runPromise(limiter.sync)
    state.count += 20 // another instance
    // the last reply said 2 of 40: still local, the other instance's 20 unseen
    expect(limiter.tryLocal("ip:1")?.headers["ratelimit-remaining"]).toBe("37")
    await Effect.runPromise(limiter.sync)
    // 23 counted: fewer than 20 left, so from here on only the shared counter decides
    expect(limiter.tryLocal("ip:1")).toBeUndefined()
    state.count += 5
    expect((await Effect.runPromise(limiter.check("ip:1"))).headers["ratelimit-remaining"]).toBe("11")
    state.count = 39
    expect((await Effect.runPromise(limiter.check("ip:1"))).allowed).toBe(true)
    const over = await Effect.runPromise(limiter.check("ip:1"))
    expect([over.allowed, over.headers["ratelimit-remaining"]]).toEqual([false, "0"])
    await close()
  })

  it("without a shared counter (memory) every request is exact", async () => {
    const { state, kv } = makeSharedCounter()
    state.shared = false
    const { limiters, close } = await makeInstances(kv, 1_000, 1)
    const result = await load(limiters, 1_100, 8, () => 0)
    expect(result.admitted).toBe(1_000)
    expect(state.calls).toBe(1_100)
    await close()
  })

  it("instances sharing a counter admit at least the limit and at most limit + instances × maxUnsynced", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 32 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
        async (limit, instances, concurrency, spread) => {
          const { state, kv } = makeSharedCounter()
          const { limiters, close } = await makeInstances(kv, limit, instances)
          const total = 2 * limit + 50
          const { admitted } = await load(limiters, total, concurrency, (i) => spread[i % spread.length] ?? 0)
          expect(admitted).toBeGreaterThanOrEqual(limit)
          expect(admitted).toBeLessThanOrEqual(limit + instances * localAccounting(limit).maxUnsynced)
          // every request, admitted or not, is counted exactly once
          await Promise.all(limiters.map((l) => Effect.runPromise(l.sync)))
          expect(state.count).toBe(total)
          await close()
        }
      ),
      { numRuns: 25 }
    )
  }, 60_000)
})
