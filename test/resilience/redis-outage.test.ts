import { expect, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Redis } from "ioredis"
import { encodeStored } from "../../src/Cache/ResponseCacheLive.js"
import { ApiTestServer, get } from "../support/apiServer.js"
import type { LocalRedis } from "../support/redis.js"
import { scopedRedis } from "../support/redisScoped.js"

class TestRedis extends Context.Tag("test/TestRedis")<TestRedis, LocalRedis>() {}

const PREFIX = `outage-${process.pid}:`

const RedisLive = Layer.scoped(TestRedis, scopedRedis)

/** The real routes and caches (mock exchange) on Redis, with the inbound rate limit counted in Redis too. */
const Server = Layer.unwrapEffect(
  Effect.map(TestRedis, (redis) =>
    ApiTestServer(
      {
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: PREFIX,
        RATE_LIMIT_ENABLED: "true",
        RATE_LIMIT_REQUESTS: "1000000",
        TICKER_CACHE_TTL: "0.5",
        ORDERBOOK_CACHE_TTL: "0.5"
      },
      { redis: true }
    )
  )
).pipe(Layer.provideMerge(RedisLive))

const sleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

const PATHS = [
  "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT",
  "/v1/markets/ticker?exchange=kraken&symbol=ETH/USD",
  "/v1/markets/orderbook?exchange=binance&symbol=ETH/USDT&limit=5",
  "/v1/markets/trades?exchange=binance&symbol=SOL/BTC&limit=3",
  "/v1/markets?exchange=kraken",
  "/v1/health"
]

const redisStatus = Effect.map(get("/v1/health"), (res) => {
  const redis = (res.json as { dependencies: { redis: { status: string; cache: string } } }).dependencies.redis
  return `${redis.status}/${redis.cache}`
})

layer(Server, { excludeTestServices: true, timeout: 60_000 })("Redis outage under load", (it) => {
  it.effect("Redis killed and restarted mid-load: zero failed requests, and the cache goes back to Redis", () =>
    Effect.gen(function* () {
      const redis = yield* TestRedis
      expect(yield* redisStatus).toBe("up/redis")

      const statuses: Array<number> = []
      let stop = false
      // six clients, each sending its next request as soon as the last one is answered; bounded by time and count
      const client = (n: number) =>
        Effect.gen(function* () {
          let i = n
          while (!stop && statuses.length < 20_000) {
            const path = PATHS[i++ % PATHS.length] ?? "/v1/health"
            const unique = i % 7 === 0 ? `&limit=${10 + (i % 500)}` : ""
            const res = yield* get(
              unique === "" ? path : `/v1/markets/orderbook?exchange=binance&symbol=BTC/USDT${unique}`
            )
            statuses.push(res.status)
          }
        })
      const load = yield* Effect.fork(Effect.all([0, 1, 2, 3, 4, 5].map(client), { concurrency: "unbounded" }))

      yield* sleep(600)
      const beforeKill = statuses.length
      yield* Effect.promise(() => redis.kill())
      yield* sleep(800)
      const duringOutage = statuses.length - beforeKill
      expect(yield* redisStatus).toBe("down/memory")
      yield* Effect.promise(() => redis.restart())
      yield* sleep(800)
      stop = true
      yield* load.await

      // requests were answered while Redis was down (how many depends on the machine's load, not on the server)
      expect(duringOutage).toBeGreaterThan(0)
      expect(statuses.length).toBeGreaterThan(duringOutage)
      expect(statuses.filter((s) => s !== 200)).toEqual([])

      // back on Redis: the client reconnects on its own (backoff capped at 2 s)
      let status = yield* redisStatus
      for (let i = 0; i < 100 && status !== "up/redis"; i++) {
        yield* sleep(100)
        status = yield* redisStatus
      }
      expect(status).toBe("up/redis")

      const raw = new Redis(redis.url, { lazyConnect: true })
      yield* Effect.addFinalizer(() => Effect.promise(() => raw.quit().catch(() => "closed")))
      yield* Effect.promise(() => raw.connect())

      // writes land in Redis again (the restarted server is empty: it does not persist)
      const written = yield* get("/v1/markets/orderbook?exchange=kraken&symbol=BTC/USD&limit=42")
      expect([written.status, written.headers["x-cache"]]).toEqual([200, "MISS"])
      const keys = yield* Effect.promise(() => raw.keys(`${PREFIX}*`))
      expect(keys).toContain(`${PREFIX}live:v1:orderbook:kraken:BTC/USD:42`)
      expect(keys.some((k) => k.startsWith(`${PREFIX}ratelimit:`))).toBe(true)

      // and reads come from Redis: an entry planted there is what the server answers with, with its true Age
      const body = JSON.stringify({ exchange: "kraken", total: 1, offset: 0, limit: 7, markets: [] })
      yield* Effect.promise(() =>
        raw.set(`${PREFIX}live:v1:markets:kraken::::0:7`, encodeStored(Date.now() - 3_000, body), "PX", 60_000)
      )
      const fromRedis = yield* get("/v1/markets?exchange=kraken&limit=7")
      expect([fromRedis.status, fromRedis.headers["x-cache"], fromRedis.text]).toEqual([200, "HIT", body])
      expect(Number(fromRedis.headers["age"])).toBeGreaterThanOrEqual(3)
    }).pipe(Effect.scoped)
  )
})
