import { mergeCandles } from "./candles.js"
import { marketKey, type MarketRef, seriesKey } from "./market.js"
import type { BookLevel, Candle, ServerEvent, Ticker, Trade } from "./types.js"

/** The state of our own `/ws` connection. */
export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline"

export interface LiveTicker {
  readonly bid: number | null
  readonly ask: number | null
  readonly last: number
  readonly timestamp: number | null
}

export interface MarketState {
  /** Live quote, from the stream (or the REST snapshot until the stream's first event). */
  readonly ticker: LiveTicker | null
  /** 24 h statistics from the REST ticker; change and percentage are recomputed from the live last price. */
  readonly stats: Ticker | null
  /** Direction of the last move of `last`, for the flash. */
  readonly tick: "up" | "down" | null
  readonly book: { readonly bids: ReadonlyArray<BookLevel>; readonly asks: ReadonlyArray<BookLevel> } | null
  /** Newest first. */
  readonly trades: ReadonlyArray<Trade>
  /** Upstream status reported by the server for this market's subscriptions. */
  readonly upstream: "live" | "reconnecting"
  readonly upstreamReason: string | null
  /** Last time (client clock, ms) data arrived for this market. */
  readonly updatedAt: number | null
  readonly error: string | null
}

export interface StreamState {
  readonly connection: ConnectionState
  readonly attempt: number
  readonly markets: Readonly<Record<string, MarketState>>
  /** Candles per market and interval, oldest first. */
  readonly series: Readonly<Record<string, ReadonlyArray<Candle>>>
  /** Reconnecting subscriptions per market, by channel (a market is reconnecting while any is). */
  readonly reconnecting: Readonly<Record<string, ReadonlyArray<string>>>
}

export type Action =
  | { readonly type: "connection"; readonly state: ConnectionState; readonly attempt: number }
  | { readonly type: "event"; readonly event: ServerEvent; readonly at: number }
  | { readonly type: "ticker-snapshot"; readonly ticker: Ticker; readonly at: number }
  | { readonly type: "trades-snapshot"; readonly market: MarketRef; readonly trades: ReadonlyArray<Trade> }
  | {
      readonly type: "candles"
      readonly market: MarketRef
      readonly interval: string
      readonly candles: ReadonlyArray<Candle>
    }

export const MAX_TRADES = 60

export const initialState: StreamState = {
  connection: "connecting",
  attempt: 0,
  markets: {},
  series: {},
  reconnecting: {}
}

export const emptyMarket: MarketState = {
  ticker: null,
  stats: null,
  tick: null,
  book: null,
  trades: [],
  upstream: "live",
  upstreamReason: null,
  updatedAt: null,
  error: null
}

const withMarket = (state: StreamState, key: string, update: (m: MarketState) => MarketState): StreamState => ({
  ...state,
  markets: { ...state.markets, [key]: update(state.markets[key] ?? emptyMarket) }
})

const tickOf = (previous: number | undefined, next: number, current: MarketState["tick"]): MarketState["tick"] =>
  previous === undefined || previous === next ? current : next > previous ? "up" : "down"

/**
 * Newest first, no trade twice (by id when it has one), at most MAX_TRADES. The REST history and the stream's trades
 * (only those made after its upstream started) arrive in either order: older trades go below newer ones.
 */
export const mergeTrades = (held: ReadonlyArray<Trade>, incoming: ReadonlyArray<Trade>): ReadonlyArray<Trade> => {
  const ids = new Set(held.flatMap((t) => (t.trade_id === null ? [] : [t.trade_id])))
  const fresh = incoming.filter((t) => t.trade_id === null || !ids.has(t.trade_id))
  if (fresh.length === 0) return held
  return [...fresh, ...held].sort((a, b) => b.timestamp - a.timestamp).slice(0, MAX_TRADES)
}

