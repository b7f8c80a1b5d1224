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

export interface FetchOptions<E> {
  /**
   * Stale-if-error: keep the entry this long past its TTL, and when `fetch` fails with an error `serveStale` accepts,
   * answer with it ("STALE", true Age) instead of the error. Defaults to the cache's `staleFor` (0: off).
   */
  readonly staleIfError?: Duration.Duration
  /** Which failures may be answered with a stale entry; every failure when omitted. */
  readonly serveStale?: (error: E) => boolean
}

/**
 * A fetched body with a freshness of its own, shorter than the caller's TTL: an OHLCV answer that includes the still
 * open candle stays fresh for seconds, closed candles for minutes.
 */
export interface Fetched {
  readonly body: string
  readonly ttl: Duration.Duration
}

/**
 * Get-or-fetch over KvCache with in-flight coalescing: concurrent misses of one key run `fetch` once. Failures are
 * never stored.
 */
export interface ResponseCacheService {
  readonly getOrFetch: <E>(
    key: string,
    ttl: Duration.Duration,
    fetch: Effect.Effect<string | Fetched, E>,
    options?: FetchOptions<E>
  ) => Effect.Effect<CachedResponse, E>
}

export class ResponseCache extends Context.Tag("app/ResponseCache")<ResponseCache, ResponseCacheService>() {}
