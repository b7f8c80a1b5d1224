import { Effect, FiberMap, Option, type Scope, Stream } from "effect"
import { AppConfig } from "../AppConfig.js"
import type { StreamChannel } from "../Exchange/Exchange.js"
import {
  type AckEvent,
  type ClosingEvent,
  type ErrorEvent,
  type HeartbeatEvent,
  type StatusEvent,
  type Subscription,
  type SubscriptionEvent,
  type TickerEvent,
  toWire,
  upstreamKey
} from "./Events.js"
import { type Encoded, type Lane, makeOutbox, type Outbox } from "./Outbox.js"
import { thresholdStep } from "./Operators.js"
import { type ConnectionRegistration, StreamHub } from "./StreamHub.js"

/** Connection-wide events: acks of ping and unsubscribe, errors about bad messages, the shutdown notice. */
export type ControlEvent = AckEvent | ErrorEvent | ClosingEvent

type MetaEvent = AckEvent | StatusEvent | ErrorEvent

export interface ConnectionOptions {
  readonly transport: "sse" | "ws"
  /** Multiplexed WebSocket: data events also name their channel. */
  readonly multiplexed: boolean
  /** Bytes written to the socket and not yet sent. */
  readonly transportBytes: () => number
}

/** One client connection: its subscriptions feed one bounded outbox, with heartbeats and a control lane. */
export interface StreamConnection {
  readonly outbox: Outbox
  readonly registration: ConnectionRegistration
  readonly control: Lane<ControlEvent>
  /**
   * Starts a subscription, replacing one with the same channel, exchange, symbol and interval; `ack` goes out before
   * its first event, `onEnd` runs when it ends by itself (after an error event).
   */
  readonly subscribe: (
    subscription: Subscription,
    options?: { readonly ack?: AckEvent; readonly onEnd?: Effect.Effect<void> }
  ) => Effect.Effect<void>
  /** False when there was no such subscription. */
  readonly unsubscribe: (subscription: Subscription) => Effect.Effect<boolean>
  readonly has: (subscription: Subscription) => Effect.Effect<boolean>
  readonly size: Effect.Effect<number>
}

const encode = (event: { readonly event_type: string }): Encoded => ({
  event: event.event_type,
  data: JSON.stringify(event)
})

// An upstream event reaches every subscriber as the same object unless a threshold changed it: encode it once.
const encodedEvents = new WeakMap<SubscriptionEvent, Map<StreamChannel | null, Encoded>>()

const encodeShared = (event: SubscriptionEvent, channel: StreamChannel | null): Encoded => {
  let byChannel = encodedEvents.get(event)
  if (byChannel === undefined) {
    byChannel = new Map()
    encodedEvents.set(event, byChannel)
  }
  let encoded = byChannel.get(channel)
  if (encoded === undefined) {
    encoded = encode(toWire(event, channel))
    byChannel.set(channel, encoded)
  }
  return encoded
}

export const openConnection = (
  options: ConnectionOptions
): Effect.Effect<StreamConnection, never, StreamHub | AppConfig | Scope.Scope> =>
  Effect.gen(function* () {
    const hub = yield* StreamHub
    const config = yield* AppConfig
    const capacity = config.streamBufferSize
    const outbox = yield* makeOutbox({
      maxBytes: config.streamMaxBufferedBytes,
      transportBytes: options.transportBytes
    })
    const fibers = yield* FiberMap.make<string>()
    const lanes = new Map<string, { readonly token: object; readonly close: Effect.Effect<void> }>()
    const registration = yield* hub.register((id) =>
      Effect.gen(function* () {
        return {
          ...(yield* outbox.stats),
          id,
          transport: options.transport,
          subscriptions: yield* FiberMap.size(fibers),
          bufferedBytes: options.transportBytes()
        }
      })
    )
    const control = yield* outbox.lane<ControlEvent>({ mode: "queue", capacity, encode })
    const heartbeat = yield* outbox.lane<HeartbeatEvent>({ mode: "latest", encode })
    yield* hub.heartbeats.pipe(Stream.runForEach(heartbeat.offer), Effect.forkScoped)

    const dataLane = (subscription: Subscription): Effect.Effect<Lane<SubscriptionEvent>> => {
      const channel: StreamChannel | null = options.multiplexed ? subscription.channel : null
      const toEncoded = (event: SubscriptionEvent) => encodeShared(event, channel)
      switch (subscription.channel) {
        case "ticker": {
          // conflation may have skipped the event the threshold was measured from: measure again when sending
          let lastSent: number | undefined
          const deliver = (event: SubscriptionEvent): Option.Option<SubscriptionEvent> =>
            event.event_type !== "ticker"
              ? Option.some(event)
              : Option.map(thresholdStep(lastSent, event.last, subscription.threshold), (change): TickerEvent => {
                  lastSent = event.last
                  return change === event.price_change_percent ? event : { ...event, price_change_percent: change }
                })
          return outbox.lane({ mode: "latest", encode: toEncoded, deliver })
        }
        case "orderbook":
          return outbox.lane({ mode: "latest", encode: toEncoded })
        case "trades":
          return outbox.lane({
            mode: "queue",
            capacity,
            encode: toEncoded,
            weight: (e) => (e.event_type === "trades" ? e.trades.length : 1),
            withDropped: (e, dropped) => (e.event_type === "trades" ? { ...e, dropped: e.dropped + dropped } : e)
          })
        case "ohlcv":
          return outbox.lane({
            mode: "queue",
            capacity,
            encode: toEncoded,
            sameSlot: (pending, next) =>
              pending.event_type === "ohlcv" && next.event_type === "ohlcv" && pending.timestamp === next.timestamp
          })
      }
    }

    const stop = (key: string) =>
      Effect.gen(function* () {
        const running = yield* FiberMap.has(fibers, key)
        yield* FiberMap.remove(fibers, key)
        const current = lanes.get(key)
        lanes.delete(key)
        if (current !== undefined) yield* current.close
        return running
      })

    const subscribe: StreamConnection["subscribe"] = (subscription, o = {}) =>
      Effect.gen(function* () {
        const key = upstreamKey(subscription)
        yield* stop(key)
        // acks, status and the final error of one subscription stay in order with its data
        const meta = yield* outbox.lane<MetaEvent>({
          mode: "queue",
          capacity,
          encode,
          sameSlot: (pending, next) => pending.event_type === "status" && next.event_type === "status"
        })
        const data = yield* dataLane(subscription)
        const token = {}
        lanes.set(key, { token, close: Effect.zipRight(meta.close, data.close) })
        if (o.ack !== undefined) yield* meta.offer(o.ack)
        yield* hub.subscribe(subscription).pipe(
          Stream.runForEach((event) =>
            event.event_type === "status" || event.event_type === "error" ? meta.offer(event) : data.offer(event)
          ),
          Effect.zipRight(
            Effect.suspend(() => {
              // ended by itself: its lanes stay until their last events (the error) went out
              if (lanes.get(key)?.token === token) lanes.delete(key)
              return o.onEnd ?? Effect.void
            })
          ),
          FiberMap.run(fibers, key)
        )
      })

    return {
      outbox,
      registration,
      control,
      subscribe,
      unsubscribe: (subscription) => stop(upstreamKey(subscription)),
      has: (subscription) => FiberMap.has(fibers, upstreamKey(subscription)),
      size: FiberMap.size(fibers)
    } satisfies StreamConnection
  })
