import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Schedule } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { startEmulator } from "../../src/emulator/index.js"
import { HotCache } from "../../src/Http/HotCache.js"
import { LogSink, sinkLogger } from "../../src/Logging.js"
import { ServerLive } from "../../src/Server.js"
import { emulatorEnv } from "../support/emulatorServer.js"
import { freePort } from "../support/redis.js"
import { scopedRedisWithClient } from "../support/redisScoped.js"

const TICKER = "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT"

/** The production server layer (ServerLive) on a free port against a frozen emulator. */
const withServer = <A, E>(
  env: Record<string, string>,
  f: (base: string, stats: () => { entries: number; served: number }) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const emulator = yield* Effect.acquireRelease(
      Effect.promise(() => startEmulator({ clock: "frozen" })),
      (e) => Effect.promise(() => e.close())
    )
    const port = yield* Effect.promise(() => freePort())
    const config = yield* Effect.provide(
      AppConfig,
      AppConfig.fromRecord(
        emulatorEnv(emulator, {
          PORT: String(port),
          HOST: "127.0.0.1",
          LOG_LEVEL: "warn",
          TICKER_CACHE_TTL: "2",
          ...env
        })
      )
    )
    const context = yield* Layer.build(ServerLive(config))
    const hot = yield* Effect.provide(HotCache, context)
    return yield* f(`http://127.0.0.1:${port}`, hot.stats)
  }).pipe(Effect.scoped)

const fetchText = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const res = await fetch(url, { headers })
    return { status: res.status, headers: Object.fromEntries(res.headers), text: await res.text() }
  })

const metricValues = (base: string) =>
  Effect.map(fetchText(base + "/metrics"), ({ text }) => {
    const value = (prefix: string) =>
      Number(
        text
          .split("\n")
          .find((line) => line.startsWith(prefix + " "))
          ?.slice(prefix.length + 1) ?? 0
      )
    return {
      requests: value('http_requests_total{route="/v1/markets/ticker",method="GET",status="200"}'),
      hits: value('cache_events_total{result="hit"}')
    }
  })

