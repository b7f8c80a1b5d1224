import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, TestClock } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { KvCache } from "../../src/Cache/KvCache.js"
import { KvCacheLive } from "../../src/Cache/Live.js"
import { makeMemoryKvCache, MemoryKvCacheLive } from "../../src/Cache/Memory.js"

describe("MemoryKvCache", () => {
  it.effect("an entry lives exactly its TTL on the Effect clock", () =>
    Effect.gen(function* () {
      const cache = yield* makeMemoryKvCache({ maxEntries: 10 })
      yield* cache.set("k", "v", Duration.seconds(10))
      yield* TestClock.adjust(Duration.millis(9_999))
      expect(yield* cache.get("k")).toEqual(Option.some("v"))
      yield* TestClock.adjust(Duration.millis(2))
      expect(yield* cache.get("k")).toEqual(Option.none())
      expect(yield* cache.size).toBe(0)
    })
  )

  it.effect("increment counts in a fixed window that opens with the first increment", () =>
    Effect.gen(function* () {
      const cache = yield* makeMemoryKvCache({ maxEntries: 10 })
      expect(yield* cache.increment("n", Duration.seconds(10))).toEqual({ count: 1, resetInMs: 10_000 })
      yield* TestClock.adjust("4 seconds")
      expect(yield* cache.increment("n", Duration.seconds(10))).toEqual({ count: 2, resetInMs: 6_000 })
      yield* TestClock.adjust("6 seconds")
      expect(yield* cache.increment("n", Duration.seconds(10))).toEqual({ count: 1, resetInMs: 10_000 })
    })
  )

  it.effect("increment adds a batch at once; a batch opens a window like a single request", () =>
    Effect.gen(function* () {
      const cache = yield* makeMemoryKvCache({ maxEntries: 10 })
      expect(yield* cache.increment("n", Duration.seconds(10), 5)).toEqual({ count: 5, resetInMs: 10_000 })
      yield* TestClock.adjust("1 second")
      expect(yield* cache.increment("n", Duration.seconds(10), 7)).toEqual({ count: 12, resetInMs: 9_000 })
      expect(yield* cache.increment("n", Duration.seconds(10))).toEqual({ count: 13, resetInMs: 9_000 })
    })
  )

  it.effect("keeps at most maxEntries and evicts the least recently used key", () =>
    Effect.gen(function* () {
      const cache = yield* makeMemoryKvCache({ maxEntries: 3 })
      const ttl = Duration.minutes(1)
      yield* cache.set("a", "1", ttl)
      yield* cache.set("b", "2", ttl)
      yield* cache.set("c", "3", ttl)
      expect(yield* cache.get("a")).toEqual(Option.some("1"))
      yield* cache.set("d", "4", ttl)
      expect(yield* cache.size).toBe(3)
      expect(yield* cache.get("b")).toEqual(Option.none())
      expect(yield* cache.get("a")).toEqual(Option.some("1"))
      expect(yield* cache.get("c")).toEqual(Option.some("3"))
      expect(yield* cache.get("d")).toEqual(Option.some("4"))
      yield* cache.set("e", "5", ttl)
      expect(yield* cache.size).toBe(3)
      expect(yield* cache.get("a")).toEqual(Option.none())
    })
  )

  it.effect("overwriting replaces the value and restarts the TTL without growing", () =>
    Effect.gen(function* () {
      const cache = yield* makeMemoryKvCache({ maxEntries: 2 })
      yield* cache.set("k", "old", Duration.seconds(5))
      yield* TestClock.adjust(Duration.seconds(4))
      yield* cache.set("k", "new", Duration.seconds(5))
      expect(yield* cache.size).toBe(1)
      yield* TestClock.adjust(Duration.seconds(4))
      expect(yield* cache.get("k")).toEqual(Option.some("new"))
      yield* TestClock.adjust(Duration.millis(1_001))
      expect(yield* cache.get("k")).toEqual(Option.none())
    })
  )

  it.effect("a zero TTL removes the key", () =>
    Effect.gen(function* () {
      const cache = yield* makeMemoryKvCache({ maxEntries: 2 })
      yield* cache.set("k", "v", Duration.seconds(5))
      yield* cache.set("k", "v2", Duration.zero)
      expect(yield* cache.get("k")).toEqual(Option.none())
      expect(yield* cache.size).toBe(0)
    })
  )

  it.effect("expired entries are swept by the first write after each sweep interval", () =>
    Effect.gen(function* () {
      const cache = yield* makeMemoryKvCache({ maxEntries: 10, sweepInterval: Duration.seconds(30) })
      yield* cache.set("short", "1", Duration.seconds(1))
      yield* cache.set("long", "2", Duration.minutes(5))
      yield* TestClock.adjust(Duration.seconds(29))
      yield* cache.set("other", "3", Duration.minutes(5))
      expect(yield* cache.size).toBe(3)
      yield* TestClock.adjust(Duration.seconds(1))
      yield* cache.set("other", "4", Duration.minutes(5))
      expect(yield* cache.size).toBe(2)
      expect(yield* cache.get("long")).toEqual(Option.some("2"))
      yield* TestClock.adjust(Duration.minutes(5))
      expect(yield* cache.sweep).toBe(2)
      expect(yield* cache.size).toBe(0)
    })
  )

  it.effect("MemoryKvCacheLive reports memory/disabled", () =>
    Effect.gen(function* () {
      const cache = yield* KvCache
      yield* cache.set("k", "v", Duration.seconds(1))
      expect(yield* cache.get("k")).toEqual(Option.some("v"))
      expect(yield* cache.status).toEqual({ backend: "memory", redis: "disabled" })
    }).pipe(Effect.provide(MemoryKvCacheLive({ maxEntries: 10 })))
  )

  it.effect("KvCacheLive with REDIS_ENABLED=false is memory only, bounded by MEMORY_CACHE_MAX_ENTRIES", () =>
    Effect.gen(function* () {
      const cache = yield* KvCache
      expect(yield* cache.status).toEqual({ backend: "memory", redis: "disabled" })
      yield* cache.set("a", "1", Duration.seconds(1))
      yield* cache.set("b", "2", Duration.seconds(1))
      yield* cache.set("c", "3", Duration.seconds(1))
      expect(yield* cache.get("a")).toEqual(Option.none())
      expect(yield* cache.get("b")).toEqual(Option.some("2"))
      expect(yield* cache.get("c")).toEqual(Option.some("3"))
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* cache.get("c")).toEqual(Option.none())
    }).pipe(
      Effect.provide(
        KvCacheLive.pipe(Layer.provide(AppConfig.fromRecord({ REDIS_ENABLED: "false", MEMORY_CACHE_MAX_ENTRIES: "2" })))
      )
    )
  )
})
