/**
 * The integrity gate (issue 12): every REST endpoint × every emulated exchange × every broken body kind, through real
 * ccxt, the resilience layer and the response cache. A broken body is `502 bad_upstream_response` after exactly the
 * requests it took (bad payloads are not retried), and nothing of it is cached: each case goes upstream again, and the
 * next good answer is a MISS. A documented empty list (`[]` for candles or trades) stays a 200.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { EmulatedExchange, FaultSpec } from "../../src/emulator/index.js"
import { TestEmulator } from "../support/emulatorServer.js"
import { get } from "../support/apiServer.js"
import { getJson, realSleep, ResilientEmulatorServer } from "../resilience/server.js"

type Body = { readonly code?: string; readonly message?: string; readonly candles?: ReadonlyArray<unknown> }
type Endpoint = "ticker" | "tickers" | "ohlcv" | "ohlcv-since" | "ohlcv-paged" | "orderbook" | "trades" | "markets"
const ENDPOINTS: ReadonlyArray<Endpoint> = [
  "ticker",
  "tickers",
  "ohlcv",
  "ohlcv-since",
  "ohlcv-paged",
  "orderbook",
  "trades",
  "markets"
]

interface Kind {
  readonly title: string
  readonly fault: Omit<FaultSpec, "exchange" | "endpoint">
  /** What the 502 message says for the exchanges the gate reads the body of. */
  readonly reason: RegExp
}

const KINDS: ReadonlyArray<Kind> = [
  { title: "truncated JSON (1 byte)", fault: { kind: "truncated-json", keepBytes: 1 }, reason: /not valid JSON/ },
  { title: "truncated JSON (half)", fault: { kind: "truncated-json" }, reason: /not valid JSON/ },
  {
    title: "truncated JSON (all but the last byte)",
    fault: { kind: "truncated-json", keepBytes: 1e9 },
    reason: /not valid JSON/
  },
  { title: "HTML page", fault: { kind: "html-200" }, reason: /an HTML page instead of JSON/ },
  { title: "empty body", fault: { kind: "empty-200" }, reason: /an empty body/ },
  { title: "{}", fault: { kind: "empty-object-200" }, reason: /unexpected shape|an empty object/ },
  { title: "[]", fault: { kind: "empty-array-200" }, reason: /unexpected shape|an empty list|no ticker for/ },
  { title: "null", fault: { kind: "null-200" }, reason: /JSON null/ },
  { title: "error envelope", fault: { kind: "error-envelope-200" }, reason: /error envelope|rejected/ },
  { title: "wrong field types", fault: { kind: "wrong-types-200" }, reason: /expected a number|expected a string/ },
  { title: "another symbol's payload", fault: { kind: "other-symbol" }, reason: /asked for|missing|no ticker/ }
]

interface Venue {
  readonly symbol: string
  readonly second: string
  /** Emulator paths per endpoint (prefix match). */
  readonly paths: Readonly<Record<Endpoint, string>>
  /** Candles per page, and a `limit` that takes more than one. */
  readonly paged: number
  /** Upstream requests of one tickers call (coinbaseexchange asks per symbol). */
  readonly tickersRequests: number
  /** Requests of one market-list load (kraken and coinbaseexchange also read their currencies). */
  readonly marketsRequests: number
  /** Pages of the paged walk. */
  readonly pages: number
}

const VENUES: Readonly<Record<EmulatedExchange, Venue>> = {
  binance: {
    symbol: "BTC/USDT",
    second: "ETH/USDT",
    paths: {
      ticker: "/api/v3/ticker/24hr",
      tickers: "/api/v3/ticker/24hr",
      ohlcv: "/api/v3/klines",
      "ohlcv-since": "/api/v3/klines",
      "ohlcv-paged": "/api/v3/klines",
      orderbook: "/api/v3/depth",
      trades: "/api/v3/aggTrades",
      markets: "/api/v3/exchangeInfo"
    },
    paged: 1500,
    tickersRequests: 1,
    marketsRequests: 1,
    pages: 2
  },
  kraken: {
    symbol: "BTC/USD",
    second: "ETH/USD",
    paths: {
      ticker: "/0/public/Ticker",
      tickers: "/0/public/Ticker",
      ohlcv: "/0/public/OHLC",
      "ohlcv-since": "/0/public/OHLC",
      "ohlcv-paged": "/0/public/OHLC",
      orderbook: "/0/public/Depth",
      trades: "/0/public/Trades",
      markets: "/0/public/AssetPairs"
    },
    paged: 1000,
    tickersRequests: 1,
    marketsRequests: 2,
    pages: 2
  },
  coinbaseexchange: {
    symbol: "BTC/USD",
    second: "ETH/USD",
    paths: {
      ticker: "/products/BTC-USD/ticker",
      tickers: "/products/",
      ohlcv: "/products/BTC-USD/candles",
      "ohlcv-since": "/products/BTC-USD/candles",
      "ohlcv-paged": "/products/BTC-USD/candles",
      orderbook: "/products/BTC-USD/book",
      trades: "/products/BTC-USD/trades",
      markets: "/products"
    },
    paged: 500,
    tickersRequests: 2,
    marketsRequests: 2,
    // coinbaseexchange leaves out minutes without trades, so 500 candles take a third page
    pages: 3
  }
}

