import { type Duration, Effect, Layer, Option, type Scope } from "effect"
import { AppConfig } from "../AppConfig.js"
import { KvCache, type CacheStatus, type KvCacheService } from "./KvCache.js"
import { makeMemoryKvCache } from "./Memory.js"
import { makeRedisKv, type RedisError, type RedisKv, type RedisKvOptions } from "./Redis.js"

export interface KvCacheOptions {
  readonly memoryMaxEntries: number
  /** Redis settings; without them the cache is memory only (redis "disabled"). */
  readonly redis?: RedisKvOptions
}

const annotations = { component: "cache" }

const memoryOnly = (status: CacheStatus, memory: Pick<KvCacheService, "get" | "set" | "increment">): KvCacheService =>
  KvCache.of({
    get: Effect.fn("KvCache.get")(function* (key: string) {
      return yield* memory.get(key)
    }),
    set: Effect.fn("KvCache.set")(function* (key: string, value: string, ttl: Duration.Duration) {
      yield* memory.set(key, value, ttl)
    }),
    increment: memory.increment,
    countsShared: () => false,
    status: Effect.succeed(status)
  })

/**
 * Redis when it is up, process memory while it is not. Which one serves a call is decided from the Redis
 * client's connection events, never by probing, so an outage costs requests no time. Never fails.
 */
export const makeKvCache = (options: KvCacheOptions): Effect.Effect<KvCacheService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const memory = yield* makeMemoryKvCache({ maxEntries: options.memoryMaxEntries })
    if (options.redis === undefined) return memoryOnly({ backend: "memory", redis: "disabled" }, memory)

    const connected = yield* makeRedisKv(options.redis).pipe(
      Effect.map(Option.some),
      Effect.catchAll((error) =>
        // the message only: a URL parse error carries the URL, password included, as a property
        Effect.logError(
          "redis client could not be created; cache served from memory only",
          error.cause instanceof Error ? error.cause.message : "unknown error"
        ).pipe(Effect.annotateLogs(annotations), Effect.as(Option.none<RedisKv>()))
      )
    )
    if (Option.isNone(connected)) return memoryOnly({ backend: "memory", redis: "down" }, memory)
    const redis = connected.value

    // Only the first error of a run is a warning: a misbehaving Redis must not flood the log once per request.
    let failing = false
    const succeeded = Effect.sync(() => {
      failing = false
    })
    const failed = (error: RedisError) =>
      Effect.suspend(() => {
        const outcome = error.op === "get" ? "a miss" : error.op === "set" ? "a skipped write" : "a local count"
        const message = `redis ${error.op} failed; treated as ${outcome}`
        const cause = error.cause instanceof Error ? error.cause.message : String(error.cause)
        const log = failing ? Effect.logDebug(message, cause) : Effect.logWarning(message, cause)
        failing = true
        return log.pipe(Effect.annotateLogs(annotations))
      })

    const get = Effect.fn("KvCache.get")(function* (key: string) {
      if ((yield* redis.state) === "down") return yield* memory.get(key)
      return yield* redis.get(key).pipe(
        Effect.tap(() => succeeded),
        Effect.catchAll((error) => Effect.as(failed(error), Option.none<string>()))
      )
    })

    const set = Effect.fn("KvCache.set")(function* (key: string, value: string, ttl: Duration.Duration) {
      if ((yield* redis.state) === "down") return yield* memory.set(key, value, ttl)
      yield* redis.set(key, value, ttl).pipe(
        Effect.zipRight(succeeded),
        Effect.catchAll((error) => failed(error))
      )
    })

    // While Redis is unreachable each instance counts on its own: a looser limit beats failing requests.
    const increment = Effect.fn("KvCache.increment")(function* (key: string, window: Duration.Duration, by = 1) {
      if ((yield* redis.state) === "down") return yield* memory.increment(key, window, by)
      return yield* redis.increment(key, window, by).pipe(
        Effect.tap(() => succeeded),
        Effect.catchAll((error) => Effect.zipRight(failed(error), memory.increment(key, window, by)))
      )
    })

    const status = Effect.map(redis.state, (state): CacheStatus =>
      state === "up" ? { backend: "redis", redis: "up" } : { backend: "memory", redis: "down" }
    )

    return KvCache.of({ get, set, increment, countsShared: redis.isUp, status })
  })

/** The application's KvCache, configured from AppConfig (REDIS_ENABLED, REDIS_URL, REDIS_KEY_PREFIX, …). */
export const KvCacheLive: Layer.Layer<KvCache, never, AppConfig> = Layer.scoped(
  KvCache,
  Effect.flatMap(AppConfig, (config) =>
    makeKvCache({
      memoryMaxEntries: config.memoryCacheMaxEntries,
      ...(config.redisEnabled ? { redis: { url: config.redisUrl, keyPrefix: config.redisKeyPrefix } } : {})
    })
  )
)
