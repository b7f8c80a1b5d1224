import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Logger, LogLevel, Option } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { ExchangeLive } from "../../src/Exchange/Live.js"
import { makeMarketQueries } from "../../src/Markets/Queries.js"
import { ResilientExchangeLive } from "../../src/Resilience/ResilientExchange.js"
import { EmulatorLive, emulatorEnv, TestEmulator } from "../support/emulatorServer.js"
import { RESILIENCE_ENV } from "../resilience/server.js"

const realSleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/**
 * Two server lifetimes over one shared cache (Redis in production): `before` fills it, the exchange goes down, and a
 * restarted server (`after`, markets not loaded) answers from it.
 */
const restartDuringOutage = Effect.gen(function* () {
  const emulator = yield* TestEmulator
  const kv = yield* Layer.build(MemoryKvCacheLive({ maxEntries: 1_000 }))
  const instance = Effect.gen(function* () {
    const context = yield* Layer.build(
      Layer.mergeAll(ResponseCacheLive, ResilientExchangeLive.pipe(Layer.provide(ExchangeLive))).pipe(
        Layer.provideMerge(
          AppConfig.fromRecord(
            emulatorEnv(emulator, { ...RESILIENCE_ENV, TICKER_CACHE_TTL: "3", STALE_IF_ERROR: "60" })
          )
        )
      )
    ).pipe(Effect.provide(kv))
    return yield* makeMarketQueries.pipe(Effect.provide(context), Effect.provide(kv))
  })
  return { emulator, instance }
})

const TestLayer = EmulatorLive().pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Error)))

describe("stale-if-error without a market list (a restart during an outage)", () => {
  it.scopedLive("a cached ticker is served STALE, one still fresh is a HIT, anything else gets the load's error", () =>
    Effect.gen(function* () {
      const { emulator, instance } = yield* restartDuringOutage
      const before = yield* instance
      const fresh = yield* before.ticker({ exchange: "binance", symbol: "BTC/USDT" })
      expect(fresh.response.state).toBe("MISS")

      // every binance request fails from now on, market list included; the restarted server never loaded it
      emulator.inject({ kind: "error-503", exchange: "binance", endpoint: "/" })
      const after = yield* instance

      // within the TTL: the entry is fresh, so it is a HIT although the market list cannot load
      const hit = yield* after.ticker({ exchange: "binance", symbol: "btc-usdt" })
      expect(hit.response.state).toBe("HIT")
      expect(hit.response.body).toBe(fresh.response.body)

      yield* realSleep(3_100)
      const requestsBefore = emulator.requestCount("binance")
      const stale = yield* after.ticker({ exchange: "Binance", symbol: "BTC/USDT" })
      expect(stale.response.state).toBe("STALE")
      expect(stale.response.body).toBe(fresh.response.body)
      expect(stale.response.storedAt).toBe(fresh.response.storedAt)
      // the market list was tried (MAX_RETRIES=2: three attempts) and nothing else
      expect(emulator.requestCount("binance") - requestsBefore).toBe(3)

      const uncached = yield* Effect.either(after.ticker({ exchange: "binance", symbol: "ETH/USDT" }))
      expect(Either.getLeft(uncached).pipe(Option.map((e) => [e._tag, "code" in e ? e.code : null]))).toEqual(
        Option.some(["UpstreamUnavailable", "upstream_unavailable"])
      )
    }).pipe(Effect.provide(TestLayer))
  )

  it.scopedLive("order books, trades and candles too; a question about nothing cached keeps its error", () =>
    Effect.gen(function* () {
      const { emulator, instance } = yield* restartDuringOutage
      const before = yield* instance
      const book = yield* before.orderBook({ exchange: "kraken", symbol: "BTC/USD", limit: 10 })
      const trades = yield* before.trades({ exchange: "kraken", symbol: "BTC/USD", limit: 10 })
      const candles = yield* before.ohlcv({ exchange: "kraken", symbol: "BTC/USD", interval: "1h", limit: 5 })
      emulator.inject({ kind: "error-503", exchange: "kraken", endpoint: "/" })
      const after = yield* instance
      yield* realSleep(1_100)
      const again = yield* Effect.all([
        after.orderBook({ exchange: "kraken", symbol: "btc/usd", limit: 10 }),
        after.trades({ exchange: "kraken", symbol: "BTC-USD", limit: 10 }),
        after.ohlcv({ exchange: "kraken", symbol: "BTC/USD", interval: "1h", limit: 5 })
      ])
      expect(again.map((a) => a.response.state)).toEqual(["STALE", "STALE", "HIT"])
      expect(again.map((a) => a.response.body)).toEqual([book, trades, candles].map((a) => a.response.body))
      const other = yield* Effect.either(after.orderBook({ exchange: "kraken", symbol: "BTC/USD", limit: 20 }))
      expect(Either.isLeft(other)).toBe(true)
    }).pipe(Effect.provide(TestLayer))
  )
})
