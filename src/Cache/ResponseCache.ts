import { Context, type Duration, type Effect } from "effect"

export interface CachedResponse {
  /** The encoded JSON body, served as is. */
  readonly body: string
  /** When the body was fetched upstream, ms since epoch. */
  readonly storedAt: number
  /** Whole seconds since storedAt (the HTTP Age header). */
  readonly age: number
  readonly state: "HIT" | "MISS" | "STALE"
}

/**
 * Get-or-fetch over KvCache with in-flight coalescing: concurrent misses of one key run `fetch` once.
 */
export interface ResponseCacheService {
  readonly getOrFetch: <E>(
    key: string,
    ttl: Duration.Duration,
    fetch: Effect.Effect<string, E>
  ) => Effect.Effect<CachedResponse, E>
}

export class ResponseCache extends Context.Tag("app/ResponseCache")<ResponseCache, ResponseCacheService>() {}
