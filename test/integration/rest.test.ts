import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { EmulatedExchange } from "../../src/emulator/index.js"
import { get } from "../support/apiServer.js"
import { EmulatorTestServer, TestEmulator } from "../support/emulatorServer.js"

const VENUES: ReadonlyArray<readonly [EmulatedExchange, string, string]> = [
  ["binance", "BTC/USDT", "ETH/USDT"],
  ["kraken", "BTC/USD", "ETH/USD"],
  ["coinbaseexchange", "BTC/USD", "ETH/USD"]
]
const SINCE = Date.UTC(2023, 11, 31, 0, 0)
const q = (s: string) => encodeURIComponent(s)

type Body = Record<string, unknown>
const candleOf = (c: {
  timestamp: number
  open: number
  high: number
  low: number
  close: number
  volume: number
}) => ({
  timestamp: c.timestamp,
  open: c.open,
  high: c.high,
  low: c.low,
  close: c.close,
  volume: c.volume
})

layer(EmulatorTestServer(), { excludeTestServices: true, timeout: 60_000 })(
  "REST API through real ccxt against the exchange emulator",
  (it) => {
    for (const [exchange, symbol, second] of VENUES) {
      describe(exchange, () => {
        it.effect("ticker equals the emulator's book and 24 h statistics", () =>
          Effect.gen(function* () {
            const emulator = yield* TestEmulator
            const res = yield* get(`/v1/markets/ticker?exchange=${exchange}&symbol=${q(symbol)}`)
            expect(res.status).toBe(200)
            const body = res.json as Body
            const model = emulator.model.ticker24h(exchange, symbol)
            expect(body.exchange).toBe(exchange)
            expect(body.symbol).toBe(symbol)
            expect(body.source).toBe("exchange")
            expect([body.last, body.bid, body.ask]).toEqual([model.last, model.bid, model.ask])
            expect(body.baseVolume).toBe(model.baseVolume)
            expect(typeof body.raw).toBe("object")
            if (exchange === "coinbaseexchange") {
              // the product ticker carries no 24 h range: legitimately null, not an error
              expect([body.high, body.low, body.open, body.vwap]).toEqual([null, null, null, null])
              expect(body.timestamp).toBe(emulator.model.recentTrades(exchange, symbol, 1)[0]?.timestamp)
            } else {
              expect([body.high, body.low]).toEqual([model.high, model.low])
              expect(body.vwap as number).toBeCloseTo(model.vwap, 4)
            }
            if (exchange === "kraken") expect([body.timestamp, body.datetime]).toEqual([null, null])
            if (exchange === "binance") {
              expect(body.timestamp).toBe(model.timestamp)
              expect([body.open, body.change]).toEqual([model.open, model.change])
            }
          })
        )

        it.effect("OHLCV from `since` equals the emulator's candles", () =>
          Effect.gen(function* () {
            const emulator = yield* TestEmulator
            const res = yield* get(
              `/v1/markets/ohlcv?exchange=${exchange}&symbol=${q(symbol)}&interval=1m&since=${SINCE}&limit=5`
            )
            expect(res.status).toBe(200)
            expect(res.json).toEqual({
              exchange,
              symbol,
              interval: "1m",
              candles: emulator.model.candles(exchange, symbol, "1m", SINCE, 5).map(candleOf)
            })
          })
        )

        it.effect("order book levels equal the emulator's book, bids descending and asks ascending", () =>
          Effect.gen(function* () {
            const emulator = yield* TestEmulator
            const res = yield* get(`/v1/markets/orderbook?exchange=${exchange}&symbol=${q(symbol)}&limit=10`)
            expect(res.status).toBe(200)
            const book = emulator.model.orderBook(exchange, symbol, undefined, 10)
            const levels = (side: ReadonlyArray<readonly [number, number]>) =>
              side.map(([price, amount]) => ({ price, amount }))
            const body = res.json as { bids: unknown[]; asks: unknown[] }
            expect(body.bids).toEqual(levels(book.bids))
            expect(body.asks).toEqual(levels(book.asks))
            expect(body.bids).toHaveLength(10)
          })
        )

        it.effect("trades equal the emulator's latest trades: ids, prices, amounts and taker sides", () =>
          Effect.gen(function* () {
            const emulator = yield* TestEmulator
            const res = yield* get(`/v1/markets/trades?exchange=${exchange}&symbol=${q(symbol)}&limit=25`)
            expect(res.status).toBe(200)
            const expected = emulator.model.recentTrades(exchange, symbol, 25).map((t) => ({
              trade_id: String(t.id),
              timestamp: t.timestamp,
              price: t.price,
              amount: t.amount,
              side: t.side
            }))
            expect((res.json as { trades: unknown }).trades).toEqual(expected)
          })
        )

        it.effect("tickers of two symbols, in the requested order", () =>
          Effect.gen(function* () {
            const emulator = yield* TestEmulator
            const res = yield* get(`/v1/markets/tickers?exchange=${exchange}&symbols=${q(`${second},${symbol}`)}`)
            expect(res.status).toBe(200)
            const tickers = (res.json as { tickers: ReadonlyArray<{ symbol: string; last: number }> }).tickers
            expect(tickers.map((t) => [t.symbol, t.last])).toEqual([
              [second, emulator.model.price(exchange, second)],
              [symbol, emulator.model.price(exchange, symbol)]
            ])
          })
        )

        it.effect("markets lists the emulator's symbols with their precision", () =>
          Effect.gen(function* () {
            const emulator = yield* TestEmulator
            const res = yield* get(`/v1/markets?exchange=${exchange}`)
            expect(res.status).toBe(200)
            const body = res.json as { total: number; markets: ReadonlyArray<{ symbol: string; precision: Body }> }
            const expected = emulator.model
              .markets(exchange)
              .map((m) => m.symbol)
              .sort()
            expect(body.markets.map((m) => m.symbol)).toEqual(expected)
            expect(body.total).toBe(expected.length)
            const spec = emulator.model.market(exchange, symbol)
            const btc = body.markets.find((m) => m.symbol === symbol)
            expect(btc?.precision).toEqual({
              price: Number(`1e-${spec.priceDecimals}`),
              amount: Number(`1e-${spec.amountDecimals}`)
            })
          })
        )

        it.effect("an unlisted symbol is 404 with suggestions; an unsupported interval is 400", () =>
          Effect.gen(function* () {
            const missing = yield* get(`/v1/markets/ticker?exchange=${exchange}&symbol=DOGE/BTC`)
            expect(missing.status).toBe(404)
            expect((missing.json as { code: string }).code).toBe("symbol_not_found")
            const interval = yield* get(`/v1/markets/ohlcv?exchange=${exchange}&symbol=${q(symbol)}&interval=7m`)
            expect(interval.status).toBe(400)
            expect((interval.json as { code: string; supported: string[] }).supported).toContain("1h")
          })
        )
      })
    }

    describe("OHLCV paging above the per-request maximum", () => {
      const cases: ReadonlyArray<readonly [EmulatedExchange, string, number, string, number]> = [
        ["binance", "BTC/USDT", 2000, "/api/v3/klines", 2],
        ["kraken", "BTC/USD", 1500, "/0/public/OHLC", 3],
        ["coinbaseexchange", "BTC/USD", 1000, "/products/BTC-USD/candles", 4]
      ]
      for (const [exchange, symbol, limit, endpoint, pages] of cases) {
        it.effect(`${exchange}: ${limit} candles in ${pages} pages, no gaps, no duplicates`, () =>
          Effect.gen(function* () {
            const emulator = yield* TestEmulator
            const since = Date.UTC(2023, 11, 20, 0, 0)
            const before = emulator.requestCount(exchange, endpoint)
            const res = yield* get(
              `/v1/markets/ohlcv?exchange=${exchange}&symbol=${q(symbol)}&interval=1m&since=${since}&limit=${limit}`
            )
            expect(res.status).toBe(200)
            const candles = (res.json as { candles: ReadonlyArray<{ timestamp: number }> }).candles
            const expected = emulator.model.candles(exchange, symbol, "1m", since, limit).map(candleOf)
            if (exchange === "coinbaseexchange") {
              // coinbase omits minutes without trades: the server must not invent them either
              const traded = emulator.model
                .candles(exchange, symbol, "1m", since, limit + 100)
                .filter((c) => c.trades > 0)
                .slice(0, limit)
                .map(candleOf)
              expect(candles).toEqual(traded)
            } else {
              expect(candles).toEqual(expected)
              expect(candles.every((c, i) => c.timestamp === since + i * 60_000)).toBe(true)
            }
            expect(new Set(candles.map((c) => c.timestamp)).size).toBe(candles.length)
            expect(emulator.requestCount(exchange, endpoint) - before).toBe(pages)
          })
        )
      }
    })

    describe("caching and coalescing", () => {
      it.effect("20 concurrent cold requests make one upstream call; a repeat is a HIT with no call", () =>
        Effect.gen(function* () {
          const emulator = yield* TestEmulator
          const url = `/v1/markets/ticker?exchange=binance&symbol=SOL/USDT`
          const before = emulator.requestCount("binance", "/api/v3/ticker/24hr")
          const responses = yield* Effect.all(
            Array.from({ length: 20 }, () => get(url)),
            { concurrency: "unbounded" }
          )
          expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 20 }, () => 200))
          expect(new Set(responses.map((r) => r.text)).size).toBe(1)
          expect(emulator.requestCount("binance", "/api/v3/ticker/24hr") - before).toBe(1)
          const again = yield* get(url)
          expect(again.headers["x-cache"]).toBe("HIT")
          expect(emulator.requestCount("binance", "/api/v3/ticker/24hr") - before).toBe(1)
        })
      )

      it.effect("the compatibility routes serve the same bodies", () =>
        Effect.gen(function* () {
          const v1 = yield* get(`/v1/markets/ticker?exchange=kraken&symbol=ETH/USD`)
          const compat = yield* get(`/market/ticker?exchange=kraken&symbol=ETH/USD`)
          expect(compat.text).toBe(v1.text)
          const history = yield* get(`/market/history?exchange=kraken&symbol=ETH/USD&since=${SINCE}&limit=3`)
          const ohlcv = yield* get(`/v1/markets/ohlcv?exchange=kraken&symbol=ETH/USD&since=${SINCE}&limit=3`)
          expect(history.status).toBe(200)
          expect(history.text).toBe(ohlcv.text)
        })
      )

      it.effect("exchanges lists the three emulated venues with their limits", () =>
        Effect.gen(function* () {
          const res = yield* get("/v1/exchanges")
          const list = (res.json as { exchanges: ReadonlyArray<{ id: string; maxCandlesPerRequest: number }> })
            .exchanges
          expect(list.map((e) => [e.id, e.maxCandlesPerRequest])).toEqual([
            ["binance", 1000],
            ["kraken", 720],
            ["coinbaseexchange", 300]
          ])
          const health = yield* get("/v1/health")
          const exchanges = (health.json as { dependencies: { exchanges: Record<string, { status: string }> } })
            .dependencies.exchanges
          expect(exchanges.binance?.status).toBe("ready")
        })
      )
    })
  }
)
