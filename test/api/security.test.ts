import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer, Logger, LogLevel, Schedule, TestClock } from "effect"
import type { Redis } from "ioredis"
import { localAccounting } from "../../src/Http/RateLimit.js"
import { ApiTestServer, get } from "../support/apiServer.js"
import { scopedRedis, scopedRedisWithClient } from "../support/redisScoped.js"

const TICKER = "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT"

layer(ApiTestServer({ API_KEYS: "alpha-key, beta-key" }))("API keys", (it) => {
  it.effect("health, docs and the OpenAPI document stay public", () =>
    Effect.gen(function* () {
      for (const path of ["/v1/health", "/docs", "/redoc", "/openapi.json"]) {
        expect((yield* get(path)).status).toBe(200)
      }
    })
  )

  it.effect("a market route without a key is 401 JSON with WWW-Authenticate", () =>
    Effect.gen(function* () {
      const res = yield* get(TICKER)
      expect(res.status).toBe(401)
      expect(res.headers["www-authenticate"]).toBe('Bearer realm="mcp-crypto-data-server"')
      expect(res.json).toEqual({
        _tag: "Unauthorized",
        code: "unauthorized",
        message: "An API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>"
      })
      expect((yield* get("/no/such/route")).status).toBe(401)
    })
  )

  it.effect("a wrong key is 401 and never echoed", () =>
    Effect.gen(function* () {
      const res = yield* get(TICKER, { "x-api-key": "alpha-keY" })
      expect(res.status).toBe(401)
      expect((res.json as { message: string }).message).toBe("The API key is not valid")
      expect(res.text).not.toContain("alpha")
    })
  )

  it.effect("X-API-Key and Bearer tokens are accepted", () =>
    Effect.gen(function* () {
      expect((yield* get(TICKER, { "x-api-key": "alpha-key" })).status).toBe(200)
      expect((yield* get(TICKER, { authorization: "Bearer beta-key" })).status).toBe(200)
      expect((yield* get(TICKER, { authorization: "Basic beta-key" })).status).toBe(401)
    })
  )
})

layer(ApiTestServer({ RATE_LIMIT_ENABLED: "true", RATE_LIMIT_REQUESTS: "3", RATE_LIMIT_WINDOW: "60" }))(
  "inbound rate limit (memory)",
  (it) => {
    it.effect("the 4th request in a window is 429 with Retry-After and RateLimit headers; the next window opens", () =>
      Effect.gen(function* () {
        const remaining: Array<string | undefined> = []
        for (let i = 0; i < 3; i++) {
          const res = yield* get(TICKER)
          expect(res.status).toBe(200)
          expect(res.headers["ratelimit-limit"]).toBe("3")
          expect(res.headers["ratelimit-policy"]).toBe("3;w=60")
          remaining.push(res.headers["ratelimit-remaining"])
        }
        expect(remaining).toEqual(["2", "1", "0"])
        yield* TestClock.adjust("20 seconds")
        const limited = yield* get(TICKER)
        expect(limited.status).toBe(429)
        expect(limited.headers["retry-after"]).toBe("40")
        expect(limited.headers["ratelimit-remaining"]).toBe("0")
        expect(limited.headers["ratelimit-reset"]).toBe("40")
        expect(limited.json).toEqual({
          _tag: "RateLimited",
          code: "rate_limited",
          message: "Rate limit of 3 requests per 60 s exceeded; retry in 40 s",
          retryAfter: 40
        })
        expect((yield* get("/v1/health")).status).toBe(200)
        yield* TestClock.adjust("40 seconds")
        expect((yield* get(TICKER)).status).toBe(200)
      })
    )
  }
)

/** The value of the one rate-limit counter under `prefix`, once it equals `expected` (it is synced every 100 ms). */
const counterReaches = (raw: Redis, prefix: string, expected: number) =>
  Effect.promise(async () => {
    const keys = await raw.keys(`${prefix}ratelimit:*`)
    return keys.length === 1 && keys[0] !== undefined ? Number(await raw.get(keys[0])) : NaN
  }).pipe(
    Effect.filterOrFail((value) => value === expected),
    Effect.retry(Schedule.spaced("25 millis")),
    Effect.timeout("3 seconds"),
    Effect.orElse(() => Effect.die(new Error(`the Redis counter did not reach ${expected}`)))
  )

