import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Layer, Option, Ref, TestClock } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { KvCache } from "../../src/Cache/KvCache.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCache } from "../../src/Cache/ResponseCache.js"
import { decodeStored, encodeStored, ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { Candle, Ohlcv } from "../../src/Domain/Market.js"
import { Exchange } from "../../src/Exchange/Exchange.js"
import { makeMarketQueries } from "../../src/Markets/Queries.js"
import { makeFakeUpstream } from "../resilience/fakeExchange.js"

const HOUR = 3_600_000
/** 10:30 UTC: the 10:00 candle of an hourly series is still open. */
const NOW = Date.UTC(2026, 0, 5, 10, 30)
const CLOSED_HOUR = Date.UTC(2026, 0, 5, 8)

const candle = (timestamp: number) => new Candle({ timestamp, open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 })

/** Market queries over an exchange whose hourly candles end at the current hour (latest) or at `since` + 1 h. */
const setup = (env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const fake = yield* makeFakeUpstream
    const fetches = yield* Ref.make(0)
    const exchange = Exchange.of({
      ...fake.service,
      ohlcv: (market, request) =>
        Effect.gen(function* () {
          yield* Ref.update(fetches, (n) => n + 1)
          const now = yield* Clock.currentTimeMillis
          const last = Option.getOrElse(request.since, () => now - (now % HOUR))
          const end = Option.isSome(request.since) ? last + HOUR : last
          return new Ohlcv({
            exchange: market.exchange,
            symbol: market.symbol,
            interval: request.interval,
            candles: [candle(end - HOUR), candle(end)]
          })
        })
    })
    const context = yield* Layer.build(
      Layer.mergeAll(ResponseCacheLive, Layer.succeed(Exchange, exchange), AppConfig.fromRecord(env)).pipe(
        Layer.provideMerge(MemoryKvCacheLive({ maxEntries: 100 }))
      )
    )
    const queries = yield* makeMarketQueries.pipe(Effect.provide(context))
    const get = (since?: number) =>
      Effect.map(
        queries.ohlcv({ exchange: "binance", symbol: "BTC/USDT", interval: "1h", limit: 2, since }),
        (answer) => answer.response.state
      )
    return { get, fetches: Ref.get(fetches) }
  })

describe("the open candle is fresh", () => {
  it.scoped("latest candles (the open one included) are cached OHLCV_OPEN_CACHE_TTL (5 s), not OHLCV_CACHE_TTL", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const { get, fetches } = yield* setup()
      expect(yield* get()).toBe("MISS")
      yield* TestClock.adjust("4999 millis")
      expect(yield* get()).toBe("HIT")
      yield* TestClock.adjust("1 millis")
      expect(yield* get()).toBe("MISS")
      expect(yield* fetches).toBe(2)
    })
  )

  it.scoped("closed candles only (a past window) stay cached for OHLCV_CACHE_TTL", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const { get, fetches } = yield* setup()
      expect(yield* get(CLOSED_HOUR - HOUR)).toBe("MISS")
      yield* TestClock.adjust("299 seconds")
      expect(yield* get(CLOSED_HOUR - HOUR)).toBe("HIT")
      yield* TestClock.adjust("1 second")
      expect(yield* get(CLOSED_HOUR - HOUR)).toBe("MISS")
      expect(yield* fetches).toBe(2)
    })
  )

  it.scoped("a window reaching the open candle is short-lived too; OHLCV_OPEN_CACHE_TTL is configurable", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW)
      const { get, fetches } = yield* setup({ OHLCV_OPEN_CACHE_TTL: "2" })
      const reachingNow = NOW - (NOW % HOUR) - HOUR
      expect(yield* get(reachingNow)).toBe("MISS")
      yield* TestClock.adjust("1999 millis")
      expect(yield* get(reachingNow)).toBe("HIT")
      yield* TestClock.adjust("1 millis")
      expect(yield* get(reachingNow)).toBe("MISS")
      expect(yield* fetches).toBe(2)
    })
  )
})

describe("entries with a freshness of their own", () => {
  it.effect("a Fetched TTL shorter than the key's is stored with the entry and honoured by every reader", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(1_700_000_000_000)
      const cache = yield* ResponseCache
      const fetch = Effect.succeed({ body: '{"open":true}', ttl: Duration.seconds(5) })
      yield* cache.getOrFetch("k", Duration.seconds(300), fetch, { staleIfError: Duration.seconds(60) })
      expect(yield* (yield* KvCache).get("k")).toEqual(Option.some('1700000000000+5000\n{"open":true}'))
      yield* TestClock.adjust("4 seconds")
      expect((yield* cache.getOrFetch("k", Duration.seconds(300), fetch)).state).toBe("HIT")
      yield* TestClock.adjust("1 second")
      expect((yield* cache.getOrFetch("k", Duration.seconds(300), fetch)).state).toBe("MISS")
    }).pipe(Effect.provide(ResponseCacheLive.pipe(Layer.provideMerge(MemoryKvCacheLive({ maxEntries: 10 })))))
  )

  it("the stored form round-trips; entries written before (no TTL of their own) still decode", () => {
    expect(decodeStored(encodeStored(5, "x", 2000))).toEqual(Option.some({ storedAt: 5, ttlMs: 2000, body: "x" }))
    expect(decodeStored("5\nx")).toEqual(Option.some({ storedAt: 5, ttlMs: undefined, body: "x" }))
    expect(decodeStored("5+-1\nx")).toEqual(Option.none())
    expect(decodeStored("5+abc\nx")).toEqual(Option.none())
  })
})
