import { Effect, Layer, Ref } from "effect"
import {
  NotSupported,
  RateLimited,
  SymbolNotFound,
  UnknownExchange,
  UnsupportedInterval,
  UpstreamBadResponse,
  UpstreamTimeout,
  UpstreamUnavailable,
  type UpstreamError
} from "../../src/Domain/Errors.js"
import {
  Candle,
  ExchangeInfo,
  MarketInfo,
  Ohlcv,
  OrderBook,
  BookLevel,
  Ticker,
  Trade,
  Trades
} from "../../src/Domain/Market.js"
import { Exchange, type ExchangeService, type ResolvedMarket, type Watcher } from "../../src/Exchange/Exchange.js"

export const T0 = 1_704_067_200_000 // 2024-01-01T00:00:00Z

/** Symbols whose upstream calls fail with the named error after resolving. */
export const FAILING: Record<string, () => Effect.Effect<never, UpstreamError>> = {
  "BAD/502": () =>
    Effect.fail(new UpstreamBadResponse({ message: "malformed ticker from binance", source: "binance" })),
  "DOWN/503": () =>
    Effect.fail(
      new UpstreamUnavailable({
        code: "upstream_unavailable",
        message: "binance is unavailable",
        source: "binance",
        retryAfter: 7
      })
    ),
  "SLOW/504": () => Effect.fail(new UpstreamTimeout({ message: "binance did not answer in 10 s", source: "binance" })),
  "NOPE/501": () =>
    Effect.fail(
      new NotSupported({ message: "binance does not support fetchTrades", exchange: "binance", method: "fetchTrades" })
    ),
  "HOT/429": () =>
    Effect.fail(
      new RateLimited({
        code: "upstream_rate_limited",
        message: "binance is rate limiting us",
        source: "binance",
        retryAfter: 3
      })
    ),
  "BOOM/DEFECT": () => Effect.die(new Error("secret stack detail"))
}

const LISTED: Record<string, ReadonlyArray<string>> = {
  binance: ["BTC/USDT", "ETH/USDT", "SOL/BTC", ...Object.keys(FAILING)],
  kraken: ["BTC/USD", "ETH/USD"]
}

export const tickerOf = (market: ResolvedMarket, last: number): Ticker =>
  new Ticker({
    exchange: market.exchange,
    symbol: market.symbol,
    bid: last - 0.5,
    ask: last + 0.5,
    last,
    timestamp: market.exchange === "kraken" ? null : T0,
    datetime: market.exchange === "kraken" ? null : new Date(T0).toISOString(),
    high: last + 100,
    low: last - 100,
    open: last - 10,
    close: last,
    baseVolume: 12.5,
    quoteVolume: 12.5 * last,
    change: 10,
    percentage: (10 / (last - 10)) * 100,
    vwap: last - 1,
    source: "exchange",
    raw: { lastPrice: String(last), exchangeOwnField: true }
  })

export interface MockExchange {
  readonly layer: Layer.Layer<Exchange>
  /** Upstream calls made, by method. */
  readonly calls: Ref.Ref<Record<string, number>>
}

const fail = (market: ResolvedMarket) => FAILING[market.symbol]?.() ?? Effect.void

/** A watcher that yields update n = 0, 1, 2, … one second apart (virtual time in TestClock tests). */
const pacedWatcher = <A>(count: Effect.Effect<void>, market: ResolvedMarket, update: (n: number) => A) =>
  Effect.map(Ref.make(0), (n): Watcher<A> => ({
    next: count.pipe(
      Effect.zipRight(fail(market)),
      Effect.zipRight(Effect.sleep("1 second")),
      Effect.zipRight(Ref.getAndUpdate(n, (i) => i + 1)),
      Effect.map(update)
    ),
    reset: Effect.void
  }))

