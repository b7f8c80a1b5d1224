import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Exit, Layer, Logger, Option, Schedule, TestClock } from "effect"
import { Redis } from "ioredis"
import { vi } from "vitest"
import { AppConfig } from "../../src/AppConfig.js"
import { KvCache } from "../../src/Cache/KvCache.js"
import { KvCacheLive, makeKvCache } from "../../src/Cache/Live.js"
import { reconnectDelay } from "../../src/Cache/Redis.js"
import { ResponseCache } from "../../src/Cache/ResponseCache.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { freePort, type LocalRedis, startRedis } from "../support/redis.js"
import { scopedRedis } from "../support/redisScoped.js"

const runId = `${process.pid}-${Date.now()}`
let n = 0
const uniquePrefix = () => `test:${runId}:${++n}:`

const kvLayer = (url: string, prefix: string) =>
  KvCacheLive.pipe(Layer.provide(AppConfig.fromRecord({ REDIS_URL: url, REDIS_KEY_PREFIX: prefix })))

/** Builds a KvCache in the current scope, the way the application would at start-up; its logs go to `logger`. */
const buildKv = (url: string, prefix: string, logger: Logger.Logger<unknown, unknown> = Logger.none) =>
  Layer.build(kvLayer(url, prefix)).pipe(
    Effect.map((context) => Context.get(context, KvCache)),
    Effect.provide(Logger.replace(Logger.defaultLogger, logger))
  )

/** A plain client for checking what really landed in Redis. */
const rawClient = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(url, { maxRetriesPerRequest: 1 }).on("error", () => undefined)),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )

const waitUntil = <A>(probe: Effect.Effect<A>, done: (a: A) => boolean, within: Duration.DurationInput) =>
  probe.pipe(Effect.filterOrFail(done), Effect.retry(Schedule.spaced(Duration.millis(50))), Effect.timeout(within))

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = yield* Clock.currentTimeMillis
    const exit = yield* Effect.exit(effect)
    return { exit, ms: (yield* Clock.currentTimeMillis) - start }
  })

describe("reconnectDelay", () => {
  it("backs off exponentially from 100 ms, is capped, and never gives up", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 100, 10_000].map((attempt) => reconnectDelay(attempt, 2_000))).toEqual([
      100, 200, 400, 800, 1_600, 2_000, 2_000, 2_000, 2_000
    ])
  })
})