const onEvent = (state: StreamState, event: ServerEvent, at: number): StreamState => {
  switch (event.event_type) {
    case "ticker":
      return withMarket(state, marketKey(event), (m) => ({
        ...m,
        ticker: { bid: event.bid, ask: event.ask, last: event.last, timestamp: event.timestamp },
        tick: tickOf(m.ticker?.last, event.last, m.tick),
        updatedAt: at
      }))
    case "orderbook":
      return withMarket(state, marketKey(event), (m) => ({
        ...m,
        book: { bids: event.bids, asks: event.asks },
        updatedAt: at
      }))
    case "trades":
      return withMarket(state, marketKey(event), (m) => ({
        ...m,
        trades: mergeTrades(m.trades, event.trades),
        updatedAt: at
      }))
    case "ohlcv": {
      const key = seriesKey(event, event.interval)
      const held = state.series[key] ?? []
      const candle: Candle = {
        timestamp: event.timestamp,
        open: event.open,
        high: event.high,
        low: event.low,
        close: event.close,
        volume: event.volume
      }
      const merged = mergeCandles(held, [candle])
      const next = merged === held ? state : { ...state, series: { ...state.series, [key]: merged } }
      return withMarket(next, marketKey(event), (m) => ({ ...m, updatedAt: at }))
    }
    case "status": {
      if (event.status === "closing") return { ...state, connection: "reconnecting" }
      const key = marketKey(event)
      const channel = event.interval === undefined ? event.channel : `${event.channel}:${event.interval}`
      const held = state.reconnecting[key] ?? []
      const channels =
        event.status === "reconnecting"
          ? held.includes(channel)
            ? held
            : [...held, channel]
          : held.filter((c) => c !== channel)
      const reconnecting = { ...state.reconnecting, [key]: channels }
      return withMarket({ ...state, reconnecting }, key, (m) => ({
        ...m,
        upstream: channels.length > 0 ? "reconnecting" : "live",
        upstreamReason: channels.length > 0 ? (event.reason ?? m.upstreamReason) : null
      }))
    }
    case "error":
      return event.exchange === undefined || event.symbol === undefined
        ? state
        : withMarket(state, marketKey({ exchange: event.exchange, symbol: event.symbol }), (m) => ({
            ...m,
            error: event.message
          }))
    case "heartbeat":
    case "ack":
      return state
  }
}

export const reducer = (state: StreamState, action: Action): StreamState => {
  switch (action.type) {
    case "connection":
      return action.state === "live"
        ? // a new connection starts every subscription afresh; the server reports upstream trouble again if any
          {
            ...state,
            connection: "live",
            attempt: 0,
            reconnecting: {},
            markets: Object.fromEntries(
              Object.entries(state.markets).map(([key, m]) => [key, { ...m, upstream: "live", upstreamReason: null }])
            )
          }
        : { ...state, connection: action.state, attempt: action.attempt }
    case "event":
      return onEvent(state, action.event, action.at)
    case "ticker-snapshot": {
      const t = action.ticker
      return withMarket(state, marketKey(t), (m) => ({
        ...m,
        stats: t,
        // the stream's quote is newer than any REST snapshot
        ticker: m.ticker ?? { bid: t.bid, ask: t.ask, last: t.last, timestamp: t.timestamp },
        updatedAt: m.updatedAt ?? action.at
      }))
    }
    case "trades-snapshot":
      return withMarket(state, marketKey(action.market), (m) => ({
        ...m,
        trades: mergeTrades(m.trades, action.trades)
      }))
    case "candles": {
      const key = seriesKey(action.market, action.interval)
      const held = state.series[key] ?? []
      const merged = mergeCandles(held, action.candles, "held")
      return merged === held ? state : { ...state, series: { ...state.series, [key]: merged } }
    }
  }
}

/** 24 h change and percentage against the 24 h open, following the live last price. */
export const dayChange = (
  market: MarketState
): { readonly change: number | null; readonly percentage: number | null } => {
  const last = market.ticker?.last
  const open = market.stats?.open ?? null
  if (last !== undefined && open !== null && open > 0) {
    const change = last - open
    return { change, percentage: (change / open) * 100 }
  }
  return { change: market.stats?.change ?? null, percentage: market.stats?.percentage ?? null }
}

export const STALE_AFTER_MS = 30_000

/** What the page says about a market's freshness. */
export const freshness = (
  state: StreamState,
  market: MarketState | undefined,
  now: number
): "live" | "reconnecting" | "offline" | "stale" | "connecting" => {
  if (state.connection === "offline") return "offline"
  if (state.connection === "reconnecting") return "reconnecting"
  if (state.connection === "connecting") return "connecting"
  if (market === undefined) return "connecting"
  if (market.upstream === "reconnecting") return "reconnecting"
  if (market.updatedAt !== null && now - market.updatedAt > STALE_AFTER_MS) return "stale"
  return "live"
}
