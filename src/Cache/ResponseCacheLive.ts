import { Clock, Deferred, Duration, Effect, Either, Fiber, Layer, Metric, Option, type Scope } from "effect"
import { AppConfig } from "../AppConfig.js"
import { cacheEvents } from "../Metrics.js"
import { KvCache } from "./KvCache.js"
import { cacheNamespace } from "./Namespace.js"
import {
  ResponseCache,
  type CachedResponse,
  type Fetched,
  type FetchOptions,
  type ResponseCacheService
} from "./ResponseCache.js"

const hits = Metric.tagged(cacheEvents, "result", "hit")
const misses = Metric.tagged(cacheEvents, "result", "miss")
const stales = Metric.tagged(cacheEvents, "result", "stale")

export interface ResponseCacheOptions {
  /**
   * Default stale-if-error window: entries are kept this long past their TTL (physical TTL = ttl + window) and served
   * as "STALE" when a fetch fails. Callers override it per call (FetchOptions.staleIfError). Default 0 (off).
   */
  readonly staleFor?: Duration.DurationInput
  /** Prepended to every key (`namespace:key`): which upstream the answers come from (see cacheNamespace). */
  readonly namespace?: string
}

interface Stored {
  readonly storedAt: number
  /** The entry's own freshness when it is shorter than its key's TTL (see Fetched). */
  readonly ttlMs?: number | undefined
  readonly body: string
}

/**
 * `${storedAt}\n${body}`, or `${storedAt}+${ttlMs}\n${body}` for an entry fresh for less than its key's TTL: a hit is
 * served without re-encoding, and the Age and freshness survive across instances.
 */
export const encodeStored = (storedAt: number, body: string, ttlMs?: number): string =>
  ttlMs === undefined ? `${storedAt}\n${body}` : `${storedAt}+${ttlMs}\n${body}`

export const decodeStored = (raw: string): Option.Option<Stored> => {
  const newline = raw.indexOf("\n")
  if (newline <= 0) return Option.none()
  const [at = "", ttl] = raw.slice(0, newline).split("+")
  const storedAt = Number(at)
  const ttlMs = ttl === undefined ? undefined : Number(ttl)
  if (!Number.isSafeInteger(storedAt) || (ttlMs !== undefined && !(Number.isSafeInteger(ttlMs) && ttlMs >= 0))) {
    return Option.none()
  }
  return Option.some({ storedAt, ttlMs, body: raw.slice(newline + 1) })
}

/** Whether `stored` is still fresh for a key whose TTL is `ttlMs`. */
const isFresh = (stored: Stored, now: number, ttlMs: number): boolean =>
  now - stored.storedAt < Math.min(ttlMs, stored.ttlMs ?? ttlMs)

/** One in-progress lookup-or-fetch of a key, shared by every caller that asks for the key meanwhile. */
interface Flight {
  readonly result: Deferred.Deferred<CachedResponse, unknown>
  waiters: number
  fiber: Fiber.RuntimeFiber<unknown> | undefined
}

