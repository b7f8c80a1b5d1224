import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Logger, Option } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { KvCacheLive } from "../../src/Cache/Live.js"
import { cacheNamespace, LIVE_NAMESPACE } from "../../src/Cache/Namespace.js"
import { ResponseCache } from "../../src/Cache/ResponseCache.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { startEmulator } from "../../src/emulator/index.js"
import { scopedRedisWithClient } from "../support/redisScoped.js"

const PREFIX = "mcds:"
const EMULATOR_A = {
  EXCHANGE_API_BASE_BINANCE: "http://127.0.0.1:9101/binance",
  EXCHANGE_WS_BASE_BINANCE: "ws://127.0.0.1:9101/binance"
}
const EMULATOR_B = { EXCHANGE_API_BASE_BINANCE: "http://127.0.0.1:9202/binance" }

const configOf = (env: Record<string, string>) =>
  Effect.provide(AppConfig, AppConfig.fromRecord({ ENABLED_EXCHANGES: "binance,kraken", ...env }))

/** A server's ResponseCache over the shared Redis at `url`, configured by `env`. */
const serverCache = (url: string, env: Record<string, string>) =>
  Layer.build(
    ResponseCacheLive.pipe(
      Layer.provideMerge(KvCacheLive),
      Layer.provideMerge(
        AppConfig.fromRecord({ ENABLED_EXCHANGES: "binance,kraken", REDIS_URL: url, REDIS_KEY_PREFIX: PREFIX, ...env })
      )
    )
  ).pipe(
    Effect.map((context) => Context.get(context, ResponseCache)),
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none))
  )

const TTL = Duration.seconds(60)
const body = (name: string) => Effect.succeed(JSON.stringify({ from: name }))

describe("cache keys identify the upstream", () => {
  it.effect("the real exchanges are the `live` namespace; URL overrides hash to their own, order-independent", () =>
    Effect.gen(function* () {
      expect(cacheNamespace((yield* configOf({})).exchangeOverrides)).toBe(LIVE_NAMESPACE)
      const a = cacheNamespace((yield* configOf(EMULATOR_A)).exchangeOverrides)
      expect(a).toMatch(/^u[0-9a-f]{12}$/)
      expect(cacheNamespace((yield* configOf(EMULATOR_B)).exchangeOverrides)).not.toBe(a)
      const reordered = yield* configOf({
        ENABLED_EXCHANGES: "kraken,binance",
        EXCHANGE_WS_BASE_BINANCE: EMULATOR_A.EXCHANGE_WS_BASE_BINANCE,
        EXCHANGE_API_BASE_BINANCE: `${EMULATOR_A.EXCHANGE_API_BASE_BINANCE}/`
      })
      expect(cacheNamespace(reordered.exchangeOverrides)).toBe(a)
    })
  )

  it.scopedLive("servers sharing one Redis read each other's entries only when they ask the same upstream", () =>
    Effect.gen(function* () {
      const { redis, raw } = yield* scopedRedisWithClient
      const real = yield* serverCache(redis.url, {})
      const realToo = yield* serverCache(redis.url, {})
      const demo = yield* serverCache(redis.url, EMULATOR_A)
      const other = yield* serverCache(redis.url, EMULATOR_B)

      expect((yield* real.getOrFetch("v1:ticker:binance:BTC/USDT", TTL, body("real"))).state).toBe("MISS")
      const fromDemo = yield* demo.getOrFetch("v1:ticker:binance:BTC/USDT", TTL, body("demo"))
      expect([fromDemo.state, fromDemo.body]).toEqual(["MISS", '{"from":"demo"}'])
      const fromOther = yield* other.getOrFetch("v1:ticker:binance:BTC/USDT", TTL, body("other"))
      expect([fromOther.state, fromOther.body]).toEqual(["MISS", '{"from":"other"}'])
      // another instance of the real deployment shares the real entry
      const shared = yield* realToo.getOrFetch("v1:ticker:binance:BTC/USDT", TTL, body("never"))
      expect([shared.state, shared.body]).toEqual(["HIT", '{"from":"real"}'])

      const keys = (yield* Effect.promise(() => raw.keys("mcds:*"))).sort()
      const demoNs = cacheNamespace((yield* configOf(EMULATOR_A)).exchangeOverrides)
      const otherNs = cacheNamespace((yield* configOf(EMULATOR_B)).exchangeOverrides)
      expect(keys).toEqual(
        [
          `mcds:live:v1:ticker:binance:BTC/USDT`,
          `mcds:${demoNs}:v1:ticker:binance:BTC/USDT`,
          `mcds:${otherNs}:v1:ticker:binance:BTC/USDT`
        ].sort()
      )
      expect(yield* Effect.promise(() => raw.get("mcds:live:v1:ticker:binance:BTC/USDT"))).toMatch(
        /^\d+\n\{"from":"real"\}$/
      )
    })
  )

  it.scoped("the demo's settings (its local emulator) never name the real namespace", () =>
    Effect.gen(function* () {
      const emulator = yield* Effect.acquireRelease(
        Effect.promise(() => startEmulator({ clock: "frozen" })),
        (e) => Effect.promise(() => e.close())
      )
      const demo = yield* configOf({ ...emulator.env(), ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange" })
      const namespace = cacheNamespace(demo.exchangeOverrides)
      expect(namespace).not.toBe(LIVE_NAMESPACE)
      expect(Option.isSome(demo.exchangeOverrides["kraken"]?.apiBase ?? Option.none())).toBe(true)
    })
  )
})
