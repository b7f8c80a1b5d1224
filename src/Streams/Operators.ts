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

export const tickerEvent = (sample: TickerSample, priceChangePercent: number): TickerEvent => ({
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
const tickerEvents = new WeakMap<TickerSample, Map<number, TickerEvent>>()
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

const sharedTickerEvent = (sample: TickerSample, change: number): TickerEvent =>
  memo(tickerEvents, sample, change, () => tickerEvent(sample, change))

export const sliceBook = (book: OrderBookEvent, depth: number): OrderBookEvent =>
  book.bids.length <= depth && book.asks.length <= depth
    ? book
    : memo(slicedBooks, book, depth, () => ({
        ...book,
        bids: book.bids.slice(0, depth),
        asks: book.asks.slice(0, depth)
      }))

/**
 * Ticker events for one subscriber, one sample at a time: a sample passes only when `last` moved by `threshold` since
 * the last event *sent* (Stream.changesWith would compare with the previous sample and never fire on a slow drift).
 * Other messages pass through untouched.
 */
export const makeTickerThreshold = (threshold: number) => {
  let lastSent: number | undefined
  return (message: UpstreamMessage): SubscriptionEvent | undefined => {
    if (message.event_type !== "ticker_sample") return message
    const change = thresholdStep(lastSent, message.last, threshold)
    if (Option.isNone(change)) return undefined
    lastSent = message.last
    return sharedTickerEvent(message, change.value)
  }
}

/** What one subscription makes of each upstream message: undefined skips it. The caller ends after an error. */
export const makeSubscriptionFilter = (subscription: Subscription) => {
  const threshold = makeTickerThreshold(subscription.threshold)
  return (message: UpstreamMessage): SubscriptionEvent | undefined =>
    message.event_type === "orderbook" && subscription.channel === "orderbook"
      ? sliceBook(message, subscription.depth)
      : threshold(message)
}

/** A heartbeat every `interval`, the first one `interval` after the start. */
export const heartbeats = (interval: Duration.DurationInput): Stream.Stream<HeartbeatEvent> =>
  Stream.fromSchedule(Schedule.spaced(interval)).pipe(
    Stream.mapEffect(() =>
      Effect.map(Clock.currentTimeMillis, (timestamp): HeartbeatEvent => ({ event_type: "heartbeat", timestamp }))
    )
  )