export const makeResponseCache = (
  options: ResponseCacheOptions = {}
): Effect.Effect<ResponseCacheService, never, KvCache | Scope.Scope> =>
  Effect.gen(function* () {
    const kv = yield* KvCache
    const scope = yield* Effect.scope
    const staleForMs = Duration.toMillis(options.staleFor ?? Duration.zero)
    const flights = new Map<string, Flight>()
    const namespaced = (key: string) => (options.namespace === undefined ? key : `${options.namespace}:${key}`)

    /** The stored entry of `key` with its age, fresh or not. */
    const lookup = (key: string) =>
      Effect.gen(function* () {
        const raw = yield* kv.get(key)
        if (Option.isNone(raw)) return Option.none<Stored>()
        const stored = decodeStored(raw.value)
        if (Option.isNone(stored)) {
          yield* Effect.logDebug("undecodable response cache entry treated as a miss").pipe(
            Effect.annotateLogs({ component: "cache", key })
          )
        }
        return stored
      })

    const served = (stored: Stored, now: number, state: "HIT" | "STALE"): CachedResponse => {
      const ageMs = Math.max(0, now - stored.storedAt)
      return { body: stored.body, storedAt: stored.storedAt, age: Math.floor(ageMs / 1000), state }
    }

    const load = <E>(key: string, ttlMs: number, fetch: Effect.Effect<string | Fetched, E>, options: FetchOptions<E>) =>
      Effect.gen(function* () {
        const staleMs =
          options.staleIfError === undefined ? staleForMs : Math.max(0, Duration.toMillis(options.staleIfError))
        const previous = ttlMs > 0 ? yield* lookup(key) : Option.none<Stored>()
        if (Option.isSome(previous)) {
          const now = yield* Clock.currentTimeMillis
          if (isFresh(previous.value, now, ttlMs)) {
            yield* Metric.increment(hits)
            return served(previous.value, now, "HIT")
          }
        }
        yield* Metric.increment(misses)
        const fetched = yield* Effect.either(fetch)
        if (Either.isLeft(fetched)) {
          const now = yield* Clock.currentTimeMillis
          const usable = Option.filter(
            previous,
            (stored) => now - stored.storedAt < ttlMs + staleMs && (options.serveStale?.(fetched.left) ?? true)
          )
          if (Option.isNone(usable)) return yield* Effect.fail(fetched.left)
          yield* Metric.increment(stales)
          yield* Effect.logInfo("upstream failed; serving the previous response (stale-if-error)").pipe(
            Effect.annotateLogs({ component: "cache", key, ageMs: now - usable.value.storedAt })
          )
          return served(usable.value, now, "STALE")
        }
        const { body, ttl } =
          typeof fetched.right === "string" ? { body: fetched.right, ttl: undefined } : fetched.right
        const ownTtlMs = ttl === undefined ? ttlMs : Math.max(0, Math.min(ttlMs, Duration.toMillis(ttl)))
        const storedAt = yield* Clock.currentTimeMillis
        if (ownTtlMs > 0) {
          const stored = encodeStored(storedAt, body, ownTtlMs < ttlMs ? ownTtlMs : undefined)
          yield* kv.set(key, stored, Duration.millis(ownTtlMs + staleMs))
        }
        return { body, storedAt, age: 0, state: "MISS" } satisfies CachedResponse
      })

    const settle = (key: string, flight: Flight) =>
      Effect.suspend(() => {
        if (flights.get(key) === flight) flights.delete(key)
        return Effect.void
      })

    // The last waiter to give up stops the work; while anyone still waits it runs on, whoever started it.
    const leave = (key: string, flight: Flight) =>
      Effect.suspend(() => {
        flight.waiters -= 1
        if (flight.waiters > 0 || flight.fiber === undefined) return Effect.void
        if (flights.get(key) === flight) flights.delete(key)
        return Fiber.interruptFork(flight.fiber)
      })

    /** A fresh entry, read in the caller's fiber: hits need none of the flight machinery below. */
    const freshHit = (key: string, ttlMs: number) =>
      ttlMs <= 0
        ? Effect.succeed(Option.none<CachedResponse>())
        : Effect.flatMap(lookup(key), (stored) =>
            Option.isNone(stored)
              ? Effect.succeed(Option.none<CachedResponse>())
              : Effect.flatMap(Clock.currentTimeMillis, (now) =>
                  isFresh(stored.value, now, ttlMs)
                    ? Effect.as(Metric.increment(hits), Option.some(served(stored.value, now, "HIT")))
                    : Effect.succeed(Option.none<CachedResponse>())
                )
          )

    const getOrFetch = <E>(
      key: string,
      ttl: Duration.Duration,
      fetch: Effect.Effect<string | Fetched, E>,
      options: FetchOptions<E> = {}
    ) =>
      Effect.flatMap(
        freshHit(namespaced(key), Math.max(0, Duration.toMillis(ttl))),
        Option.match({ onSome: Effect.succeed, onNone: () => join(namespaced(key), ttl, fetch, options) })
      )

    const join = <E>(
      key: string,
      ttl: Duration.Duration,
      fetch: Effect.Effect<string | Fetched, E>,
      options: FetchOptions<E>
    ) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const candidate: Flight = {
            result: yield* Deferred.make<CachedResponse, unknown>(),
            waiters: 0,
            fiber: undefined
          }
          let flight = flights.get(key)
          if (flight === undefined) {
            flight = candidate
            flights.set(key, flight)
            flight.waiters += 1
            // Detached from the caller so an interrupted first caller does not fail the others waiting on it.
            flight.fiber = yield* Effect.interruptible(
              load(key, Math.max(0, Duration.toMillis(ttl)), fetch, options)
            ).pipe(
              Effect.onExit((exit) => Effect.zipRight(settle(key, candidate), Deferred.done(candidate.result, exit))),
              Effect.exit,
              Effect.forkIn(scope)
            )
          } else {
            flight.waiters += 1
          }
          const joined = flight
          // Callers of one key pass fetches of one kind, so a shared failure has this caller's error type.
          const result = Deferred.await(joined.result) as Effect.Effect<CachedResponse, E>
          return yield* restore(result).pipe(Effect.onInterrupt(() => leave(key, joined)))
        })
      ).pipe(Effect.withSpan("ResponseCache.fetch", { attributes: { key } }))

    return ResponseCache.of({ getOrFetch })
  })

/**
 * ResponseCache over whichever KvCache is provided (Redis with memory fallback in production). With an AppConfig in
 * context its keys are namespaced by upstream, so servers sharing a Redis never serve each other's exchanges' data.
 */
export const ResponseCacheLive: Layer.Layer<ResponseCache, never, KvCache> = Layer.scoped(
  ResponseCache,
  Effect.flatMap(Effect.serviceOption(AppConfig), (config) =>
    makeResponseCache(
      Option.match(config, {
        onNone: () => ({}),
        onSome: (c) => ({ namespace: cacheNamespace(c.exchangeOverrides) })
      })
    )
  )
)
