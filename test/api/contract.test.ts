import { assert, describe, expect, layer } from "@effect/vitest"
import { Effect, Ref, TestClock } from "effect"
import { readFileSync, writeFileSync } from "node:fs"
import { VERSION } from "../../src/Version.js"
import { ApiTestServer, get, UpstreamCalls } from "../support/apiServer.js"
import { T0 } from "../support/mockExchange.js"

const callsOf = (method: string) => Effect.map(Effect.flatMap(UpstreamCalls, Ref.get), (calls) => calls[method] ?? 0)

const expectError = (
  response: { status: number; json: unknown; headers: Readonly<Record<string, string>> },
  status: number,
  code: string
) => {
  expect(response.status).toBe(status)
  expect(response.headers["content-type"]).toContain("application/json")
  const body = response.json as { code: string; message: string }
  expect(body.code).toBe(code)
  expect(typeof body.message).toBe("string")
  expect(body.message.length).toBeGreaterThan(0)
  return body
}

const btcTicker = {
  exchange: "binance",
  symbol: "BTC/USDT",
  bid: 41999.5,
  ask: 42000.5,
  last: 42000,
  timestamp: T0,
  datetime: "2024-01-01T00:00:00.000Z",
  high: 42100,
  low: 41900,
  open: 41990,
  close: 42000,
  baseVolume: 12.5,
  quoteVolume: 525000,
  change: 10,
  percentage: (10 / 41990) * 100,
  vwap: 41999,
  source: "exchange",
  raw: { lastPrice: "42000", exchangeOwnField: true }
}

