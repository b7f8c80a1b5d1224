import { Effect, type Scope } from "effect"
import { Redis } from "ioredis"
import { type LocalRedis, startRedis } from "./redis.js"

/** A private redis-server for the life of the scope. */
export const scopedRedis: Effect.Effect<LocalRedis, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() => startRedis()),
  (redis) => Effect.promise(() => redis.stop())
)

/** A private redis-server and a raw client on it (to read and change what the server stored), for the scope's life. */
export const scopedRedisWithClient = Effect.gen(function* () {
  const redis = yield* scopedRedis
  const raw = yield* Effect.acquireRelease(
    Effect.sync(() => new Redis(redis.url, { maxRetriesPerRequest: 1 }).on("error", () => undefined)),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )
  return { redis, raw }
})
