import { Clock, Deferred, Duration, Effect, Fiber, Layer, Option, type Scope } from "effect"
import { KvCache } from "./KvCache.js"
import { ResponseCache, type CachedResponse, type ResponseCacheService } from "./ResponseCache.js"

export interface ResponseCacheOptions {
  /**
   * Keep entries this long past their TTL (physical TTL = ttl + staleFor). Expired-but-kept entries are treated as
   * misses for now; they are the seam for serving "STALE" when a fetch fails (stale-if-error). Default 0.
   */
  readonly staleFor?: Duration.DurationInput
}

interface Stored {
  readonly storedAt: number
  readonly body: string
}

/** `${storedAt}\n${body}`: a hit is served without re-encoding, and the Age survives across instances. */
export const encodeStored = (storedAt: number, body: string): string => `${storedAt}\n${body}`

export const decodeStored = (raw: string): Option.Option<Stored> => {
  const newline = raw.indexOf("\n")
  if (newline <= 0) return Option.none()
  const storedAt = Number(raw.slice(0, newline))
  return Number.isSafeInteger(storedAt) ? Option.some({ storedAt, body: raw.slice(newline + 1) }) : Option.none()
}

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

    const lookup = (key: string, ttlMs: number) =>
      Effect.gen(function* () {
        const raw = yield* kv.get(key)
        if (Option.isNone(raw)) return Option.none<CachedResponse>()
        const stored = decodeStored(raw.value)
        if (Option.isNone(stored)) {
          yield* Effect.logDebug("undecodable response cache entry treated as a miss").pipe(
            Effect.annotateLogs({ component: "cache", key })
          )
          return Option.none<CachedResponse>()
        }
        const { storedAt, body } = stored.value
        const ageMs = Math.max(0, (yield* Clock.currentTimeMillis) - storedAt)
        if (ageMs >= ttlMs) return Option.none<CachedResponse>()
        return Option.some<CachedResponse>({ body, storedAt, age: Math.floor(ageMs / 1000), state: "HIT" })
      })

    const load = <E>(key: string, ttlMs: number, fetch: Effect.Effect<string, E>) =>
      Effect.gen(function* () {
        if (ttlMs > 0) {
          const hit = yield* lookup(key, ttlMs)
          if (Option.isSome(hit)) return hit.value
        }
        const body = yield* fetch
        const storedAt = yield* Clock.currentTimeMillis
        if (ttlMs > 0) yield* kv.set(key, encodeStored(storedAt, body), Duration.millis(ttlMs + staleForMs))
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

    const getOrFetch = <E>(key: string, ttl: Duration.Duration, fetch: Effect.Effect<string, E>) =>
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
            flight.fiber = yield* Effect.interruptible(load(key, Math.max(0, Duration.toMillis(ttl)), fetch)).pipe(
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
      ).pipe(Effect.withSpan("ResponseCache.getOrFetch", { attributes: { key } }))

    return ResponseCache.of({ getOrFetch })
  })

/** ResponseCache over whichever KvCache is provided (Redis with memory fallback in production). */
export const ResponseCacheLive: Layer.Layer<ResponseCache, never, KvCache> = Layer.scoped(
  ResponseCache,
  makeResponseCache()
)
