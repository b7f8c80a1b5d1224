import { Context, type Effect, type Option } from "effect"
import type { MarketError, SymbolNotFound, UnknownExchange, UpstreamError } from "../Domain/Errors.js"
import type { ExchangeInfo, MarketInfo, Ohlcv, OrderBook, Ticker, Trades } from "../Domain/Market.js"

/** A symbol known to be listed by an enabled exchange, with canonical ids. */
export interface ResolvedMarket {
  readonly exchange: string
  readonly symbol: string
}

export interface ExchangeStatus {
  readonly status: "idle" | "ready" | "error"
  readonly marketsLoadedAt: number | null
  readonly markets: number
  readonly lastError: string | null
}

export interface OhlcvRequest {
  readonly interval: string
  readonly since: Option.Option<number>
  readonly limit: number
}

/** The CCXT boundary: every method answers with decoded canonical types or a typed error. */
export interface ExchangeService {
  readonly enabled: ReadonlyArray<string>
  /** Canonical id of an enabled exchange (accepts aliases such as coinbasepro). */
  readonly resolveExchange: (exchange: string) => Effect.Effect<string, UnknownExchange>
  /** Canonical exchange id and unified symbol; loads markets on first use. */
  readonly resolve: (
    exchange: string,
    symbol: string
  ) => Effect.Effect<ResolvedMarket, UnknownExchange | SymbolNotFound | UpstreamError>
  readonly describe: (exchange: string) => Effect.Effect<ExchangeInfo, UnknownExchange>
  readonly markets: (exchange: string) => Effect.Effect<ReadonlyArray<MarketInfo>, UnknownExchange | UpstreamError>
  readonly ticker: (market: ResolvedMarket) => Effect.Effect<Ticker, MarketError>
  readonly tickers: (
    exchange: string,
    symbols: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Ticker>, MarketError>
  readonly ohlcv: (market: ResolvedMarket, request: OhlcvRequest) => Effect.Effect<Ohlcv, MarketError>
  readonly orderBook: (market: ResolvedMarket, limit: number) => Effect.Effect<OrderBook, MarketError>
  readonly trades: (market: ResolvedMarket, limit: number) => Effect.Effect<Trades, MarketError>
  readonly status: Effect.Effect<Readonly<Record<string, ExchangeStatus>>>
}

export class Exchange extends Context.Tag("app/Exchange")<Exchange, ExchangeService>() {}