const SINCE = Date.UTC(2023, 11, 20, 0, 0)
const q = encodeURIComponent

let unique = 10
/** A URL no earlier request used where the endpoint takes a limit, so neither cache nor an earlier case answers it. */
const urlOf = (exchange: EmulatedExchange, endpoint: Endpoint): string => {
  const v = VENUES[exchange]
  const base = `exchange=${exchange}&symbol=${q(v.symbol)}`
  const n = unique++
  switch (endpoint) {
    case "ticker":
      return `/v1/markets/ticker?${base}`
    case "tickers":
      return `/v1/markets/tickers?exchange=${exchange}&symbols=${q(`${v.symbol},${v.second}`)}`
    case "ohlcv":
      return `/v1/markets/ohlcv?${base}&interval=1h&limit=${n}`
    case "ohlcv-since":
      return `/v1/markets/ohlcv?${base}&interval=1h&since=${SINCE}&limit=${n}`
    case "ohlcv-paged":
      return `/v1/markets/ohlcv?${base}&interval=1m&since=${SINCE}&limit=${v.paged + n}`
    case "orderbook":
      return `/v1/markets/orderbook?${base}&limit=${n}`
    case "trades":
      return `/v1/markets/trades?${base}&limit=${n}`
    case "markets":
      return `/v1/markets?exchange=${exchange}`
  }
}

/** The payload names no market (binance candles, books, trades; every coinbaseexchange answer): nothing to compare. */
const otherSymbolDetectable = (exchange: EmulatedExchange, endpoint: Endpoint): boolean =>
  endpoint !== "markets" &&
  exchange !== "coinbaseexchange" &&
  (exchange === "kraken" || endpoint === "ticker" || endpoint === "tickers")

/** Where `[]` is the documented answer "nothing in this range": binance and coinbaseexchange candles and trades. */
const emptyListIsData = (exchange: EmulatedExchange, endpoint: Endpoint): boolean =>
  exchange !== "kraken" && (endpoint.startsWith("ohlcv") || endpoint === "trades")

/** Upstream requests one client request makes when the fault hits (the paged walk fails on its second page). */
const requestsOf = (exchange: EmulatedExchange, endpoint: Endpoint): number =>
  endpoint === "tickers" ? VENUES[exchange].tickersRequests : endpoint === "ohlcv-paged" ? 2 : 1

const faultFor = (exchange: EmulatedExchange, endpoint: Endpoint, kind: Kind): FaultSpec => ({
  ...kind.fault,
  exchange,
  endpoint: VENUES[exchange].paths[endpoint],
  ...(endpoint === "ohlcv-paged" ? { after: 1, times: 1 } : {})
})

const run = (exchange: EmulatedExchange, endpoint: Endpoint, fault: FaultSpec | undefined, url: string) =>
  Effect.gen(function* () {
    const emulator = yield* TestEmulator
    emulator.clearFaults()
    // the market list loaded beforehand (whichever tests ran first), so only this endpoint's requests are counted
    if (endpoint !== "markets") expect((yield* getJson(`/v1/markets?exchange=${exchange}&limit=999`)).status).toBe(200)
    if (fault !== undefined) emulator.inject(fault)
    const before = emulator.requestCount(exchange)
    const res = yield* getJson(url)
    const requests = emulator.requestCount(exchange) - before
    emulator.clearFaults()
    return { res, requests }
  })

