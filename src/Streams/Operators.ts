import { Clock, type Duration, Effect, Option, Schedule, Stream } from "effect"
import type {
  HeartbeatEvent,
  OrderBookEvent,
  Subscription,
  SubscriptionEvent,
  TickerEvent,
  TickerSample,
  UpstreamMessage
} from "./Events.js"

/**
 * The change from the last price sent to `last`, in percent, when it reaches `threshold` (a fraction: 0.001 = 0.1%);
 * None when it does not. The first price (`previous` undefined) always passes, with a change of 0.
 */
export const thresholdStep = (previous: number | undefined, last: number, threshold: number): Option.Option<number> => {
  if (previous === undefined) return Option.some(0)
  if (previous === 0) return last === 0 && threshold > 0 ? Option.none() : Option.some(0)
  const change = (last - previous) / previous
  return Math.abs(change) >= threshold ? Option.some(change * 100) : Option.none()
}

export const tickerEvent = (sample: Omit<TickerSample, "event_type">, priceChangePercent: number): TickerEvent => ({
  event_type: "ticker",
  exchange: sample.exchange,
  symbol: sample.symbol,
  bid: sample.bid,
  ask: sample.ask,
  last: sample.last,
  timestamp: sample.timestamp,
  price_change_percent: priceChangePercent
})

// Subscribers mostly agree on the change (same reference price) and the depth: sharing the event object lets the
// connections encode it once for all of them.
const tickerEvents = new WeakMap<TickerSample | TickerEvent, Map<number, TickerEvent>>()
const slicedBooks = new WeakMap<OrderBookEvent, Map<number, OrderBookEvent>>()

/** The value cached for (`key`, `n`), made once. */
export const memo = <K extends object, N, V>(cache: WeakMap<K, Map<N, V>>, key: K, n: N, make: () => V): V => {
  let byN = cache.get(key)
  if (byN === undefined) {
    byN = new Map()
    cache.set(key, byN)
  }
  let value = byN.get(n)
  if (value === undefined) {
    value = make()
    byN.set(n, value)
  }
  return value
}

/** `ticker` with this change, the same object for every subscriber that agrees on it. */
const sharedTickerEvent = (ticker: TickerSample | TickerEvent, change: number): TickerEvent =>
  ticker.event_type === "ticker" && ticker.price_change_percent === change
    ? ticker
    : memo(tickerEvents, ticker, change, () => tickerEvent(ticker, change))

export const sliceBook = (book: OrderBookEvent, depth: number): OrderBookEvent =>
  book.bids.length <= depth && book.asks.length <= depth
    ? book
    : memo(slicedBooks, book, depth, () => ({
        ...book,
        bids: book.bids.slice(0, depth),
        asks: book.asks.slice(0, depth)
      }))

/**
 * One subscriber's ticker threshold, the one place it is decided: a ticker passes only when `last` moved by
 * `threshold` since the last event this subscriber was handed (Stream.changesWith would compare with the previous
 * sample and never fire on a slow drift), with that move as its `price_change_percent`. Only what passes advances the
 * state, so it must run where the event is handed over: for a subscriber with a buffer, when the event leaves it
 * (conflation may replace an event after it passed, and the subscriber never sees it).
 */
export class TickerThreshold {
  private lastSent: number | undefined = undefined

  constructor(readonly threshold: number) {}

  /** The event to hand over, shared by subscribers that agree on the change; undefined skips the ticker. */
  pass(ticker: TickerSample | TickerEvent): TickerEvent | undefined {
    const change = thresholdStep(this.lastSent, ticker.last, this.threshold)
    if (Option.isNone(change)) return undefined
    this.lastSent = ticker.last
    return sharedTickerEvent(ticker, change.value)
  }
}

/** Ticker events for a subscriber handed each message as it arrives; other messages pass through untouched. */
export const makeTickerThreshold = (threshold: number) => {
  const ticker = new TickerThreshold(threshold)
  return (message: UpstreamMessage): SubscriptionEvent | undefined =>
    message.event_type === "ticker_sample" ? ticker.pass(message) : message
}

/**
 * Every sample as a ticker event, for a subscriber that applies its threshold itself when it sends: the same object
 * for all of them (encoded once), its `price_change_percent` (0) a placeholder that `TickerThreshold.pass` sets.
 */
const tickerCandidate = (message: UpstreamMessage): SubscriptionEvent =>
  message.event_type === "ticker_sample" ? sharedTickerEvent(message, 0) : message

/**
 * What one subscription makes of each upstream message: undefined skips it. The caller ends after an error.
 * `thresholdAtSend`: the subscriber applies the ticker threshold itself (a `TickerThreshold` where it sends), so
 * tickers pass here unfiltered.
 */
export const makeSubscriptionFilter = (
  subscription: Subscription,
  options: { readonly thresholdAtSend?: boolean | undefined } = {}
) => {
  const ticker = options.thresholdAtSend === true ? tickerCandidate : makeTickerThreshold(subscription.threshold)
  return (message: UpstreamMessage): SubscriptionEvent | undefined =>
    message.event_type === "orderbook" && subscription.channel === "orderbook"
      ? sliceBook(message, subscription.depth)
      : ticker(message)
}

/** A heartbeat every `interval`, the first one `interval` after the start. */
export const heartbeats = (interval: Duration.DurationInput): Stream.Stream<HeartbeatEvent> =>
  Stream.fromSchedule(Schedule.spaced(interval)).pipe(
    Stream.mapEffect(() =>
      Effect.map(Clock.currentTimeMillis, (timestamp): HeartbeatEvent => ({ event_type: "heartbeat", timestamp }))
    )
  )
