import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, HashMap, Layer, Logger, Option } from "effect"
import { afterAll, afterEach, beforeAll } from "vitest"
import { AppConfig } from "../../src/AppConfig.js"
import { Exchange } from "../../src/Exchange/Exchange.js"
import { makeExchangeLive } from "../../src/Exchange/Live.js"
import { BTC_TICKER, closedPort, type FakeBinance, startFakeBinance, TICKER_NOW } from "./fakeBinance.js"

let fake: FakeBinance
const logs: Array<{ readonly message: string; readonly annotations: Record<string, unknown> }> = []
const captureLogs = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ message, annotations }) => {
    logs.push({ message: String(message), annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
  })
)

beforeAll(async () => {
  fake = await startFakeBinance()
})
afterEach(() => {
  fake.reset()
  logs.length = 0
})
afterAll(() => fake.close())

const liveLayer = (env: Record<string, string> = {}) =>
  makeExchangeLive().pipe(
    Layer.provide(AppConfig.fromRecord({ ENABLED_EXCHANGES: "binance", EXCHANGE_API_BASE_BINANCE: fake.base, ...env }))
  )

/** Runs `f` against a fresh ExchangeLive pointed at the fake binance. */
const withExchange = <A, E>(f: (exchange: Exchange["Type"]) => Effect.Effect<A, E>, env: Record<string, string> = {}) =>
  Effect.flatMap(Exchange, f).pipe(Effect.provide(liveLayer(env)), Effect.provide(captureLogs))

const failureOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.exit(effect), (exit) =>
    Exit.isFailure(exit) && exit.cause._tag === "Fail"
      ? Effect.succeed(exit.cause.error)
      : Effect.dieMessage(`expected a failure, got ${String(exit)}`)
  )

const BTC = { exchange: "binance", symbol: "BTC/USDT" }

