import { Context, type Duration, type Effect, type Option } from "effect"

export interface CacheStatus {
  /** Where reads and writes go right now. */
  readonly backend: "redis" | "memory"
  readonly redis: "up" | "down" | "disabled"
}

/**
 * A string key-value store with per-entry TTL. It never fails: when Redis is down the
 * implementation serves from memory, so a cache problem never fails a request.
 */
export interface WindowCount {
  /** Increments within the current window, this one included. */
  readonly count: number
  /** Milliseconds until the window ends and the count starts again from zero. */
  readonly resetInMs: number
}

export interface KvCacheService {
  readonly get: (key: string) => Effect.Effect<Option.Option<string>>
  readonly set: (key: string, value: string, ttl: Duration.Duration) => Effect.Effect<void>
  /**
   * Fixed-window counter: adds `by` (default 1); the first increment opens a window of `window`. Shared by instances
   * through Redis.
   */
  readonly increment: (key: string, window: Duration.Duration, by?: number) => Effect.Effect<WindowCount>
  /** Whether `increment` counts in Redis (shared by instances) right now: read from connection state, no round trip. */
  readonly countsShared: () => boolean
  readonly status: Effect.Effect<CacheStatus>
}

export class KvCache extends Context.Tag("app/KvCache")<KvCache, KvCacheService>() {}