describe("KvCache on a private redis-server", () => {
  let redis: LocalRedis
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it.scopedLive("writes prefixed keys with SET PX and reads them back; status is redis/up", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const cache = yield* buildKv(redis.url, prefix)
      const raw = yield* rawClient(redis.url)
      expect(yield* cache.status).toEqual({ backend: "redis", redis: "up" })

      yield* cache.set("ticker:BTC/USDT", '{"last":1}', Duration.seconds(60))
      expect(yield* cache.get("ticker:BTC/USDT")).toEqual(Option.some('{"last":1}'))
      expect(yield* cache.get("absent")).toEqual(Option.none())

      expect(yield* Effect.promise(() => raw.get(`${prefix}ticker:BTC/USDT`))).toBe('{"last":1}')
      expect(yield* Effect.promise(() => raw.exists("ticker:BTC/USDT"))).toBe(0)
      const pttl = yield* Effect.promise(() => raw.pttl(`${prefix}ticker:BTC/USDT`))
      expect(pttl).toBeGreaterThan(59_000)
      expect(pttl).toBeLessThanOrEqual(60_000)

      yield* cache.set("ticker:BTC/USDT", "gone", Duration.zero)
      expect(yield* Effect.promise(() => raw.exists(`${prefix}ticker:BTC/USDT`))).toBe(0)
    })
  )

  it.scopedLive("increment counts within a window shared through Redis, then starts a new window", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const a = yield* buildKv(redis.url, prefix)
      const b = yield* buildKv(redis.url, prefix)
      const raw = yield* rawClient(redis.url)
      const first = yield* a.increment("rl:ip:1", Duration.millis(400))
      expect(first.count).toBe(1)
      expect(first.resetInMs).toBeGreaterThan(300)
      expect((yield* b.increment("rl:ip:1", Duration.millis(400))).count).toBe(2)
      expect((yield* a.increment("rl:ip:1", Duration.millis(400))).count).toBe(3)
      expect(yield* Effect.promise(() => raw.get(`${prefix}rl:ip:1`))).toBe("3")
      yield* Effect.sleep("500 millis")
      expect((yield* b.increment("rl:ip:1", Duration.millis(400))).count).toBe(1)
    })
  )

  it.scopedLive("increment by a batch is one INCRBY; the first batch of a window sets its expiry", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const cache = yield* buildKv(redis.url, prefix)
      const raw = yield* rawClient(redis.url)
      expect(cache.countsShared()).toBe(true)
      const first = yield* cache.increment("rl:ip:2", Duration.seconds(30), 40)
      expect(first.count).toBe(40)
      expect(first.resetInMs).toBeGreaterThan(29_000)
      expect((yield* cache.increment("rl:ip:2", Duration.seconds(30), 2)).count).toBe(42)
      expect((yield* cache.increment("rl:ip:2", Duration.seconds(30))).count).toBe(43)
      expect(yield* Effect.promise(() => raw.get(`${prefix}rl:ip:2`))).toBe("43")
      const pttl = yield* Effect.promise(() => raw.pttl(`${prefix}rl:ip:2`))
      expect(pttl).toBeGreaterThan(29_000)
      expect(pttl).toBeLessThanOrEqual(30_000)
    })
  )

  it.scopedLive("entries expire in Redis after their TTL", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const cache = yield* buildKv(redis.url, prefix)
      const raw = yield* rawClient(redis.url)
      yield* cache.set("short", "v", Duration.millis(150))
      expect(yield* cache.get("short")).toEqual(Option.some("v"))
      yield* Effect.sleep(Duration.millis(300))
      expect(yield* cache.get("short")).toEqual(Option.none())
      expect(yield* Effect.promise(() => raw.exists(`${prefix}short`))).toBe(0)
    })
  )

  it.scoped("a response cached by one instance is a HIT with its true Age in another instance", () =>
    Effect.gen(function* () {
      const prefix = uniquePrefix()
      const instance = (url: string) =>
        Layer.build(ResponseCacheLive.pipe(Layer.provide(kvLayer(url, prefix)))).pipe(
          Effect.map((context) => Context.get(context, ResponseCache))
        )
      const first = yield* instance(redis.url)
      const second = yield* instance(redis.url)
      yield* TestClock.setTime(1_700_000_000_000)

      const miss = yield* first.getOrFetch("ohlcv:BTC", Duration.minutes(5), Effect.succeed('{"candles":[]}'))
      expect(miss).toEqual({ body: '{"candles":[]}', storedAt: 1_700_000_000_000, age: 0, state: "MISS" })

      yield* TestClock.adjust(Duration.millis(4_500))
      const hit = yield* second.getOrFetch("ohlcv:BTC", Duration.minutes(5), Effect.die("must not fetch"))
      expect(hit).toEqual({ body: '{"candles":[]}', storedAt: 1_700_000_000_000, age: 4, state: "HIT" })

      const raw = yield* rawClient(redis.url)
      expect(yield* Effect.promise(() => raw.get(`${prefix}ohlcv:BTC`))).toBe('1700000000000\n{"candles":[]}')
    })
  )
})

