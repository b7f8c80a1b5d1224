import { Clock, Duration, Effect, Layer, Option } from "effect"
import { KvCache, type WindowCount } from "./KvCache.js"

export interface MemoryKvCacheOptions {
  /** Upper bound on stored entries; the least recently used entry is evicted first. */
  readonly maxEntries: number
  /** Minimum time between sweeps of expired entries, which run on writes (reads drop them too). Default 30 seconds. */
  readonly sweepInterval?: Duration.DurationInput
}

export interface MemoryKvCache {
  readonly get: (key: string) => Effect.Effect<Option.Option<string>>
  readonly increment: (key: string, window: Duration.Duration, by?: number) => Effect.Effect<WindowCount>
  /** A TTL of zero or less removes the key. */
  readonly set: (key: string, value: string, ttl: Duration.Duration) => Effect.Effect<void>
  /** Number of stored entries, including expired ones not yet swept. */
  readonly size: Effect.Effect<number>
  /** Drops every expired entry now and returns how many were dropped. */
  readonly sweep: Effect.Effect<number>
}

interface Entry {
  readonly value: string
  readonly expiresAt: number
}

/** A bounded in-process LRU map with per-entry TTL. Time comes from `Clock`, so `TestClock` drives expiry. */
export const makeMemoryKvCache = (options: MemoryKvCacheOptions): Effect.Effect<MemoryKvCache> =>
  Effect.sync(() => {
    const maxEntries = Math.max(1, Math.floor(options.maxEntries))
    const sweepIntervalMs = Duration.toMillis(options.sweepInterval ?? Duration.seconds(30))
    // A Map iterates in insertion order; re-inserting on every read keeps the least recently used key first.
    const entries = new Map<string, Entry>()
    // Sweeping from writes rather than from a timer fiber keeps TestClock.setTime/adjust cheap for everyone.
    let nextSweepAt = -Infinity

    const sweepAt = (now: number) => {
      nextSweepAt = now + sweepIntervalMs
      let dropped = 0
      for (const [key, entry] of entries) {
        if (now >= entry.expiresAt) {
          entries.delete(key)
          dropped++
        }
      }
      return dropped
    }

    const get = Effect.fn("MemoryKvCache.get")(function* (key: string) {
      const now = yield* Clock.currentTimeMillis
      const entry = entries.get(key)
      if (entry === undefined) return Option.none<string>()
      entries.delete(key)
      if (now >= entry.expiresAt) return Option.none<string>()
      entries.set(key, entry)
      return Option.some(entry.value)
    })

    const set = Effect.fn("MemoryKvCache.set")(function* (key: string, value: string, ttl: Duration.Duration) {
      const now = yield* Clock.currentTimeMillis
      const ttlMs = Duration.toMillis(ttl)
      if (now >= nextSweepAt) sweepAt(now)
      entries.delete(key)
      if (!(ttlMs > 0)) return
      entries.set(key, { value, expiresAt: now + ttlMs })
      for (const oldest of entries.keys()) {
        if (entries.size <= maxEntries) break
        entries.delete(oldest)
      }
    })

    const increment = Effect.fn("MemoryKvCache.increment")(function* (
      key: string,
      window: Duration.Duration,
      by: number = 1
    ) {
      const now = yield* Clock.currentTimeMillis
      const entry = entries.get(key)
      if (entry !== undefined && now < entry.expiresAt) {
        const count = Number(entry.value) + by
        entries.set(key, { value: String(count), expiresAt: entry.expiresAt })
        return { count, resetInMs: entry.expiresAt - now }
      }
      const windowMs = Math.max(1, Duration.toMillis(window))
      yield* set(key, String(by), Duration.millis(windowMs))
      return { count: by, resetInMs: windowMs }
    })

    return {
      get,
      set,
      increment,
      size: Effect.sync(() => entries.size),
      sweep: Effect.map(Clock.currentTimeMillis, sweepAt)
    } satisfies MemoryKvCache
  })

/** KvCache served from process memory only (redis status "disabled"). */
export const MemoryKvCacheLive = (options: MemoryKvCacheOptions): Layer.Layer<KvCache> =>
  Layer.effect(
    KvCache,
    Effect.map(makeMemoryKvCache(options), (memory) =>
      KvCache.of({
        get: memory.get,
        set: memory.set,
        increment: memory.increment,
        countsShared: () => false,
        status: Effect.succeed({ backend: "memory", redis: "disabled" })
      })
    )
  )
