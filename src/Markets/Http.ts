import { HttpApiBuilder, type HttpServerResponse } from "@effect/platform"
import { type Duration, Effect, Option, Schema } from "effect"
import { Api } from "../Api.js"
import { AppConfig } from "../AppConfig.js"
import { ResponseCache } from "../Cache/ResponseCache.js"
import type { ApiError } from "../Domain/Errors.js"
import { ExchangeList, MarketList, Ohlcv, OrderBook, Ticker, Tickers, Trades } from "../Domain/Market.js"
import { Exchange } from "../Exchange/Exchange.js"
import { cachedResponse, errorResponse } from "../Http/Responses.js"
import type { HistoryParams, MarketsParams, OhlcvParams } from "./Api.js"

type OhlcvQuery = typeof OhlcvParams.Type | typeof HistoryParams.Type

/** Market operations shared by the v1 routes and the compatibility routes. */
export const makeMarketRoutes = Effect.gen(function* () {
  const exchange = yield* Exchange
  const cache = yield* ResponseCache
  const config = yield* AppConfig

  const serve = <A, I>(
    schema: Schema.Schema<A, I>,
    key: string,
    ttl: Duration.Duration,
    fetch: Effect.Effect<A, ApiError>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
    const encode = Schema.encode(schema)
    return cache
      .getOrFetch(
        key,
        ttl,
        fetch.pipe(
          Effect.flatMap((value) => Effect.orDie(encode(value))),
          Effect.map((encoded) => JSON.stringify(encoded))
        )
      )
      .pipe(
        Effect.map((cached) => cachedResponse(cached, ttl)),
        Effect.catchAll((error) => Effect.succeed(errorResponse(error)))
      )
  }

  const withMarket = (
    exchangeId: string,
    symbol: string,
    f: (market: {
      readonly exchange: string
      readonly symbol: string
    }) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  ) =>
    exchange
      .resolve(exchangeId, symbol)
      .pipe(Effect.matchEffect({ onFailure: (error) => Effect.succeed(errorResponse(error)), onSuccess: f }))

  const ticker = (params: { readonly exchange: string; readonly symbol: string }) =>
    withMarket(params.exchange, params.symbol, (market) =>
      serve(Ticker, `v1:ticker:${market.exchange}:${market.symbol}`, config.tickerCacheTtl, exchange.ticker(market))
    )

  const ohlcv = (params: OhlcvQuery) =>
    withMarket(params.exchange, params.symbol, (market) => {
      const since = Option.fromNullable(params.since)
      const key = `v1:ohlcv:${market.exchange}:${market.symbol}:${params.interval}:${params.since ?? "latest"}:${params.limit}`
      return serve(
        Ohlcv,
        key,
        config.ohlcvCacheTtl,
        exchange.ohlcv(market, { interval: params.interval, since, limit: params.limit })
      )
    })

  const orderBook = (params: { readonly exchange: string; readonly symbol: string; readonly limit: number }) =>
    withMarket(params.exchange, params.symbol, (market) =>
      serve(
        OrderBook,
        `v1:orderbook:${market.exchange}:${market.symbol}:${params.limit}`,
        config.orderbookCacheTtl,
        exchange.orderBook(market, params.limit)
      )
    )

  const trades = (params: { readonly exchange: string; readonly symbol: string; readonly limit: number }) =>
    withMarket(params.exchange, params.symbol, (market) =>
      serve(
        Trades,
        `v1:trades:${market.exchange}:${market.symbol}:${params.limit}`,
        config.tradesCacheTtl,
        exchange.trades(market, params.limit)
      )
    )

  const tickers = (params: { readonly exchange: string; readonly symbols: string }) =>
    exchange.resolveExchange(params.exchange).pipe(
      Effect.matchEffect({
        onFailure: (error) => Effect.succeed(errorResponse(error)),
        onSuccess: (id) => {
          const symbols = params.symbols.split(",")
          return serve(
            Tickers,
            `v1:tickers:${id}:${symbols.map((s) => s.toUpperCase()).join(",")}`,
            config.tickerCacheTtl,
            exchange.tickers(id, symbols).pipe(Effect.map((list) => new Tickers({ exchange: id, tickers: list })))
          )
        }
      })
    )

  const markets = (params: typeof MarketsParams.Type) =>
    exchange.resolveExchange(params.exchange).pipe(
      Effect.matchEffect({
        onFailure: (error) => Effect.succeed(errorResponse(error)),
        onSuccess: (id) => {
          const q = params.q?.toUpperCase()
          const base = params.base?.toUpperCase()
          const quote = params.quote?.toUpperCase()
          const key = `v1:markets:${id}:${q ?? ""}:${base ?? ""}:${quote ?? ""}:${params.offset}:${params.limit}`
          return serve(
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
        }
      })
    )

  const exchanges = serve(
    ExchangeList,
    `v1:exchanges:${exchange.enabled.join(",")}`,
    config.marketsCacheTtl,
    Effect.forEach(exchange.enabled, (id) => exchange.describe(id)).pipe(
      Effect.map((list) => new ExchangeList({ exchanges: list }))
    )
  )

  return { ticker, tickers, ohlcv, orderBook, trades, markets, exchanges } as const
})

export const MarketsLive = HttpApiBuilder.group(Api, "markets", (handlers) =>
  Effect.gen(function* () {
    const routes = yield* makeMarketRoutes
    return handlers
      .handle("ticker", ({ urlParams }) => routes.ticker(urlParams))
      .handle("tickers", ({ urlParams }) => routes.tickers(urlParams))
      .handle("ohlcv", ({ urlParams }) => routes.ohlcv(urlParams))
      .handle("orderbook", ({ urlParams }) => routes.orderBook(urlParams))
      .handle("trades", ({ urlParams }) => routes.trades(urlParams))
      .handle("markets", ({ urlParams }) => routes.markets(urlParams))
      .handle("exchanges", () => routes.exchanges)
  })
)

export const CompatLive = HttpApiBuilder.group(Api, "compat", (handlers) =>
  Effect.gen(function* () {
    const routes = yield* makeMarketRoutes
    return handlers
      .handle("ticker", ({ urlParams }) => routes.ticker(urlParams))
      .handle("history", ({ urlParams }) => routes.ohlcv(urlParams))
  })
)