describe("KvCache when Redis is unavailable", () => {
  it.scopedLive("starts quickly on memory when nothing listens at REDIS_URL, and serves from memory", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(() => freePort())
      const { exit, ms } = yield* timed(buildKv(`redis://127.0.0.1:${port}`, uniquePrefix()))
      expect(ms).toBeLessThan(2_000)
      const cache = yield* exit
      expect(yield* cache.status).toEqual({ backend: "memory", redis: "down" })
      expect(cache.countsShared()).toBe(false)
      yield* cache.set("k", "v", Duration.seconds(10))
      expect(yield* cache.get("k")).toEqual(Option.some("v"))
      expect(yield* cache.get("other")).toEqual(Option.none())
    })
  )

  it.live("shutting down while Redis is down or was killed finishes cleanly, without defects", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(() => freePort())
      const neverUp = yield* Effect.exit(Effect.scoped(buildKv(`redis://127.0.0.1:${port}`, uniquePrefix())))
      expect(Exit.isSuccess(neverUp)).toBe(true)

      const server = yield* Effect.promise(() => startRedis())
      const killed = yield* Effect.exit(
        Effect.scoped(
          Effect.gen(function* () {
            const cache = yield* buildKv(server.url, uniquePrefix())
            yield* cache.set("k", "v", Duration.seconds(10))
            yield* Effect.promise(() => server.kill())
          })
        )
      )
      yield* Effect.promise(() => server.stop())
      expect(Exit.isSuccess(killed)).toBe(true)
    })
  )

  it.scopedLive("a REDIS_URL ioredis cannot parse does not fail the cache: memory only, status memory/down", () =>
    Effect.gen(function* () {
      // AppConfig refuses such a URL at start-up (test/config); the cache itself still copes with one
      const cache = yield* makeKvCache({
        memoryMaxEntries: 10,
        redis: { url: "redis://127.0.0.1:not-a-port", keyPrefix: uniquePrefix() }
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none)))
      expect(yield* cache.status).toEqual({ backend: "memory", redis: "down" })
      yield* cache.set("k", "v", Duration.seconds(10))
      expect(yield* cache.get("k")).toEqual(Option.some("v"))
    })
  )

  it.scopedLive("fails over to memory when Redis dies, and returns to Redis when it is back", () =>
    Effect.gen(function* () {
      const consoleError = vi.spyOn(console, "error")
      const consoleWarn = vi.spyOn(console, "warn")
      const server = yield* scopedRedis
      const logs: Array<string> = []
      const capture = Logger.make<unknown, void>(({ logLevel, message }) => {
        logs.push(`${logLevel.label} ${Array.isArray(message) ? String(message[0]) : String(message)}`)
      })
      const prefix = uniquePrefix()
      const cache = yield* buildKv(server.url, prefix).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, capture))
      )
      const raw = yield* rawClient(server.url)

      expect(yield* cache.status).toEqual({ backend: "redis", redis: "up" })
      yield* cache.set("before", "1", Duration.minutes(1))
      expect(yield* cache.get("before")).toEqual(Option.some("1"))

      yield* Effect.promise(() => server.kill())

      // Keep serving through the outage: every call must succeed, and none may wait on the dead server.
      const outage: Array<{ exit: Exit.Exit<unknown>; ms: number }> = []
      for (let i = 0; i < 40; i++) {
        outage.push(yield* timed(cache.set(`during:${i}`, String(i), Duration.minutes(1))))
        outage.push(yield* timed(cache.get(`during:${i}`)))
        yield* Effect.sleep(Duration.millis(10))
      }
      expect(outage.every((op) => Exit.isSuccess(op.exit))).toBe(true)
      expect(Math.max(...outage.map((op) => op.ms))).toBeLessThan(1_000)
      expect(yield* cache.status).toEqual({ backend: "memory", redis: "down" })
      expect(cache.countsShared()).toBe(false)
      expect(yield* cache.get("during:39")).toEqual(Option.some("39"))
      yield* cache.set("memory-only", "m", Duration.minutes(1))
      expect(yield* cache.get("memory-only")).toEqual(Option.some("m"))

      yield* Effect.promise(() => server.restart())
      const status = yield* waitUntil(cache.status, (s) => s.redis === "up", Duration.seconds(10))
      expect(status).toEqual({ backend: "redis", redis: "up" })
      expect(cache.countsShared()).toBe(true)

      yield* cache.set("after", "2", Duration.minutes(1))
      expect(yield* cache.get("after")).toEqual(Option.some("2"))
      expect(yield* Effect.promise(() => raw.get(`${prefix}after`))).toBe("2")
      const pttl = yield* Effect.promise(() => raw.pttl(`${prefix}after`))
      expect(pttl).toBeGreaterThan(59_000)
      // The restarted server is empty and reads go to Redis again, not to the outage-era memory.
      expect(yield* cache.get("memory-only")).toEqual(Option.none())

      expect(logs.some((line) => line.startsWith("WARN redis connection closed"))).toBe(true)
      expect(logs.filter((line) => line.startsWith("INFO redis connected")).length).toBe(2)
      expect(consoleError).not.toHaveBeenCalled()
      expect(consoleWarn).not.toHaveBeenCalled()
      consoleError.mockRestore()
      consoleWarn.mockRestore()
    })
  )

  it.scopedLive("a hung Redis costs a request at most the command timeout, then traffic moves to memory", () =>
    Effect.gen(function* () {
      const server = yield* scopedRedis
      const cache = yield* buildKv(server.url, uniquePrefix())
      yield* cache.set("k", "v", Duration.minutes(1))

      server.pause()
      const first = yield* timed(cache.get("k"))
      expect(first.exit).toEqual(Exit.succeed(Option.none()))
      expect(first.ms).toBeLessThan(1_000)
      expect(yield* cache.status).toEqual({ backend: "memory", redis: "down" })
      const during = yield* timed(Effect.zipRight(cache.set("m", "1", Duration.minutes(1)), cache.get("m")))
      expect(during.exit).toEqual(Exit.succeed(Option.some("1")))
      expect(during.ms).toBeLessThan(50)

      server.resume()
      const up = yield* waitUntil(cache.status, (s) => s.redis === "up", Duration.seconds(10))
      expect(up).toEqual({ backend: "redis", redis: "up" })
      expect(yield* cache.get("k")).toEqual(Option.some("v"))
    })
  )
})
