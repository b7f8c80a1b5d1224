import { type Duration, Effect, Option, Schema } from "effect"
import { AppConfig } from "../AppConfig.js"
import { type CachedResponse, ResponseCache } from "../Cache/ResponseCache.js"
import type { ApiError } from "../Domain/Errors.js"
import { ExchangeList, MarketList, Ohlcv, OrderBook, Ticker, Tickers, Trades } from "../Domain/Market.js"
import { Exchange } from "../Exchange/Exchange.js"

/** A market answer as the cache holds it: the encoded body, its freshness, and the value decoded on demand. */
export interface Cached<A> {
  readonly response: CachedResponse
  readonly ttl: Duration.Duration
  /** The body decoded back into its domain type, so a hit yields exactly what a miss does. */
  readonly value: Effect.Effect<A>
}

export interface MarketParams {
  readonly exchange: string
  readonly symbol: string
}

export interface OhlcvQueryParams extends MarketParams {
  readonly interval: string
  readonly since?: number | undefined
  readonly limit: number
}

export interface DepthParams extends MarketParams {
  readonly limit: number
}

export interface MarketsQueryParams {
  readonly exchange: string
  readonly q?: string | undefined
  readonly base?: string | undefined
  readonly quote?: string | undefined
  readonly offset: number
  readonly limit: number
}

/**
 * Market data through the response cache, keyed so that every interface asking the same question (REST, MCP)
 * shares one cache entry and one upstream call.
 */
export const makeMarketQueries = Effect.gen(function* () {
  const exchange = yield* Exchange
  const cache = yield* ResponseCache
  const config = yield* AppConfig

  const cached = <A, I>(
    schema: Schema.Schema<A, I>,
    key: string,
    ttl: Duration.Duration,
    fetch: Effect.Effect<A, ApiError>
  ): Effect.Effect<Cached<A>, ApiError> => {
    const encode = Schema.encode(schema)
    const decode = Schema.decode(Schema.parseJson(schema))
    return cache
      .getOrFetch(
        key,
        ttl,
        fetch.pipe(
          Effect.flatMap((value) => Effect.orDie(encode(value))),
          Effect.map((encoded) => JSON.stringify(encoded))
        )
      )
      .pipe(Effect.map((response) => ({ response, ttl, value: Effect.orDie(decode(response.body)) })))
  }

  const ticker = (params: MarketParams) =>
    Effect.flatMap(exchange.resolve(params.exchange, params.symbol), (market) =>
      cached(Ticker, `v1:ticker:${market.exchange}:${market.symbol}`, config.tickerCacheTtl, exchange.ticker(market))
    )

  const ohlcv = (params: OhlcvQueryParams) =>
    Effect.flatMap(exchange.resolve(params.exchange, params.symbol), (market) => {
      const since = Option.fromNullable(params.since)
      const key = `v1:ohlcv:${market.exchange}:${market.symbol}:${params.interval}:${params.since ?? "latest"}:${params.limit}`
      return cached(
        Ohlcv,
        key,
        config.ohlcvCacheTtl,
        exchange.ohlcv(market, { interval: params.interval, since, limit: params.limit })
      )
    })

  const orderBook = (params: DepthParams) =>
    Effect.flatMap(exchange.resolve(params.exchange, params.symbol), (market) =>
      cached(
        OrderBook,
        `v1:orderbook:${market.exchange}:${market.symbol}:${params.limit}`,
        config.orderbookCacheTtl,
        exchange.orderBook(market, params.limit)
      )
    )

  const trades = (params: DepthParams) =>
    Effect.flatMap(exchange.resolve(params.exchange, params.symbol), (market) =>
      cached(
        Trades,
        `v1:trades:${market.exchange}:${market.symbol}:${params.limit}`,
        config.tradesCacheTtl,
        exchange.trades(market, params.limit)
      )
    )

  const tickers = (params: { readonly exchange: string; readonly symbols: ReadonlyArray<string> }) =>
    Effect.flatMap(exchange.resolveExchange(params.exchange), (id) =>
      cached(
        Tickers,
        `v1:tickers:${id}:${params.symbols.map((s) => s.toUpperCase()).join(",")}`,
        config.tickerCacheTtl,
        exchange.tickers(id, params.symbols).pipe(Effect.map((list) => new Tickers({ exchange: id, tickers: list })))
      )
    )

  const markets = (params: MarketsQueryParams) =>
    Effect.flatMap(exchange.resolveExchange(params.exchange), (id) => {
      const q = params.q?.toUpperCase()
      const base = params.base?.toUpperCase()
      const quote = params.quote?.toUpperCase()
      const key = `v1:markets:${id}:${q ?? ""}:${base ?? ""}:${quote ?? ""}:${params.offset}:${params.limit}`
      return cached(
        MarketList,
        key,
        config.marketsCacheTtl,
        exchange.markets(id).pipe(
          Effect.map((all) => {
            const matching = all.filter(
              (m) =>
                (q === undefined || m.symbol.toUpperCase().includes(q)) &&
                (base === undefined || m.base.toUpperCase() === base) &&
                (quote === undefined || m.quote.toUpperCase() === quote)
            )
            return new MarketList({
              exchange: id,
              total: matching.length,
              offset: params.offset,
              limit: params.limit,
              markets: matching.slice(params.offset, params.offset + params.limit)
            })
          })
        )
      )
    })

  const exchanges = cached(
    ExchangeList,
    `v1:exchanges:${exchange.enabled.join(",")}`,
    config.marketsCacheTtl,
    Effect.forEach(exchange.enabled, (id) => exchange.describe(id)).pipe(
      Effect.map((list) => new ExchangeList({ exchanges: list }))
    )
  )

  return { ticker, tickers, ohlcv, orderBook, trades, markets, exchanges } as const
})

export type MarketQueries = Effect.Effect.Success<typeof makeMarketQueries>