for (const exchange of ["binance", "kraken", "coinbaseexchange"] as const) {
  // MAX_RETRIES=2 (test/resilience/server.ts): bad payloads must still cost one request each. The first answer of a
  // market's long candle history takes the emulator a while to compute, hence the longer timeout.
  const env = { EXCHANGE_TIMEOUT: "5", OHLCV_CACHE_TTL: "300", TICKER_CACHE_TTL: "300", MARKETS_CACHE_TTL: "300" }
  layer(ResilientEmulatorServer(env), {
    excludeTestServices: true,
    timeout: 120_000
  })(`integrity gate: ${exchange}`, (it) => {
    describe("market list (cold: every failure leaves it unloaded, nothing is cached)", () => {
      for (const kind of KINDS) {
        if (kind.fault.kind === "other-symbol") continue
        it.effect(`${kind.title} ⇒ 502 bad_upstream_response, 1 request`, () =>
          Effect.gen(function* () {
            const { res, requests } = yield* run(
              exchange,
              "markets",
              faultFor(exchange, "markets", kind),
              urlOf(exchange, "markets")
            )
            expect([res.status, (res.json as Body).code]).toEqual([502, "bad_upstream_response"])
            expect(res.headers["cache-control"]).toBe("no-store")
            expect(res.headers["x-cache"]).toBeUndefined()
            if (!(exchange === "kraken" && kind.fault.kind === "error-envelope-200")) {
              expect((res.json as Body).message).toMatch(kind.reason)
            }
            expect(requests).toBe(VENUES[exchange].marketsRequests)
            const health = yield* getJson("/v1/health")
            const status = (
              health.json as { dependencies: { exchanges: Record<string, { status: string; markets: number }> } }
            ).dependencies.exchanges[exchange]
            expect([status?.status, status?.markets]).toEqual(["error", 0])
          })
        )
      }
      it.effect("then a good list: 200, MISS, three markets", () =>
        Effect.gen(function* () {
          const { res } = yield* run(exchange, "markets", undefined, urlOf(exchange, "markets"))
          expect(res.status).toBe(200)
          expect(res.headers["x-cache"]).toBe("MISS")
          expect((res.json as { total: number }).total).toBe(3)
        })
      )
    })

    for (const endpoint of ENDPOINTS) {
      if (endpoint === "markets") continue
      describe(endpoint, () => {
        for (const kind of KINDS) {
          if (kind.fault.kind === "other-symbol" && !otherSymbolDetectable(exchange, endpoint)) continue
          const empty = kind.fault.kind === "empty-array-200" && emptyListIsData(exchange, endpoint)
          const expected = empty ? "200 (a documented empty list)" : "502 bad_upstream_response"
          it.effect(`${kind.title} ⇒ ${expected}, ${requestsOf(exchange, endpoint)} request(s), nothing cached`, () =>
            Effect.gen(function* () {
              const url = urlOf(exchange, endpoint)
              const { res, requests } = yield* run(exchange, endpoint, faultFor(exchange, endpoint, kind), url)
              expect(requests).toBe(requestsOf(exchange, endpoint))
              if (empty) {
                expect(res.status).toBe(200)
                const candles = (res.json as Body).candles
                // the walk ends where the exchange says there is nothing more (binance fills every minute)
                if (endpoint === "ohlcv-paged" && exchange === "binance") expect(candles?.length).toBe(1000)
                else if (endpoint === "ohlcv-paged") expect(candles?.length).toBeGreaterThan(0)
                else if (endpoint.startsWith("ohlcv")) expect(candles).toEqual([])
                else expect((res.json as { trades: ReadonlyArray<unknown> }).trades).toEqual([])
                return
              }
              expect([res.status, (res.json as Body).code]).toEqual([502, "bad_upstream_response"])
              expect(res.headers["cache-control"]).toBe("no-store")
              if (!(exchange === "kraken" && kind.fault.kind === "error-envelope-200")) {
                expect((res.json as Body).message).toMatch(kind.reason)
              }
              // the URL of tickers and ticker is fixed: later cases prove this one left nothing in the cache
              if (endpoint === "ticker" || endpoint === "tickers") return
              const good = yield* run(exchange, endpoint, undefined, url)
              expect([good.res.status, good.res.headers["x-cache"]]).toEqual([200, "MISS"])
              expect(good.requests).toBe(endpoint === "ohlcv-paged" ? VENUES[exchange].pages : 1)
            })
          )
        }
        if (endpoint === "ticker" || endpoint === "tickers") {
          it.effect("then a good answer: 200 MISS from upstream (no failure was cached)", () =>
            Effect.gen(function* () {
              const { res, requests } = yield* run(exchange, endpoint, undefined, urlOf(exchange, endpoint))
              expect([res.status, res.headers["x-cache"]]).toEqual([200, "MISS"])
              expect(requests).toBe(requestsOf(exchange, endpoint))
              if (endpoint === "ticker") {
                // every 502 above was counted once
                const failures = KINDS.filter(
                  (k) => k.fault.kind !== "other-symbol" || otherSymbolDetectable(exchange, endpoint)
                ).length
                expect((yield* get("/metrics")).text).toContain(
                  `upstream_errors_total{source="${exchange}",method="fetchTicker",code="bad_upstream_response"} ${failures}`
                )
              }
            })
          )
        }
      })
    }
  })
}

