import { Schema } from "effect"
import { ApiError, type ApiError as ApiErrorType } from "../Domain/Errors.js"
import type { Candle, OrderBook, Ticker, Trade } from "../Domain/Market.js"
import type { StreamChannel } from "../Exchange/Exchange.js"

/** What a client asked to stream, validated: canonical exchange id and symbol. */
export interface Subscription {
  readonly channel: StreamChannel
  readonly exchange: string
  readonly symbol: string
  /** Candle interval (ohlcv only, else null). */
  readonly interval: string | null
  /** Levels per side (orderbook only). */
  readonly depth: number
  /** Minimum relative move of `last` between two ticker events (ticker only). */
  readonly threshold: number
}

/** The fields naming a subscription in events, acks and errors. */
export interface SubscriptionRef {
  readonly channel: StreamChannel
  readonly exchange: string
  readonly symbol: string
  readonly interval?: string
}

export const subscriptionRef = (
  s: Pick<Subscription, "channel" | "exchange" | "symbol" | "interval">
): SubscriptionRef =>
  s.interval === null
    ? { channel: s.channel, exchange: s.exchange, symbol: s.symbol }
    : { channel: s.channel, exchange: s.exchange, symbol: s.symbol, interval: s.interval }

/** One shared upstream serves every subscription with the same key, whatever their depth or threshold. */
export const upstreamKey = (s: Pick<Subscription, "channel" | "exchange" | "symbol" | "interval">): string =>
  `${s.exchange} ${s.channel} ${s.symbol} ${s.interval ?? ""}`

/** A ticker as the upstream saw it; subscribers turn it into a TickerEvent. */
export interface TickerSample {
  readonly event_type: "ticker_sample"
  readonly exchange: string
  readonly symbol: string
  readonly bid: number | null
  readonly ask: number | null
  readonly last: number
  readonly timestamp: number
}

export interface TickerEvent extends Omit<TickerSample, "event_type"> {
  readonly event_type: "ticker"
  /** Change of `last` since the previous ticker event sent to this subscriber, in percent (0 for the first). */
  readonly price_change_percent: number
}

export interface TradeItem {
  readonly trade_id: string | null
  readonly timestamp: number
  readonly price: number
  readonly amount: number
  readonly side: "buy" | "sell" | null
}

export interface TradesEvent {
  readonly event_type: "trades"
  readonly exchange: string
  readonly symbol: string
  readonly trades: ReadonlyArray<TradeItem>
  /** Trades this subscriber missed just before these because it read too slowly. */
  readonly dropped: number
}

export interface BookLevelItem {
  readonly price: number
  readonly amount: number
}

export interface OrderBookEvent {
  readonly event_type: "orderbook"
  readonly exchange: string
  readonly symbol: string
  readonly bids: ReadonlyArray<BookLevelItem>
  readonly asks: ReadonlyArray<BookLevelItem>
  readonly timestamp: number
}

export interface OhlcvEvent {
  readonly event_type: "ohlcv"
  readonly exchange: string
  readonly symbol: string
  readonly interval: string
  readonly timestamp: number
  readonly open: number
  readonly high: number
  readonly low: number
  readonly close: number
  readonly volume: number
}

/** The upstream of a subscription lost its data and is reconnecting, or has recovered. */
export interface StatusEvent extends SubscriptionRef {
  readonly event_type: "status"
  readonly status: "reconnecting" | "live"
  readonly reason: string
  /** Consecutive reconnection attempts; 0 on "live". */
  readonly attempt: number
  readonly timestamp: number
}

/** A connection-wide notice: the server is shutting down and ends the stream. */
export interface ClosingEvent {
  readonly event_type: "status"
  readonly status: "closing"
  readonly reason: string
  readonly timestamp: number
}

export interface ErrorEvent extends Partial<SubscriptionRef> {
  readonly event_type: "error"
  readonly code: string
  readonly message: string
  readonly op?: string
  readonly id?: string | number
}

export interface HeartbeatEvent {
  readonly event_type: "heartbeat"
  readonly timestamp: number
}

export interface AckEvent extends Partial<SubscriptionRef> {
  readonly event_type: "ack"
  readonly op: "subscribe" | "unsubscribe" | "ping"
  readonly id?: string | number
  readonly depth?: number
  readonly threshold?: number
  readonly timestamp?: number
}

/** What an upstream publishes to its subscribers. `error` is its last message. */
export type UpstreamMessage = TickerSample | TradesEvent | OrderBookEvent | OhlcvEvent | StatusEvent | ErrorEvent

/** What one subscription delivers to its subscriber. `error` is its last event. */
export type SubscriptionEvent = TickerEvent | TradesEvent | OrderBookEvent | OhlcvEvent | StatusEvent | ErrorEvent

export type DataEvent = TickerEvent | TradesEvent | OrderBookEvent | OhlcvEvent

export const tickerSample = (ticker: Ticker, receivedAt: number): TickerSample => ({
  event_type: "ticker_sample",
  exchange: ticker.exchange,
  symbol: ticker.symbol,
  bid: ticker.bid,
  ask: ticker.ask,
  last: ticker.last,
  // kraken tickers carry no exchange time; the time we received it is the best there is
  timestamp: ticker.timestamp ?? receivedAt
})

export const tradesEvent = (exchange: string, symbol: string, trades: ReadonlyArray<Trade>): TradesEvent => ({
  event_type: "trades",
  exchange,
  symbol,
  trades: trades.map((t) => ({
    trade_id: t.trade_id,
    timestamp: t.timestamp,
    price: t.price,
    amount: t.amount,
    side: t.side
  })),
  dropped: 0
})

export const orderBookEvent = (book: OrderBook, receivedAt: number): OrderBookEvent => ({
  event_type: "orderbook",
  exchange: book.exchange,
  symbol: book.symbol,
  bids: book.bids.map((l) => ({ price: l.price, amount: l.amount })),
  asks: book.asks.map((l) => ({ price: l.price, amount: l.amount })),
  timestamp: book.timestamp ?? receivedAt
})

export const ohlcvEvent = (exchange: string, symbol: string, interval: string, candle: Candle): OhlcvEvent => ({
  event_type: "ohlcv",
  exchange,
  symbol,
  interval,
  timestamp: candle.timestamp,
  open: candle.open,
  high: candle.high,
  low: candle.low,
  close: candle.close,
  volume: candle.volume
})

const encodeApiError = Schema.encodeSync(ApiError)

/** An API error as an error event: the same `code` and `message` as the REST error body. */
export const errorEvent = (error: ApiErrorType, extra: Omit<ErrorEvent, "event_type" | "code" | "message"> = {}) => {
  const { code, message } = encodeApiError(error)
  return { event_type: "error", code, message, ...extra } satisfies ErrorEvent
}

/** Events as sent; on the multiplexed WebSocket every data event also names its channel. */
export const toWire = (event: SubscriptionEvent, channel: StreamChannel | null): { readonly event_type: string } => {
  if (channel === null || event.event_type === "status" || event.event_type === "error") return event
  const { event_type, ...fields } = event
  const wire = { event_type, channel, ...fields }
  return wire
}
