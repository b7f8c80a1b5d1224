import { HttpApiBuilder, type HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { Api } from "../Api.js"
import type { ApiError } from "../Domain/Errors.js"
import { cachedResponse, errorResponse } from "../Http/Responses.js"
import type { HistoryParams, MarketsParams, OhlcvParams } from "./Api.js"
import { type Cached, MarketQueries } from "./Queries.js"

type OhlcvQuery = typeof OhlcvParams.Type | typeof HistoryParams.Type

const respond = <A>(query: Effect.Effect<Cached<A>, ApiError>): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  query.pipe(
    Effect.map((cached) => cachedResponse(cached.response, cached.ttl)),
    Effect.catchAll((error) => Effect.succeed(errorResponse(error)))
  )

/** Market operations shared by the v1 routes and the compatibility routes. */
export const makeMarketRoutes = Effect.gen(function* () {
  const queries = yield* MarketQueries
  return {
    ticker: (params: { readonly exchange: string; readonly symbol: string }) => respond(queries.ticker(params)),
    tickers: (params: { readonly exchange: string; readonly symbols: string }) =>
      respond(queries.tickers({ exchange: params.exchange, symbols: params.symbols.split(",") })),
    ohlcv: (params: OhlcvQuery) => respond(queries.ohlcv(params)),
    orderBook: (params: { readonly exchange: string; readonly symbol: string; readonly limit: number }) =>
      respond(queries.orderBook(params)),
    trades: (params: { readonly exchange: string; readonly symbol: string; readonly limit: number }) =>
      respond(queries.trades(params)),
    markets: (params: typeof MarketsParams.Type) => respond(queries.markets(params)),
    exchanges: respond(queries.exchanges)
  } as const
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