type ExchangeHealth = { status: string; markets: number; lastError: string | null; marketsLoadedAt: number | null }
const healthOf = (exchange: string) =>
  Effect.map(
    getJson("/v1/health"),
    (res) =>
      (res.json as { dependencies: { exchanges: Record<string, ExchangeHealth> } }).dependencies.exchanges[exchange]
  )

layer(ResilientEmulatorServer({ EXCHANGE_TIMEOUT: "5" }), { excludeTestServices: true, timeout: 60_000 })(
  "integrity gate: a cold market-list load",
  (it) => {
    it.effect("20 concurrent requests during a cold load share one load (one exchangeInfo request)", () =>
      Effect.gen(function* () {
        const emulator = yield* TestEmulator
        const results = yield* Effect.all(
          Array.from({ length: 20 }, (_, i) =>
            getJson(`/v1/markets/trades?exchange=binance&symbol=BTC%2FUSDT&limit=${i + 1}`)
          ),
          { concurrency: "unbounded" }
        )
        expect(results.map((r) => r.status)).toEqual(Array.from({ length: 20 }, () => 200))
        expect(emulator.requestCount("binance", "/api/v3/exchangeInfo")).toBe(1)
      })
    )
  }
)

layer(ResilientEmulatorServer({ EXCHANGE_TIMEOUT: "5", MARKETS_REFRESH_INTERVAL: "1", MARKETS_CACHE_TTL: "0.1" }), {
  excludeTestServices: true,
  timeout: 60_000
})("integrity gate: market list refreshes", (it) => {
  it.effect("a broken refresh keeps the previous good list in force, and health shows the refresh error", () =>
    Effect.gen(function* () {
      const emulator = yield* TestEmulator
      expect((yield* getJson("/v1/markets/ticker?exchange=binance&symbol=BTC%2FUSDT")).status).toBe(200)
      emulator.inject({ kind: "empty-array-200", exchange: "binance", endpoint: "/api/v3/exchangeInfo" })
      const before = emulator.requestCount("binance", "/api/v3/exchangeInfo")
      yield* realSleep(2_500)
      expect(emulator.requestCount("binance", "/api/v3/exchangeInfo") - before).toBeGreaterThanOrEqual(1)
      const health = yield* healthOf("binance")
      expect(health).toEqual({
        status: "ready",
        markets: 3,
        marketsLoadedAt: expect.any(Number),
        lastError: "binance sent a bad response to loadMarkets: unexpected shape: expected an object, got a list",
        circuit: expect.any(Object)
      })
      yield* realSleep(1_200)
      // the failed refreshes did not count as loads
      expect((yield* healthOf("binance"))?.marketsLoadedAt).toBe(health?.marketsLoadedAt)
      // ccxt's own market table was put back: a symbol never asked before still resolves and is fetched
      const ticker = yield* getJson("/v1/markets/ticker?exchange=binance&symbol=SOL%2FUSDT")
      expect([ticker.status, (ticker.json as { symbol: string }).symbol]).toEqual([200, "SOL/USDT"])
      yield* realSleep(150)
      const list = yield* getJson("/v1/markets?exchange=binance")
      expect([list.status, (list.json as { total: number }).total]).toEqual([200, 3])
      const metrics = (yield* get("/metrics")).text
      expect(metrics).toMatch(
        /upstream_errors_total\{source="binance",method="loadMarkets",code="bad_upstream_response"\} [1-9]/
      )

      emulator.clearFaults()
      yield* realSleep(2_200)
      const recovered = yield* healthOf("binance")
      expect([recovered?.status, recovered?.markets, recovered?.lastError]).toEqual(["ready", 3, null])
    })
  )
})