describe("inbound rate limit (Redis)", () => {
  it.live(
    "two server instances sharing Redis share each client's budget (a small limit is always exact)",
    () =>
      Effect.gen(function* () {
        const redis = yield* scopedRedis
        const env = {
          REDIS_URL: redis.url,
          REDIS_KEY_PREFIX: `rl-test-${Date.now()}:`,
          RATE_LIMIT_ENABLED: "true",
          RATE_LIMIT_REQUESTS: "3",
          RATE_LIMIT_WINDOW: "60"
        }
        const first = yield* Layer.build(ApiTestServer(env, { redis: true }))
        const second = yield* Layer.build(ApiTestServer(env, { redis: true }))
        const onFirst = (path: string) => Effect.provide(get(path), first)
        const onSecond = (path: string) => Effect.provide(get(path), second)
        expect((yield* onFirst(TICKER)).status).toBe(200)
        expect((yield* onSecond(TICKER)).status).toBe(200)
        expect((yield* onFirst(TICKER)).headers["ratelimit-remaining"]).toBe("0")
        const limited = yield* onSecond(TICKER)
        expect(limited.status).toBe(429)
        expect(Number(limited.headers["retry-after"])).toBeGreaterThan(55)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "far from the limit requests are decided locally and reach the Redis counter in batches",
    () =>
      Effect.gen(function* () {
        const { redis, raw } = yield* scopedRedisWithClient
        const prefix = `rl-batch-${Date.now()}:`
        const env = {
          REDIS_URL: redis.url,
          REDIS_KEY_PREFIX: prefix,
          RATE_LIMIT_ENABLED: "true",
          RATE_LIMIT_REQUESTS: "1000",
          RATE_LIMIT_WINDOW: "60"
        }
        const server = yield* Layer.build(ApiTestServer(env, { redis: true }))
        const request = Effect.provide(get(TICKER), server)
        // the first request of a window is counted in Redis at once
        expect((yield* request).headers["ratelimit-remaining"]).toBe("999")
        const key = (yield* Effect.promise(() => raw.keys(`${prefix}ratelimit:*`)))[0] ?? ""
        expect(yield* Effect.promise(() => raw.get(key))).toBe("1")
        // another instance's 100 requests are not seen by local decisions until the next sync...
        yield* Effect.promise(() => raw.incrby(key, 100))
        const local = yield* request
        expect([local.status, local.headers["ratelimit-remaining"]]).toEqual([200, "998"])
        expect(local.headers["ratelimit-limit"]).toBe("1000")
        expect(local.headers["ratelimit-policy"]).toBe("1000;w=60")
        expect(Number(local.headers["ratelimit-reset"])).toBeGreaterThan(55)
        // ...which sends the local count as one increment and brings them back
        yield* counterReaches(raw, prefix, 102)
        expect((yield* request).headers["ratelimit-remaining"]).toBe("897")
        yield* counterReaches(raw, prefix, 103)
        const pttl = yield* Effect.promise(() => raw.pttl(key))
        expect(pttl).toBeGreaterThan(55_000)
      }).pipe(Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    30_000
  )

  it.live(
    "two instances with a large limit: at least the limit and at most limit + 2 × maxUnsynced are admitted",
    () =>
      Effect.gen(function* () {
        const { redis, raw } = yield* scopedRedisWithClient
        const prefix = `rl-bound-${Date.now()}:`
        const limit = 400
        const env = {
          REDIS_URL: redis.url,
          REDIS_KEY_PREFIX: prefix,
          RATE_LIMIT_ENABLED: "true",
          RATE_LIMIT_REQUESTS: String(limit),
          RATE_LIMIT_WINDOW: "60"
        }
        const first = yield* Layer.build(ApiTestServer(env, { redis: true }))
        const second = yield* Layer.build(ApiTestServer(env, { redis: true }))
        const total = 600
        const statuses = yield* Effect.forEach(
          Array.from({ length: total }, (_, i) => i),
          (i) => Effect.map(Effect.provide(get(TICKER), i % 2 === 0 ? first : second), (res) => res.status),
          { concurrency: 32 }
        )
        const admitted = statuses.filter((status) => status === 200).length
        expect(statuses.filter((status) => status !== 200 && status !== 429)).toEqual([])
        expect(admitted).toBeGreaterThanOrEqual(limit)
        expect(admitted).toBeLessThanOrEqual(limit + 2 * localAccounting(limit).maxUnsynced)
        // every request is counted once in Redis, rejected ones included
        yield* counterReaches(raw, prefix, total)
      }).pipe(Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    30_000
  )
})
