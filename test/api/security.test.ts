import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { ApiTestServer, get } from "../support/apiServer.js"
import { startRedis } from "../support/redis.js"

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

describe("inbound rate limit (Redis)", () => {
  it.live(
    "two server instances sharing Redis share each client's budget",
    () =>
      Effect.gen(function* () {
        const redis = yield* Effect.acquireRelease(
          Effect.promise(() => startRedis()),
          (r) => Effect.promise(() => r.stop())
        )
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
})