layer(ApiTestServer())("REST API v1 contract", (it) => {
  it.effect("GET /v1/health reports status, uptime, version and dependencies", () =>
    Effect.gen(function* () {
      const res = yield* get("/v1/health")
      expect(res.status).toBe(200)
      const body = res.json as Record<string, unknown>
      expect(body.status).toBe("ok")
      expect(body.version).toBe(VERSION)
      expect(typeof body.uptime).toBe("number")
      expect(body.uptime).toBeGreaterThanOrEqual(0)
      expect(body.dependencies).toEqual({
        redis: { status: "disabled", cache: "memory" },
        exchanges: {
          binance: { status: "ready", marketsLoadedAt: T0, markets: 3, lastError: null },
          kraken: { status: "idle", marketsLoadedAt: null, markets: 0, lastError: null }
        }
      })
    })
  )

  it.effect("ticker: exact body, MISS then HIT with one upstream call, Age and max-age follow the clock", () =>
    Effect.gen(function* () {
      const first = yield* get("/v1/markets/ticker?exchange=binance&symbol=BTC/USDT")
      expect(first.status).toBe(200)
      expect(first.json).toEqual(btcTicker)
      expect(first.headers["x-cache"]).toBe("MISS")
      expect(first.headers["age"]).toBe("0")
      expect(first.headers["cache-control"]).toBe("public, max-age=2")

      yield* TestClock.adjust("1 second")
      const second = yield* get("/v1/markets/ticker?exchange=BINANCE&symbol=btc-usdt")
      expect(second.headers["x-cache"]).toBe("HIT")
      expect(second.headers["age"]).toBe("1")
      expect(second.headers["cache-control"]).toBe("public, max-age=1")
      expect(second.text).toBe(first.text)
      expect(yield* callsOf("ticker")).toBe(1)

      yield* TestClock.adjust("2 seconds")
      const third = yield* get("/v1/markets/ticker?exchange=binance&symbol=BTC/USDT")
      expect(third.headers["x-cache"]).toBe("MISS")
      expect(yield* callsOf("ticker")).toBe(2)
    })
  )

  it.effect("compatibility /market/ticker returns the v1 body", () =>
    Effect.gen(function* () {
      const res = yield* get("/market/ticker?exchange=binance&symbol=ETH/USDT")
      const v1 = yield* get("/v1/markets/ticker?exchange=binance&symbol=ETH/USDT")
      expect(res.status).toBe(200)
      expect(res.json).toEqual({ ...btcTicker, ...(v1.json as object) })
      expect(res.text).toBe(v1.text)
      expect((res.json as { last: number }).last).toBe(2500)
    })
  )

  it.effect("ohlcv: defaults interval=1m and limit=500; since and limit honoured", () =>
    Effect.gen(function* () {
      const res = yield* get("/v1/markets/ohlcv?exchange=binance&symbol=BTC/USDT")
      expect(res.status).toBe(200)
      const body = res.json as { interval: string; candles: ReadonlyArray<Record<string, number>> }
      expect(body.interval).toBe("1m")
      expect(body.candles).toHaveLength(500)
      const paged = yield* get("/v1/markets/ohlcv?exchange=binance&symbol=BTC/USDT&interval=5m&since=1000&limit=2")
      expect(paged.json).toEqual({
        exchange: "binance",
        symbol: "BTC/USDT",
        interval: "5m",
        candles: [
          { timestamp: 1000, open: 100, high: 101, low: 99, close: 100.5, volume: 0 },
          { timestamp: 61000, open: 101, high: 102, low: 100, close: 101.5, volume: 1 }
        ]
      })
      expect(paged.headers["cache-control"]).toBe("public, max-age=300")
    })
  )

  it.effect("compatibility /market/history is OHLCV with a default limit of 100", () =>
    Effect.gen(function* () {
      const res = yield* get("/market/history?exchange=binance&symbol=ETH/USDT")
      expect(res.status).toBe(200)
      const v1 = yield* get("/v1/markets/ohlcv?exchange=binance&symbol=ETH/USDT&limit=100")
      expect(res.text).toBe(v1.text)
      expect((res.json as { candles: unknown[] }).candles).toHaveLength(100)
    })
  )

  it.effect("orderbook: levels as {price, amount}, bids descending, asks ascending", () =>
    Effect.gen(function* () {
      const res = yield* get("/v1/markets/orderbook?exchange=binance&symbol=BTC/USDT&limit=3")
      expect(res.status).toBe(200)
      expect(res.json).toEqual({
        exchange: "binance",
        symbol: "BTC/USDT",
        bids: [
          { price: 100, amount: 1 },
          { price: 99, amount: 2 },
          { price: 98, amount: 3 }
        ],
        asks: [
          { price: 101, amount: 2 },
          { price: 102, amount: 3 },
          { price: 103, amount: 4 }
        ],
        timestamp: T0
      })
      expect(res.headers["cache-control"]).toBe("public, max-age=1")
      const defaults = yield* get("/v1/markets/orderbook?exchange=binance&symbol=ETH/USDT")
      expect((defaults.json as { bids: unknown[] }).bids).toHaveLength(50)
    })
  )

  it.effect("trades: trade_id, timestamp, price, amount, side", () =>
    Effect.gen(function* () {
      const res = yield* get("/v1/markets/trades?exchange=binance&symbol=BTC/USDT&limit=2")
      expect(res.json).toEqual({
        exchange: "binance",
        symbol: "BTC/USDT",
        trades: [
          { trade_id: "1000", timestamp: T0, price: 100, amount: 0.5, side: "buy" },
          { trade_id: "1001", timestamp: T0 + 1, price: 101, amount: 0.5, side: "sell" }
        ]
      })
      const defaults = yield* get("/v1/markets/trades?exchange=binance&symbol=ETH/USDT")
      expect((defaults.json as { trades: unknown[] }).trades).toHaveLength(100)
    })
  )

  it.effect("tickers: several symbols in the requested order", () =>
    Effect.gen(function* () {
      const res = yield* get("/v1/markets/tickers?exchange=binance&symbols=ETH/USDT,BTC/USDT")
      expect(res.status).toBe(200)
      const body = res.json as { exchange: string; tickers: ReadonlyArray<{ symbol: string; last: number }> }
      expect(body.exchange).toBe("binance")
      expect(body.tickers.map((t) => [t.symbol, t.last])).toEqual([
        ["ETH/USDT", 2500],
        ["BTC/USDT", 42000]
      ])
      expectError(
        yield* get("/v1/markets/tickers?exchange=binance&symbols=BTC/USDT,NOPE/USDT"),
        404,
        "symbol_not_found"
      )
    })
  )

  it.effect("markets: filter and paginate", () =>
    Effect.gen(function* () {
      const res = yield* get("/v1/markets?exchange=binance&quote=USDT&offset=1&limit=1")
      expect(res.status).toBe(200)
      expect(res.json).toEqual({
        exchange: "binance",
        total: 2,
        offset: 1,
        limit: 1,
        markets: [
          {
            symbol: "ETH/USDT",
            id: "ETHUSDT",
            base: "ETH",
            quote: "USDT",
            type: "spot",
            active: true,
            precision: { price: 0.01, amount: 0.0001 }
          }
        ]
      })
      const q = yield* get("/v1/markets?exchange=binance&q=sol")
      expect((q.json as { markets: ReadonlyArray<{ symbol: string }> }).markets.map((m) => m.symbol)).toEqual([
        "SOL/BTC"
      ])
    })
  )

  it.effect("exchanges: enabled exchanges with capabilities", () =>
    Effect.gen(function* () {
      const res = yield* get("/v1/exchanges")
      expect(res.status).toBe(200)
      const body = res.json as { exchanges: ReadonlyArray<{ id: string; maxCandlesPerRequest: number }> }
      expect(body.exchanges.map((e) => [e.id, e.maxCandlesPerRequest])).toEqual([
        ["binance", 1000],
        ["kraken", 720]
      ])
    })
  )

  describe("errors", () => {
    it.effect("400 unknown exchange names the closest ids", () =>
      Effect.gen(function* () {
        const body = expectError(
          yield* get("/v1/markets/ticker?exchange=binanse&symbol=BTC/USDT"),
          400,
          "unknown_exchange"
        ) as unknown as { suggestions: string[]; enabled: string[] }
        expect(body.suggestions).toEqual(["binance"])
        expect(body.enabled).toEqual(["binance", "kraken"])
      })
    )

    it.effect("400 for missing and malformed parameters names the parameter", () =>
      Effect.gen(function* () {
        const missing = expectError(yield* get("/v1/markets/ticker?exchange=binance"), 400, "invalid_parameter")
        expect(missing).toEqual({
          _tag: "InvalidParameter",
          code: "invalid_parameter",
          parameter: "symbol",
          message: 'Missing required query parameter "symbol"'
        })
        const limit = expectError(
          yield* get("/v1/markets/ohlcv?exchange=binance&symbol=BTC/USDT&limit=5000"),
          400,
          "invalid_parameter"
        )
        expect(limit.message).toBe('Invalid query parameter "limit": limit must be an integer between 1 and 2000')
        const notInt = expectError(
          yield* get("/v1/markets/trades?exchange=binance&symbol=BTC/USDT&limit=abc"),
          400,
          "invalid_parameter"
        )
        expect(notInt.message).toBe('Invalid query parameter "limit": limit must be an integer between 1 and 1000')
        const symbol = expectError(
          yield* get("/v1/markets/ticker?exchange=binance&symbol=%3Cscript%3E"),
          400,
          "invalid_parameter"
        )
        expect(symbol.message).toBe(
          'Invalid query parameter "symbol": symbol must look like BASE/QUOTE, for example BTC/USDT'
        )
        expectError(yield* get("/v1/markets/ohlcv?exchange=binance&symbol=BTC/USDT&since=-5"), 400, "invalid_parameter")
      })
    )

    it.effect("400 unsupported interval lists the supported ones", () =>
      Effect.gen(function* () {
        const body = expectError(
          yield* get("/v1/markets/ohlcv?exchange=binance&symbol=BTC/USDT&interval=7m"),
          400,
          "unsupported_interval"
        ) as unknown as { supported: string[] }
        expect(body.supported).toEqual(["1m", "5m", "1h", "1d"])
      })
    )

    it.effect("404 unknown symbol and unknown route", () =>
      Effect.gen(function* () {
        const body = expectError(
          yield* get("/v1/markets/ticker?exchange=binance&symbol=DOGE/USDT"),
          404,
          "symbol_not_found"
        ) as unknown as { symbol: string; exchange: string }
        expect(body.symbol).toBe("DOGE/USDT")
        expect(body.exchange).toBe("binance")
        expectError(yield* get("/v1/nothing/here?x=1"), 404, "not_found")
      })
    )

    it.effect("429, 501, 502, 503 and 504 from upstream failures, with Retry-After where known", () =>
      Effect.gen(function* () {
        const limited = yield* get("/v1/markets/ticker?exchange=binance&symbol=HOT/429")
        expectError(limited, 429, "upstream_rate_limited")
        expect(limited.headers["retry-after"]).toBe("3")
        expectError(yield* get("/v1/markets/trades?exchange=binance&symbol=NOPE/501"), 501, "not_supported")
        expectError(yield* get("/v1/markets/ticker?exchange=binance&symbol=BAD/502"), 502, "bad_upstream_response")
        const down = yield* get("/v1/markets/orderbook?exchange=binance&symbol=DOWN/503")
        expectError(down, 503, "upstream_unavailable")
        expect(down.headers["retry-after"]).toBe("7")
        expectError(yield* get("/v1/markets/ohlcv?exchange=binance&symbol=SLOW/504"), 504, "upstream_timeout")
      })
    )

    it.effect("errors are not cached: the next request calls upstream again", () =>
      Effect.gen(function* () {
        const before = yield* callsOf("ticker")
        yield* get("/v1/markets/ticker?exchange=binance&symbol=BAD/502")
        yield* get("/v1/markets/ticker?exchange=binance&symbol=BAD/502")
        expect((yield* callsOf("ticker")) - before).toBe(2)
      })
    )

    it.effect("a defect is a 500 JSON error without internals", () =>
      Effect.gen(function* () {
        const res = yield* get("/v1/markets/ticker?exchange=binance&symbol=BOOM/DEFECT")
        expectError(res, 500, "internal_error")
        expect(res.text).not.toContain("secret")
        expect(res.text).not.toContain("at ")
      })
    )
  })

  describe("docs", () => {
    it.effect("OpenAPI 3 at /openapi.json matches the committed snapshot", () =>
      Effect.gen(function* () {
        const res = yield* get("/openapi.json")
        expect(res.status).toBe(200)
        const spec = res.json as { openapi: string; paths: Record<string, unknown> }
        expect(spec.openapi).toMatch(/^3\./)
        const fixture = new URL("../fixtures/openapi.json", import.meta.url)
        if (process.env.UPDATE_SNAPSHOTS === "1") writeFileSync(fixture, JSON.stringify(spec, null, 2) + "\n")
        assert.deepStrictEqual(spec, JSON.parse(readFileSync(fixture, "utf8")))
        expect(Object.keys(spec.paths).sort()).toEqual([
          "/market/history",
          "/market/ticker",
          "/v1/exchanges",
          "/v1/health",
          "/v1/history/ohlcv",
          "/v1/markets",
          "/v1/markets/ohlcv",
          "/v1/markets/orderbook",
          "/v1/markets/ticker",
          "/v1/markets/tickers",
          "/v1/markets/trades",
          "/v1/stream/ohlcv",
          "/v1/stream/orderbook",
          "/v1/stream/ticker",
          "/v1/stream/trades"
        ])
      })
    )

    it.effect("Swagger UI at /docs and ReDoc at /redoc are served locally", () =>
      Effect.gen(function* () {
        const swagger = yield* get("/docs")
        expect(swagger.status).toBe(200)
        expect(swagger.headers["content-type"]).toContain("text/html")
        expect(swagger.text).toContain('<script src="/docs/swagger-ui-bundle.js">')
        expect(swagger.text).not.toMatch(/<script[^>]+src="https?:/)
        const redoc = yield* get("/redoc")
        expect(redoc.status).toBe(200)
        expect(redoc.text).toContain('<script src="/redoc/redoc.standalone.js" nonce="')
        expect(redoc.text).toContain('<redoc spec-url="/openapi.json"></redoc>')
        const bundle = yield* get("/redoc/redoc.standalone.js")
        expect(bundle.status).toBe(200)
        expect(bundle.headers["content-type"]).toContain("javascript")
        expect(bundle.text.length).toBeGreaterThan(500_000)
      })
    )
  })
})
