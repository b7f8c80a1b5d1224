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

/**
 * Ticker events for one subscriber: a sample passes only when `last` moved by `threshold` since the last event
 * *sent*. Stream.changesWith would compare with the previous sample instead and never fire on a slow drift.
 * Other messages pass through untouched.
 */
export const tickerThreshold =
  (threshold: number) =>
  <E, R>(messages: Stream.Stream<UpstreamMessage, E, R>): Stream.Stream<SubscriptionEvent, E, R> =>
    messages.pipe(
      Stream.mapAccum(Option.none<number>(), (lastSent, message) => {
        if (message.event_type !== "ticker_sample") {
          return [lastSent, Option.some<SubscriptionEvent>(message)] as const
        }
        return Option.match(thresholdStep(Option.getOrUndefined(lastSent), message.last, threshold), {
          onNone: () => [lastSent, Option.none<SubscriptionEvent>()] as const,
          onSome: (change) =>
            [Option.some(message.last), Option.some<SubscriptionEvent>(tickerEvent(message, change))] as const
        })
      }),
      Stream.filterMap((event) => event)
    )

export const sliceBook = (book: OrderBookEvent, depth: number): OrderBookEvent =>
  book.bids.length <= depth && book.asks.length <= depth
    ? book
    : { ...book, bids: book.bids.slice(0, depth), asks: book.asks.slice(0, depth) }

/** What one subscription delivers, from its upstream's messages; ends with the upstream's error, if any. */
export const forSubscription =
  (subscription: Subscription) =>
  <E, R>(messages: Stream.Stream<UpstreamMessage, E, R>): Stream.Stream<SubscriptionEvent, E, R> =>
    messages.pipe(
      Stream.takeUntil((m) => m.event_type === "error"),
      Stream.map((m) =>
        m.event_type === "orderbook" && subscription.channel === "orderbook" ? sliceBook(m, subscription.depth) : m
      ),
      tickerThreshold(subscription.threshold)
    )

/** A heartbeat every `interval`, the first one `interval` after the start. */
export const heartbeats = (interval: Duration.DurationInput): Stream.Stream<HeartbeatEvent> =>
  Stream.fromSchedule(Schedule.spaced(interval)).pipe(
    Stream.mapEffect(() =>
      Effect.map(Clock.currentTimeMillis, (timestamp): HeartbeatEvent => ({ event_type: "heartbeat", timestamp }))
    )
  )

/** `events` with heartbeats merged in; ends when `events` ends. */
export const withHeartbeats =
  (interval: Duration.DurationInput) =>
  <A, E, R>(events: Stream.Stream<A, E, R>): Stream.Stream<A | HeartbeatEvent, E, R> =>
    Stream.merge(events, heartbeats(interval), { haltStrategy: "left" })
