import { HttpServerResponse } from "@effect/platform"
import { Context, Duration, Effect, Exit, Layer, Metric, Runtime } from "effect"
import { AppConfig } from "../AppConfig.js"
import { KvCache, type WindowCount } from "../Cache/KvCache.js"
import { RateLimited } from "../Domain/Errors.js"
import { rateLimitRejections } from "../Metrics.js"
import { errorResponse } from "./Responses.js"

export interface RateLimitDecision {
  readonly allowed: boolean
  readonly headers: Readonly<Record<string, string>>
  /** Seconds until the window ends. */
  readonly reset: number
}

export interface RateLimiterService {
  readonly enabled: boolean
  /**
   * Counts one request of `client` and admits it without a round trip when local accounting may decide (see
   * `localAccounting`); undefined when only the shared counter can decide, and then nothing was counted.
   */
  readonly tryLocal: (client: string) => RateLimitDecision | undefined
  /** Counts one request of `client` and decides it: locally when possible, else with the exact shared counter. */
  readonly check: (client: string) => Effect.Effect<RateLimitDecision>
  readonly rejected: (decision: RateLimitDecision) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  /** Sends the locally counted requests to the shared counter now and waits for the replies. */
  readonly sync: Effect.Effect<void>
}

/**
 * The inbound rate limit per client, fixed windows counted in KvCache (Redis when it is up, so the limit holds across
 * instances). One instance per server, shared by the hot path and the Effect path.
 */
export class RateLimiter extends Context.Tag("app/RateLimiter")<RateLimiter, RateLimiterService>() {}

export interface LocalAccounting {
  /** A request is decided locally only if at least this much quota would remain after it; else exactly. */
  readonly threshold: number
  /** At most this many local admissions per instance and client are missing from the shared counter at any time. */
  readonly maxUnsynced: number
}

/**
 * With N instances a window admits at most `limit + N × maxUnsynced` requests: an exact decision misses only the
 * other instances' unsynced admissions, and once the shared count passes `limit - threshold` an instance admits at
 * most `maxUnsynced` more locally before a reply shows it (`threshold > maxUnsynced`, so a batch cannot carry the
 * count past the limit unseen). Limits up to 20 are always exact.
 */
export const localAccounting = (limit: number): LocalAccounting => {
  const threshold = Math.max(20, Math.ceil(limit / 10))
  return { threshold, maxUnsynced: Math.floor(threshold / 4) }
}

/** How often locally counted requests are sent to Redis: one increment per client with new requests. */
export const SYNC_INTERVAL = Duration.millis(100)
const MAX_BUCKETS = 100_000
const SWEEP_EVERY_MS = 1_000

interface Bucket {
  readonly client: string
  /** The shared count in the last reply (other instances' requests included). */
  known: number
  /** Admitted here, not sent yet. */
  pending: number
  /** Sent, not answered yet. */
  inFlight: number
  /** End of the window (performance.now() ms) from the last reply, never earlier than the real end; 0 = unknown. */
  windowEnd: number
}

