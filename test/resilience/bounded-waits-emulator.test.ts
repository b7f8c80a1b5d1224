import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TestEmulator } from "../support/emulatorServer.js"
import { getJson, ResilientEmulatorServer } from "./server.js"

type Body = Record<string, unknown>

/** Real ccxt against the emulator with a 2 s request deadline. */
const Server = ResilientEmulatorServer({
  REQUEST_DEADLINE: "2",
  MAX_RETRIES: "5",
  INITIAL_BACKOFF: "0.2",
  MAX_BACKOFF: "1.5",
  EXCHANGE_TIMEOUT: "0.6"
})

/** A cold server (nothing loaded yet) whose kraken budget is 1 request per second. */
const ColdServer = ResilientEmulatorServer({ EXCHANGE_RATE_LIMIT_KRAKEN: "1", MAX_BACKOFF: "1.5" })

layer(ColdServer, { excludeTestServices: true, timeout: 60_000 })("cold start through real ccxt", (it) => {
  it.effect("cold start: 100 concurrent tickers share one market-list load and one budget token: all 200", () =>
    Effect.gen(function* () {
      const emulator = yield* TestEmulator
      const results = yield* Effect.all(
        Array.from({ length: 100 }, () => getJson("/v1/markets/ticker?exchange=kraken&symbol=BTC/USD")),
        { concurrency: "unbounded" }
      )
      expect(new Set(results.map((r) => r.status))).toEqual(new Set([200]))
      expect(emulator.requestCount("kraken", "/0/public/AssetPairs")).toBe(1)
    })
  )
})

layer(Server, { excludeTestServices: true, timeout: 60_000 })("bounded waits through real ccxt", (it) => {
  it.effect("Retry-After: 100000 on a 429 becomes a 60 s pause (RETRY_AFTER_MAX), said to the client and health", () =>
    Effect.gen(function* () {
      const emulator = yield* TestEmulator
      yield* getJson("/v1/markets?exchange=binance&limit=1")
      emulator.inject({ kind: "rate-limit-429", exchange: "binance", retryAfter: 100_000, times: 1 })
      const limited = yield* getJson("/v1/markets/trades?exchange=binance&symbol=ETH/USDT&limit=3")
      expect([limited.status, limited.headers["retry-after"], (limited.json as Body)["code"]]).toEqual([
        429,
        "60",
        "upstream_rate_limited"
      ])
      const health = (yield* getJson("/v1/health")).json as {
        dependencies: { exchanges: Record<string, { circuit: { rateLimitedFor: number | null } }> }
      }
      const pause = health.dependencies.exchanges["binance"]?.circuit.rateLimitedFor ?? 0
      expect(pause).toBeGreaterThanOrEqual(59)
      expect(pause).toBeLessThanOrEqual(60)
    })
  )

  it.effect("an exchange that never answers is a 504 at the request deadline, not after every retry", () =>
    Effect.gen(function* () {
      const emulator = yield* TestEmulator
      yield* getJson("/v1/markets/ticker?exchange=coinbaseexchange&symbol=BTC/USD")
      emulator.inject({ kind: "delay", exchange: "coinbaseexchange", delayMs: 5_000 })
      const before = emulator.requestCount("coinbaseexchange")
      const res = yield* getJson("/v1/markets/orderbook?exchange=coinbaseexchange&symbol=ETH/USD&limit=5")
      expect([res.status, (res.json as Body)["code"]]).toEqual([504, "upstream_timeout"])
      // 0.6 s timeouts with 0.2 s, 0.4 s backoffs: three attempts fit in 2 s, not the six MAX_RETRIES=5 allows
      expect(emulator.requestCount("coinbaseexchange") - before).toBeLessThanOrEqual(3)
      emulator.clearFaults()
    })
  )
})