describe("hot path for fresh cached answers", () => {
  it.live("serves repeats of a fresh answer with identical body and headers, then expires with the TTL", () =>
    withServer({ RATE_LIMIT_ENABLED: "false" }, (base, stats) =>
      Effect.gen(function* () {
        const first = yield* fetchText(base + TICKER)
        expect([first.status, first.headers["x-cache"]]).toEqual([200, "MISS"])
        const second = yield* fetchText(base + TICKER)
        expect(second.headers["x-cache"]).toBe("HIT")
        expect(second.text).toBe(first.text)
        expect(second.headers["cache-control"]).toBe("public, max-age=2")
        expect(second.headers["age"]).toBe("0")
        expect(stats()).toEqual({ entries: 1, served: 1 })
        yield* Effect.sleep("2100 millis")
        const third = yield* fetchText(base + TICKER)
        expect(third.headers["x-cache"]).toBe("MISS")
        expect(stats().served).toBe(1)
      })
    )
  )

  it.live("Age counts from the upstream fetch; metrics and the request count include hot answers", () =>
    withServer({ RATE_LIMIT_ENABLED: "false", TICKER_CACHE_TTL: "5" }, (base, stats) =>
      Effect.gen(function* () {
        yield* fetchText(base + TICKER)
        yield* Effect.sleep("1100 millis")
        const later = yield* fetchText(base + TICKER)
        expect([later.headers["x-cache"], later.headers["age"], later.headers["cache-control"]]).toEqual([
          "HIT",
          "1",
          "public, max-age=4"
        ])
        const before = yield* metricValues(base)
        yield* fetchText(base + TICKER)
        expect(stats().served).toBe(2)
        const after = yield* metricValues(base)
        expect(after.requests - before.requests).toBe(1)
        expect(after.hits - before.hits).toBe(1)
      })
    )
  )

  it.live("with API keys, a request without a valid key never gets the hot answer", () =>
    withServer({ RATE_LIMIT_ENABLED: "false", API_KEYS: "hot-key" }, (base, stats) =>
      Effect.gen(function* () {
        expect((yield* fetchText(base + TICKER, { "x-api-key": "hot-key" })).headers["x-cache"]).toBe("MISS")
        expect((yield* fetchText(base + TICKER)).status).toBe(401)
        expect((yield* fetchText(base + TICKER, { "x-api-key": "hot-kez" })).status).toBe(401)
        const hit = yield* fetchText(base + TICKER, { authorization: "Bearer hot-key" })
        expect([hit.status, hit.headers["x-cache"]]).toEqual([200, "HIT"])
        expect(stats().served).toBe(1)
      })
    )
  )

  it.live(
    "with the inbound rate limit on, hot answers are counted in the same budget; over it the Effect path answers 429",
    () =>
      withServer({ RATE_LIMIT_ENABLED: "true", REDIS_ENABLED: "false", RATE_LIMIT_REQUESTS: "3" }, (base, stats) =>
        Effect.gen(function* () {
          const first = yield* fetchText(base + TICKER)
          expect([first.headers["x-cache"], first.headers["ratelimit-remaining"]]).toEqual(["MISS", "2"])
          const second = yield* fetchText(base + TICKER)
          const third = yield* fetchText(base + TICKER)
          expect([second.headers["x-cache"], second.headers["ratelimit-remaining"]]).toEqual(["HIT", "1"])
          expect([third.headers["x-cache"], third.headers["ratelimit-remaining"]]).toEqual(["HIT", "0"])
          expect(third.headers["ratelimit-policy"]).toBe("3;w=60")
          expect(stats().served).toBe(2)
          const limited = yield* fetchText(base + TICKER)
          expect(limited.status).toBe(429)
          expect((JSON.parse(limited.text) as { code: string }).code).toBe("rate_limited")
          expect(limited.headers["retry-after"]).toBe(limited.headers["ratelimit-reset"])
          expect(stats().served).toBe(2)
        })
      )
  )

  it.live("with Redis far from the limit, hot answers are decided locally in the budget the Effect path counts", () =>
    Effect.gen(function* () {
      const { redis, raw } = yield* scopedRedisWithClient
      const prefix = `hot-rl-${Date.now()}:`
      const env = { REDIS_ENABLED: "true", REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_ENABLED: "true" }
      yield* withServer({ ...env, RATE_LIMIT_REQUESTS: "1000" }, (base, stats) =>
        Effect.gen(function* () {
          const first = yield* fetchText(base + TICKER)
          expect([first.headers["x-cache"], first.headers["ratelimit-remaining"]]).toEqual(["MISS", "999"])
          const key = (yield* Effect.promise(() => raw.keys(`${prefix}ratelimit:*`)))[0] ?? ""
          yield* Effect.promise(() => raw.incrby(key, 100))
          // local: the other 100 are not seen yet, and the Effect path's request is (one RateLimiter for both paths)
          const hot = yield* fetchText(base + TICKER)
          expect([hot.headers["x-cache"], hot.headers["ratelimit-remaining"]]).toEqual(["HIT", "998"])
          expect(stats().served).toBe(1)
          yield* Effect.promise(() => raw.get(key)).pipe(
            Effect.filterOrFail((value) => value === "102"),
            Effect.retry(Schedule.spaced("25 millis")),
            Effect.timeout("3 seconds")
          )
          const synced = yield* fetchText(base + TICKER)
          expect([synced.headers["x-cache"], synced.headers["ratelimit-remaining"]]).toEqual(["HIT", "897"])
        })
      )
    }).pipe(Effect.scoped)
  )

  it.live("a hot answer's request log line has the shape and fields of the Effect path's", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const sink = LogSink.of({ write: (line) => lines.push(line), flush: () => undefined })
      yield* withServer({ RATE_LIMIT_ENABLED: "false", LOG_LEVEL: "info", API_KEYS: "log-key" }, (base) =>
        Effect.gen(function* () {
          expect((yield* fetchText(base + TICKER, { "x-api-key": "log-key" })).headers["x-cache"]).toBe("MISS")
          expect((yield* fetchText(base + TICKER, { "x-api-key": "log-key" })).headers["x-cache"]).toBe("HIT")
        })
      ).pipe(
        Effect.provide(
          Layer.merge(Logger.replace(Logger.defaultLogger, sinkLogger(sink)), Layer.succeed(LogSink, sink))
        )
      )
      const requests = lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((log) => log["message"] === "http request")
        .filter((log) => (log["annotations"] as Record<string, unknown>)["route"] === "/v1/markets/ticker")
      expect(requests.length).toBe(2)
      const [miss, hit] = requests
      expect(Object.keys(hit ?? {})).toEqual(Object.keys(miss ?? {}))
      expect(Object.keys(hit ?? {})).toEqual(["message", "logLevel", "timestamp", "annotations", "spans", "fiberId"])
      const annotations = (log: Record<string, unknown> | undefined) => log?.["annotations"] as Record<string, unknown>
      expect(Object.keys(annotations(hit)).sort()).toEqual(Object.keys(annotations(miss)).sort())
      expect({ ...annotations(hit), durationMs: 0 }).toEqual({ ...annotations(miss), durationMs: 0, cache: "HIT" })
      expect(typeof annotations(hit)["durationMs"]).toBe("number")
      expect(hit?.["logLevel"]).toBe("INFO")
      expect(hit?.["spans"]).toEqual({})
      expect(Number.isNaN(Date.parse(String(hit?.["timestamp"])))).toBe(false)
      expect(lines.join("\n")).not.toContain("log-key")
    })
  )
})
