import { Context, type Effect, type Option, type Scope } from "effect"
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

/** What a live stream carries: ccxt.pro `watchTicker`, `watchTrades`, `watchOrderBook` or `watchOHLCV`. */
export type StreamChannel = "ticker" | "trades" | "orderbook" | "ohlcv"

/** One live ccxt.pro subscription, on an exchange connection of its own. */
export interface Watcher<A> {
  /** The next update; it waits as long as the exchange stays silent, so callers bring their own stall timeout. */
  readonly next: Effect.Effect<A, MarketError>
  /** Drops the connection and every cached state (books, trades); the next `next` subscribes from scratch. */
  readonly reset: Effect.Effect<void>
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
  /** Whether the exchange streams this channel over WebSocket (ccxt.pro `has[watch…]`). */
  readonly canWatch: (exchange: string, channel: StreamChannel) => Effect.Effect<boolean, UnknownExchange>
  readonly watchTicker: (market: ResolvedMarket) => Effect.Effect<Watcher<Ticker>, MarketError, Scope.Scope>
  /** Each update holds the trades that are new since the previous one. */
  readonly watchTrades: (market: ResolvedMarket) => Effect.Effect<Watcher<Trades>, MarketError, Scope.Scope>
  /** Each update is the whole book, best `depth` levels per side. */
  readonly watchOrderBook: (
    market: ResolvedMarket,
    depth: number
  ) => Effect.Effect<Watcher<OrderBook>, MarketError, Scope.Scope>
  /** Each update holds the candles that changed, oldest first. */
  readonly watchOHLCV: (
    market: ResolvedMarket,
    interval: string
  ) => Effect.Effect<Watcher<Ohlcv>, MarketError, Scope.Scope>
}

export class Exchange extends Context.Tag("app/Exchange")<Exchange, ExchangeService>() {}