export const makeRateLimiter = Effect.gen(function* () {
  const config = yield* AppConfig
  const kv = yield* KvCache
  const runtime = yield* Effect.runtime<never>()
  const limit = config.rateLimitRequests
  const window = config.rateLimitWindow
  const windowSeconds = Math.max(1, Math.ceil(Duration.toSeconds(window)))
  const limitHeader = String(limit)
  const policy = `${limit};w=${windowSeconds}`
  const { threshold, maxUnsynced } = localAccounting(limit)
  const buckets = new Map<string, Bucket>()
  const dirty = new Set<Bucket>()
  let timer: ReturnType<typeof setInterval> | undefined
  let nextSweep = 0
  let closed = false

  const decision = (count: number, resetInMs: number): RateLimitDecision => {
    const reset = Math.max(1, Math.ceil(resetInMs / 1000))
    return {
      allowed: count <= limit,
      reset,
      headers: {
        "ratelimit-limit": limitHeader,
        "ratelimit-remaining": String(Math.max(0, limit - count)),
        "ratelimit-reset": String(reset),
        "ratelimit-policy": policy
      }
    }
  }

  const counterKey = (client: string) => `ratelimit:${client}`

  /** Local admissions of a window that has ended are dropped: they must not count in the next one. */
  const expire = (bucket: Bucket, now: number) => {
    if (bucket.windowEnd > 0 && now >= bucket.windowEnd) bucket.pending = 0
  }

  const settle = (bucket: Bucket, sent: number, reply: WindowCount, shared: boolean) => {
    bucket.inFlight -= sent
    const now = performance.now()
    if (!shared) {
      // counted in memory: local accounting resumes only after the next exact answer from Redis
      bucket.known = reply.count
      bucket.windowEnd = 0
    } else if (now >= bucket.windowEnd) {
      bucket.known = reply.count
      bucket.windowEnd = now + reply.resetInMs
    } else {
      // replies may arrive out of order; within a window the shared count only grows
      bucket.known = Math.max(bucket.known, reply.count)
      bucket.windowEnd = Math.min(bucket.windowEnd, now + reply.resetInMs)
    }
  }

  const send = (bucket: Bucket, amount: number): Effect.Effect<WindowCount> =>
    Effect.suspend(() => {
      bucket.inFlight += amount
      const shared = kv.countsShared()
      return kv.increment(counterKey(bucket.client), window, amount).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (Exit.isSuccess(exit)) settle(bucket, amount, exit.value, shared)
            else bucket.inFlight -= amount
          })
        )
      )
    })

  const flush = (bucket: Bucket): Effect.Effect<void> =>
    Effect.suspend(() => {
      expire(bucket, performance.now())
      const amount = bucket.pending
      if (amount === 0) return Effect.void
      bucket.pending = 0
      return Effect.asVoid(send(bucket, amount))
    })

  const sync = Effect.suspend(() => {
    const work = Array.from(dirty, flush)
    dirty.clear()
    return Effect.all(work, { concurrency: "unbounded", discard: true })
  })

  const sweep = (now: number) => {
    nextSweep = now + SWEEP_EVERY_MS
    for (const [client, bucket] of buckets) {
      if (now >= bucket.windowEnd && bucket.pending === 0 && bucket.inFlight === 0) buckets.delete(client)
    }
  }

  const tick = () => {
    if (dirty.size > 0) Runtime.runFork(runtime)(sync)
    const now = performance.now()
    if (now >= nextSweep) sweep(now)
    if (buckets.size === 0 && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
    }
  }

  const tracked = (client: string): Bucket | undefined => {
    const existing = buckets.get(client)
    if (existing !== undefined || closed || buckets.size >= MAX_BUCKETS) return existing
    const bucket: Bucket = { client, known: 0, pending: 0, inFlight: 0, windowEnd: 0 }
    buckets.set(client, bucket)
    if (timer === undefined) {
      nextSweep = performance.now() + SWEEP_EVERY_MS
      timer = setInterval(tick, Duration.toMillis(SYNC_INTERVAL))
      timer.unref()
    }
    return bucket
  }

  const tryLocal = (client: string): RateLimitDecision | undefined => {
    const bucket = buckets.get(client)
    if (bucket === undefined) return undefined
    const now = performance.now()
    if (now >= bucket.windowEnd || !kv.countsShared()) return undefined
    const unsynced = bucket.pending + bucket.inFlight
    const count = bucket.known + unsynced + 1
    if (unsynced >= maxUnsynced || limit - count < threshold) return undefined
    bucket.pending += 1
    dirty.add(bucket)
    // on demand: a fast client need not wait for the tick, nor fall back to exact decisions at maxUnsynced
    if (bucket.pending * 2 >= maxUnsynced) {
      dirty.delete(bucket)
      Runtime.runFork(runtime)(flush(bucket))
    }
    return decision(count, bucket.windowEnd - now)
  }

  /** One round trip that also carries this instance's pending admissions, so the count it returns is exact. */
  const exact = (client: string): Effect.Effect<RateLimitDecision> =>
    Effect.suspend(() => {
      // in memory the count is exact already; buckets only carry what was admitted while Redis counted
      const bucket = kv.countsShared() ? tracked(client) : buckets.get(client)
      if (bucket === undefined) {
        return Effect.map(kv.increment(counterKey(client), window), (reply) => decision(reply.count, reply.resetInMs))
      }
      expire(bucket, performance.now())
      const carried = bucket.pending
      bucket.pending = 0
      dirty.delete(bucket)
      return Effect.map(send(bucket, carried + 1), (reply) => decision(reply.count, reply.resetInMs))
    })

  const check = (client: string): Effect.Effect<RateLimitDecision> =>
    Effect.suspend(() => {
      const local = tryLocal(client)
      return local === undefined ? exact(client) : Effect.succeed(local)
    })

  const rejected = (decision: RateLimitDecision) =>
    Effect.as(
      Metric.increment(rateLimitRejections),
      HttpServerResponse.setHeaders(
        errorResponse(
          new RateLimited({
            code: "rate_limited",
            message: `Rate limit of ${limit} requests per ${windowSeconds} s exceeded; retry in ${decision.reset} s`,
            retryAfter: decision.reset
          })
        ),
        decision.headers
      )
    )

  // on shutdown the counts admitted since the last tick still reach Redis (bounded by the command timeout)
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      closed = true
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      return sync.pipe(Effect.timeout("1 second"), Effect.ignore)
    })
  )

  return RateLimiter.of({ enabled: config.rateLimitEnabled, tryLocal, check, rejected, sync })
})

export const RateLimiterLive: Layer.Layer<RateLimiter, never, AppConfig | KvCache> = Layer.scoped(
  RateLimiter,
  makeRateLimiter
)