export const makeMockExchange = Effect.gen(function* () {
  const calls = yield* Ref.make<Record<string, number>>({})
  const count = (method: string) => Ref.update(calls, (c) => ({ ...c, [method]: (c[method] ?? 0) + 1 }))
  const resolveExchange = (exchange: string) => {
    const id = exchange.toLowerCase() === "coinbasepro" ? "coinbaseexchange" : exchange.toLowerCase()
    return id in LISTED
      ? Effect.succeed(id)
      : Effect.fail(
          new UnknownExchange({
            message: `Unknown exchange "${exchange}". Did you mean "binance"? Enabled exchanges: binance, kraken`,
            exchange,
            suggestions: ["binance"],
            enabled: ["binance", "kraken"]
          })
        )
  }
  const service: ExchangeService = {
    enabled: ["binance", "kraken"],
    resolveExchange,
    resolve: (exchange, symbol) =>
      Effect.flatMap(resolveExchange(exchange), (id) => {
        const normalized = symbol.toUpperCase().replace(/[-_]/, "/")
        return (LISTED[id] ?? []).includes(normalized)
          ? Effect.succeed({ exchange: id, symbol: normalized })
          : Effect.fail(
              new SymbolNotFound({
                message: `${id} does not list ${symbol}`,
                exchange: id,
                symbol,
                suggestions: ["BTC/USDT"]
              })
            )
      }),
    describe: (exchange) =>
      Effect.map(
        resolveExchange(exchange),
        (id) =>
          new ExchangeInfo({
            id,
            name: id === "binance" ? "Binance" : "Kraken",
            capabilities: { ticker: true, tickers: true, ohlcv: true, orderbook: true, trades: true, websocket: true },
            intervals: ["1m", "5m", "1h", "1d"],
            maxCandlesPerRequest: id === "binance" ? 1000 : 720
          })
      ),
    markets: (exchange) =>
      Effect.map(resolveExchange(exchange), (id) =>
        (LISTED[id] ?? []).map((symbol) => {
          const [base = "", quote = ""] = symbol.split("/")
          return new MarketInfo({
            symbol,
            id: symbol.replace("/", ""),
            base,
            quote,
            type: "spot",
            active: true,
            precision: { price: 0.01, amount: 0.0001 }
          })
        })
      ),
    ticker: (market) =>
      count("ticker").pipe(
        Effect.zipRight(fail(market)),
        Effect.as(tickerOf(market, market.symbol.startsWith("ETH") ? 2500 : 42000))
      ),
    tickers: (exchange, symbols) =>
      Effect.forEach(symbols, (symbol) =>
        Effect.flatMap(service.resolve(exchange, symbol), (market) =>
          Effect.as(fail(market), tickerOf(market, market.symbol.startsWith("ETH") ? 2500 : 42000))
        )
      ).pipe(Effect.tap(() => count("tickers"))),
    ohlcv: (market, request) =>
      count("ohlcv").pipe(
        Effect.zipRight(fail(market)),
        Effect.zipRight(
          ["1m", "5m", "1h", "1d"].includes(request.interval)
            ? Effect.void
            : Effect.fail(
                new UnsupportedInterval({
                  message: `binance does not support interval ${request.interval}; supported: 1m, 5m, 1h, 1d`,
                  interval: request.interval,
                  supported: ["1m", "5m", "1h", "1d"]
                })
              )
        ),
        Effect.as(
          new Ohlcv({
            exchange: market.exchange,
            symbol: market.symbol,
            interval: request.interval,
            candles: Array.from({ length: request.limit }, (_, i) => {
              const t = (request.since._tag === "Some" ? request.since.value : T0) + i * 60_000
              return new Candle({
                timestamp: t,
                open: 100 + i,
                high: 101 + i,
                low: 99 + i,
                close: 100.5 + i,
                volume: i
              })
            })
          })
        )
      ),
    orderBook: (market, limit) =>
      count("orderBook").pipe(
        Effect.zipRight(fail(market)),
        Effect.as(
          new OrderBook({
            exchange: market.exchange,
            symbol: market.symbol,
            bids: Array.from({ length: limit }, (_, i) => new BookLevel({ price: 100 - i, amount: 1 + i })),
            asks: Array.from({ length: limit }, (_, i) => new BookLevel({ price: 101 + i, amount: 2 + i })),
            timestamp: T0
          })
        )
      ),
    trades: (market, limit) =>
      count("trades").pipe(
        Effect.zipRight(fail(market)),
        Effect.as(
          new Trades({
            exchange: market.exchange,
            symbol: market.symbol,
            trades: Array.from(
              { length: limit },
              (_, i) =>
                new Trade({
                  trade_id: String(1000 + i),
                  timestamp: T0 + i,
                  price: 100 + i,
                  amount: 0.5,
                  side: i % 2 === 0 ? "buy" : "sell"
                })
            )
          })
        )
      ),
    canWatch: (exchange) => Effect.map(resolveExchange(exchange), (id) => id === "binance"),
    watchTicker: (market) => pacedWatcher(count("watchTicker"), market, (n) => tickerOf(market, 42000 + n)),
    watchTrades: (market) =>
      pacedWatcher(
        count("watchTrades"),
        market,
        (n) =>
          new Trades({
            exchange: market.exchange,
            symbol: market.symbol,
            trades: [new Trade({ trade_id: String(n), timestamp: T0 + n, price: 100 + n, amount: 1, side: "buy" })]
          })
      ),
    watchOrderBook: (market, depth) =>
      pacedWatcher(
        count("watchOrderBook"),
        market,
        (n) =>
          new OrderBook({
            exchange: market.exchange,
            symbol: market.symbol,
            bids: Array.from({ length: depth }, (_, i) => new BookLevel({ price: 100 + n - i, amount: 1 })),
            asks: Array.from({ length: depth }, (_, i) => new BookLevel({ price: 101 + n + i, amount: 1 })),
            timestamp: T0 + n
          })
      ),
    watchOHLCV: (market, interval) =>
      pacedWatcher(
        count("watchOHLCV"),
        market,
        (n) =>
          new Ohlcv({
            exchange: market.exchange,
            symbol: market.symbol,
            interval,
            candles: [new Candle({ timestamp: T0, open: 100, high: 100 + n, low: 100, close: 100 + n, volume: n })]
          })
      ),
    status: Effect.succeed({
      binance: { status: "ready", marketsLoadedAt: T0, markets: 3, lastError: null },
      kraken: { status: "idle", marketsLoadedAt: null, markets: 0, lastError: null }
    })
  }
  return { layer: Layer.succeed(Exchange, service), calls } satisfies MockExchange
})
