import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import {
  InvalidParameter,
  NotSupported,
  RateLimited,
  SymbolNotFound,
  Unauthorized,
  UnknownExchange,
  UnsupportedInterval,
  UpstreamBadResponse,
  UpstreamTimeout,
  UpstreamUnavailable
} from "../Domain/Errors.js"
import { ExchangeList, MarketList, Ohlcv, OrderBook, Ticker, Tickers, Trades } from "../Domain/Market.js"
import {
  ConvertParam,
  ExchangeParam,
  FilterParam,
  IntervalParam,
  optionalIntParam,
  SymbolParam,
  SymbolsParam,
  timestampParam
} from "../Domain/Params.js"

export const TickerParams = Schema.Struct({
  exchange: ExchangeParam,
  symbol: SymbolParam,
  convert: Schema.optional(ConvertParam)
})

const ohlcvParams = (defaultLimit: number) =>
  Schema.Struct({
    exchange: ExchangeParam,
    symbol: SymbolParam,
    interval: Schema.optionalWith(IntervalParam, { default: () => "1m" }),
    since: Schema.optional(timestampParam()),
    limit: optionalIntParam("limit", 1, 2000, defaultLimit, `Number of candles (default ${defaultLimit}, max 2000)`)
  })

export const OhlcvParams = ohlcvParams(500)

/** The earlier API's candles: the same parameters with a smaller default limit. */
export const HistoryParams = ohlcvParams(100)

export const OrderBookParams = Schema.Struct({
  exchange: ExchangeParam,
  symbol: SymbolParam,
  limit: optionalIntParam("limit", 1, 1000, 50, "Levels per side (default 50, max 1000)")
})

export const TradesParams = Schema.Struct({
  exchange: ExchangeParam,
  symbol: SymbolParam,
  limit: optionalIntParam("limit", 1, 1000, 100, "Most recent trades (default 100, max 1000)")
})

export const TickersParams = Schema.Struct({ exchange: ExchangeParam, symbols: SymbolsParam })

export const MarketsParams = Schema.Struct({
  exchange: ExchangeParam,
  q: Schema.optional(FilterParam("q", "Case-insensitive substring of the symbol")),
  base: Schema.optional(FilterParam("base", "Only markets with this base currency")),
  quote: Schema.optional(FilterParam("quote", "Only markets with this quote currency")),
  offset: optionalIntParam("offset", 0, 1_000_000, 0, "Markets to skip (default 0)"),
  limit: optionalIntParam("limit", 1, 1000, 100, "Page size (default 100, max 1000)")
})

const withMarketErrors = <Name extends string, UrlParams, Success>(
  endpoint: HttpApiEndpoint.HttpApiEndpoint<Name, "GET", never, UrlParams, never, never, Success>
) =>
  endpoint
    .addError(InvalidParameter)
    .addError(UnknownExchange)
    .addError(SymbolNotFound)
    .addError(RateLimited)
    .addError(NotSupported)
    .addError(UpstreamBadResponse)
    .addError(UpstreamUnavailable)
    .addError(UpstreamTimeout)

export class MarketsGroup extends HttpApiGroup.make("markets")
  .add(
    withMarketErrors(
      HttpApiEndpoint.get("ticker", "/v1/markets/ticker").setUrlParams(TickerParams).addSuccess(Ticker)
    ).annotate(OpenApi.Summary, "Latest ticker of one symbol")
  )
  .add(
    withMarketErrors(
      HttpApiEndpoint.get("tickers", "/v1/markets/tickers").setUrlParams(TickersParams).addSuccess(Tickers)
    ).annotate(OpenApi.Summary, "Latest tickers of several symbols on one exchange")
  )
  .add(
    withMarketErrors(HttpApiEndpoint.get("ohlcv", "/v1/markets/ohlcv").setUrlParams(OhlcvParams).addSuccess(Ohlcv))
      .addError(UnsupportedInterval)
      .annotate(OpenApi.Summary, "OHLCV candles, oldest first; limits above the exchange maximum are paged")
  )
  .add(
    withMarketErrors(
      HttpApiEndpoint.get("orderbook", "/v1/markets/orderbook").setUrlParams(OrderBookParams).addSuccess(OrderBook)
    ).annotate(OpenApi.Summary, "Order book: bids descending, asks ascending")
  )
  .add(
    withMarketErrors(
      HttpApiEndpoint.get("trades", "/v1/markets/trades").setUrlParams(TradesParams).addSuccess(Trades)
    ).annotate(OpenApi.Summary, "Most recent public trades, oldest first")
  )
  .add(
    withMarketErrors(
      HttpApiEndpoint.get("markets", "/v1/markets").setUrlParams(MarketsParams).addSuccess(MarketList)
    ).annotate(OpenApi.Summary, "Symbols listed by an exchange, filterable and paginated")
  )
  .add(
    HttpApiEndpoint.get("exchanges", "/v1/exchanges")
      .addSuccess(ExchangeList)
      .addError(UnknownExchange)
      .addError(RateLimited)
      .annotate(OpenApi.Summary, "Enabled exchanges and what each supports")
  )
  .addError(Unauthorized)
  .annotate(OpenApi.Title, "Markets")
  .annotate(
    OpenApi.Description,
    "Market data of the enabled exchanges, cached for a few seconds (tickers) to minutes"
  ) {}

export class CompatGroup extends HttpApiGroup.make("compat")
  .add(
    withMarketErrors(
      HttpApiEndpoint.get("ticker", "/market/ticker").setUrlParams(TickerParams).addSuccess(Ticker)
    ).annotate(OpenApi.Summary, "Earlier API: same as /v1/markets/ticker")
  )
  .add(
    withMarketErrors(HttpApiEndpoint.get("history", "/market/history").setUrlParams(HistoryParams).addSuccess(Ohlcv))
      .addError(UnsupportedInterval)
      .annotate(OpenApi.Summary, "Earlier API: same as /v1/markets/ohlcv")
  )
  .addError(Unauthorized)
  .annotate(OpenApi.Title, "Compatibility")
  .annotate(OpenApi.Description, "Routes of the earlier API, kept for existing clients") {}