describe("ExchangeLive against a loopback binance", () => {
  it.live("decodes a ticker with exact values, through the prefixed base URL", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        const market = yield* ex.resolve("Binance", "btc-usdt")
        assert.deepStrictEqual(market, BTC)
        const t = yield* ex.ticker(market)
        assert.strictEqual(t.exchange, "binance")
        assert.strictEqual(t.symbol, "BTC/USDT")
        assert.strictEqual(t.source, "exchange")
        assert.strictEqual(t.last, 67225)
        assert.strictEqual(t.bid, 67224.99)
        assert.strictEqual(t.ask, 67225)
        assert.strictEqual(t.high, 67850)
        assert.strictEqual(t.low, 66350.01)
        assert.strictEqual(t.open, 67320)
        assert.strictEqual(t.close, 67225)
        assert.strictEqual(t.change, -95)
        assert.strictEqual(t.percentage, -0.141)
        assert.strictEqual(t.vwap, 67105.631192)
        assert.strictEqual(t.baseVolume, 21532.30108)
        assert.strictEqual(t.quoteVolume, 1444954282.2041309)
        assert.strictEqual(t.timestamp, TICKER_NOW)
        assert.strictEqual(t.datetime, "2024-06-10T06:13:20.000Z")
        assert.deepStrictEqual(t.raw, BTC_TICKER)
        assert.strictEqual(fake.count("/api/v3/ticker/24hr"), 1)
        // spot only: no derivatives endpoints were asked for
        assert.strictEqual(fake.count("/fapi/v1/exchangeInfo") + fake.count("/dapi/v1/exchangeInfo"), 0)
      })
    )
  )

  it.live("loads markets once for 20 concurrent resolve calls", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        const before = yield* ex.status
        assert.deepStrictEqual(before, {
          binance: { status: "idle", marketsLoadedAt: null, markets: 0, lastError: null }
        })
        const results = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? "BTC/USDT" : "eth_usdt")),
          (s) => ex.resolve("binance", s),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.length, 20)
        assert.deepStrictEqual(results[1], { exchange: "binance", symbol: "ETH/USDT" })
        assert.strictEqual(fake.count("/api/v3/exchangeInfo"), 1)
        const after = (yield* ex.status)["binance"]
        assert.strictEqual(after?.status, "ready")
        assert.strictEqual(after?.markets, 2)
        assert.isNumber(after?.marketsLoadedAt)
        const markets = yield* ex.markets("binance")
        assert.deepStrictEqual(
          markets.map((m) => [
            m.symbol,
            m.id,
            m.base,
            m.quote,
            m.type,
            m.active,
            m.precision.price,
            m.precision.amount
          ]),
          [
            ["BTC/USDT", "BTCUSDT", "BTC", "USDT", "spot", true, 0.01, 0.00001],
            ["ETH/USDT", "ETHUSDT", "ETH", "USDT", "spot", true, 0.01, 0.00001]
          ]
        )
      })
    )
  )

  it.live("rejects an unlisted symbol with suggestions and no upstream ticker call", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        const error = yield* failureOf(ex.resolve("binance", "btc/usdc"))
        assert.strictEqual(error._tag, "SymbolNotFound")
        if (error._tag !== "SymbolNotFound") return
        assert.strictEqual(error.symbol, "BTC/USDC")
        assert.deepStrictEqual(error.suggestions, ["BTC/USDT"])
        assert.strictEqual(error.message, 'Symbol "BTC/USDC" is not listed on binance. Did you mean "BTC/USDT"?')
        assert.strictEqual(fake.count("/api/v3/ticker/24hr"), 0)
      })
    )
  )

  it.live("rejects an unsupported interval listing binance's", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        const error = yield* failureOf(ex.ohlcv(BTC, { interval: "7m", since: Option.none(), limit: 10 }))
        assert.strictEqual(error._tag, "UnsupportedInterval")
        if (error._tag !== "UnsupportedInterval") return
        assert.deepStrictEqual(error.supported, [
          "1s",
          "1m",
          "3m",
          "5m",
          "15m",
          "30m",
          "1h",
          "2h",
          "4h",
          "6h",
          "8h",
          "12h",
          "1d",
          "3d",
          "1w",
          "1M"
        ])
        assert.strictEqual(fake.count("/api/v3/klines"), 0)
      })
    )
  )

  it.live("pages candles above binance's 1000 per request", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        const latest = yield* ex.ohlcv(BTC, { interval: "1m", since: Option.none(), limit: 5 })
        assert.strictEqual(latest.candles.length, 5)
        assert.strictEqual(fake.count("/api/v3/klines"), 1)
        const since = Math.floor(Date.now() / 60_000) * 60_000 - 2_000 * 60_000
        const paged = yield* ex.ohlcv(BTC, { interval: "1m", since: Option.some(since), limit: 1500 })
        const ts = paged.candles.map((c) => c.timestamp)
        assert.strictEqual(ts.length, 1500)
        assert.strictEqual(ts[0], since)
        assert.isTrue(ts.every((t, i) => i === 0 || t - (ts[i - 1] ?? 0) === 60_000))
        assert.strictEqual(fake.count("/api/v3/klines"), 3)
      })
    )
  )

  it.live("returns a sorted, truncated book and sorted trades", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        const book = yield* ex.orderBook(BTC, 2)
        assert.deepStrictEqual(
          book.bids.map((l) => [l.price, l.amount]),
          [
            [67224.99, 1.75326],
            [67220, 0.5]
          ]
        )
        assert.deepStrictEqual(
          book.asks.map((l) => [l.price, l.amount]),
          [
            [67225, 3.69101],
            [67230, 1]
          ]
        )
        const trades = yield* ex.trades(BTC, 10)
        assert.deepStrictEqual(
          trades.trades.map((t) => [t.trade_id, t.timestamp, t.price, t.amount, t.side]),
          [
            ["3108000002", TICKER_NOW - 1000, 67225, 0.02, "buy"],
            ["3108000003", TICKER_NOW - 500, 67226, 0.01, "sell"]
          ]
        )
      })
    )
  )

  it.live("answers tickers in the requested order with one upstream call", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        const list = yield* ex.tickers("binance", ["ETH/USDT", "BTC-USDT"])
        assert.deepStrictEqual(
          list.map((t) => [t.symbol, t.last]),
          [
            ["ETH/USDT", 3500.5],
            ["BTC/USDT", 67225]
          ]
        )
        assert.strictEqual(fake.count("/api/v3/ticker/24hr"), 1)
        const error = yield* failureOf(ex.tickers("binance", ["BTC/USDT", "NOPE/USDT"]))
        assert.strictEqual(error._tag, "SymbolNotFound")
        assert.strictEqual(fake.count("/api/v3/ticker/24hr"), 1)
      })
    )
  )

  it.live("maps 429 with Retry-After to a 429 upstream_rate_limited with that wait", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        fake.override("/api/v3/ticker/24hr", (_req, res) => {
          res.writeHead(429, { "Content-Type": "application/json", "Retry-After": "7" })
          res.end(JSON.stringify({ code: -1003, msg: "Too much request weight used; please use WebSocket Streams" }))
        })
        const error = yield* failureOf(ex.ticker(BTC))
        assert.strictEqual(error._tag, "RateLimited")
        if (error._tag !== "RateLimited") return
        assert.strictEqual(error.code, "upstream_rate_limited")
        assert.strictEqual(error.retryAfter, 7)
        assert.strictEqual(error.source, "binance")
        assert.strictEqual(error.message, "binance is rate limiting this server (HTTP 429); retry in 7 s")
        // the upstream's own error is kept for operators in a log annotation, never in the API message
        assert.strictEqual(logs.length, 1)
        assert.deepInclude(logs[0]?.annotations, { exchange: "binance", method: "fetchTicker", symbol: "BTC/USDT" })
        assert.match(String(logs[0]?.annotations["upstreamError"]), /^DDoSProtection: binance 429 Too Many Requests/)
      })
    )
  )

  it.live("maps 418 to a 503 upstream_banned waiting out the ban", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        const until = Date.now() + 90_000
        fake.override("/api/v3/ticker/24hr", (_req, res) => {
          res.writeHead(418, { "Content-Type": "application/json" })
          res.end(JSON.stringify({ code: -1003, msg: `Way too much request weight used; IP banned until ${until}.` }))
        })
        const error = yield* failureOf(ex.ticker(BTC))
        assert.strictEqual(error._tag, "UpstreamUnavailable")
        if (error._tag !== "UpstreamUnavailable") return
        assert.strictEqual(error.code, "upstream_banned")
        assert.isAtLeast(error.retryAfter, 89)
        assert.isAtMost(error.retryAfter, 90)
        assert.match(error.message, /temporarily banned/)
      })
    )
  )

  it.live("maps a 502 HTML page to upstream_unavailable", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        fake.override("/api/v3/ticker/24hr", (_req, res) => {
          res.writeHead(502, { "Content-Type": "text/html" })
          res.end("<html><body><h1>502 Bad Gateway</h1></body></html>")
        })
        const error = yield* failureOf(ex.ticker(BTC))
        assert.deepStrictEqual(
          error._tag === "UpstreamUnavailable" ? [error.code, error.retryAfter, error.message] : error._tag,
          ["upstream_unavailable", 5, "binance is unavailable (HTTP 502); retry in 5 s"]
        )
      })
    )
  )

  it.live("maps a truncated JSON 200 to UpstreamBadResponse", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        fake.override("/api/v3/ticker/24hr", (_req, res) => {
          res.writeHead(200, { "Content-Type": "application/json" })
          res.end('{"symbol":"BTCUSDT","lastPrice":"672')
        })
        const error = yield* failureOf(ex.ticker(BTC))
        assert.strictEqual(error._tag, "UpstreamBadResponse")
        assert.strictEqual(error.message.includes("binance"), true)
      })
    )
  )

  it.live("maps a slow answer to UpstreamTimeout", () =>
    withExchange(
      (ex) =>
        Effect.gen(function* () {
          yield* ex.resolve("binance", "BTC/USDT")
          fake.override("/api/v3/ticker/24hr", (_req, res) => {
            setTimeout(() => {
              if (!res.destroyed) res.end("{}")
            }, 1_500).unref()
          })
          const error = yield* failureOf(ex.ticker(BTC))
          assert.strictEqual(error._tag, "UpstreamTimeout")
          assert.strictEqual(error.message, "binance did not answer fetchTicker within 0.3 s")
        }),
      { EXCHANGE_TIMEOUT: "0.3" }
    )
  )

  it.live("maps a refused connection to upstream_unavailable and records it in status", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(() => closedPort())
      yield* withExchange(
        (ex) =>
          Effect.gen(function* () {
            const error = yield* failureOf(ex.resolve("binance", "BTC/USDT"))
            assert.strictEqual(error._tag, "UpstreamUnavailable")
            if (error._tag !== "UpstreamUnavailable") return
            assert.strictEqual(error.code, "upstream_unavailable")
            assert.strictEqual(error.message, "binance could not be reached; retry in 5 s")
            const status = (yield* ex.status)["binance"]
            assert.deepStrictEqual(status, {
              status: "error",
              marketsLoadedAt: null,
              markets: 0,
              lastError: "binance could not be reached; retry in 5 s"
            })
          }),
        { EXCHANGE_API_BASE_BINANCE: `http://127.0.0.1:${port}` }
      )
    })
  )

  it.live("describes binance from the ccxt instance without loading markets", () =>
    withExchange((ex) =>
      Effect.gen(function* () {
        const info = yield* ex.describe("binance")
        assert.strictEqual(info.id, "binance")
        assert.strictEqual(info.name, "Binance")
        assert.deepStrictEqual(info.capabilities, {
          ticker: true,
          tickers: true,
          ohlcv: true,
          orderbook: true,
          trades: true,
          websocket: true
        })
        assert.strictEqual(info.maxCandlesPerRequest, 1000)
        assert.strictEqual(info.intervals.length, 16)
        assert.strictEqual(fake.count("/api/v3/exchangeInfo"), 0)
      })
    )
  )
})
