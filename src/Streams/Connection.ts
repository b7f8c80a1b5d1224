import { Effect, ExecutionStrategy, Exit, Option, Scope } from "effect"
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
import { memo, thresholdStep } from "./Operators.js"
import { type ConnectionRegistration, StreamHub } from "./StreamHub.js"

/** Connection-wide events: acks of ping and unsubscribe, errors about bad messages, the shutdown notice. */
export type ControlEvent = AckEvent | ErrorEvent | ClosingEvent

type MetaEvent = AckEvent | StatusEvent | ErrorEvent

/** The socket side of a connection: SSE response or WebSocket. Every callback is plain synchronous code. */
export interface Transport {
  readonly kind: "sse" | "ws"
  /** Multiplexed WebSocket: data events also name their channel. */
  readonly multiplexed: boolean
  /** Bytes written to the socket and not yet sent. */
  readonly bufferedBytes: () => number
  /**
   * Whether the socket takes an event now. When it does not, the transport calls `resume` once it does (pending
   * updates meanwhile conflate in the outbox).
   */
  readonly ready: (resume: () => void) => boolean
  readonly write: (event: Encoded) => void
  /** Everything was sent and no more will come (the stream ended, or the server is closing). */
  readonly finished: () => void
  /** The client fell more than STREAM_MAX_BUFFERED_BYTES behind. */
  readonly overflowed: () => void
  /** The server is shutting down. */
  readonly closing: () => void
  /** The shutdown's grace is over: cut the connection. */
  readonly terminate: () => void
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
    options?: { readonly ack?: AckEvent; readonly onEnd?: () => void }
  ) => Effect.Effect<void>
  /** False when there was no such subscription. */
  readonly unsubscribe: (subscription: Subscription) => Effect.Effect<boolean>
  readonly has: (subscription: Subscription) => boolean
  readonly size: () => number
  /** Writes what is pending, as far as the socket takes it; transports call it when the socket opens. */
  readonly resume: () => void
}

const encode = (event: { readonly event_type: string }): Encoded => ({
  event: event.event_type,
  data: JSON.stringify(event)
})

// An upstream event reaches every subscriber as the same object unless a threshold changed it: encode it once.
const encodedEvents = new WeakMap<SubscriptionEvent, Map<StreamChannel | null, Encoded>>()

const encodeShared = (event: SubscriptionEvent, channel: StreamChannel | null): Encoded =>
  memo(encodedEvents, event, channel, () => encode(toWire(event, channel)))

interface Running {
  readonly scope: Scope.CloseableScope
  readonly close: () => void
}

export const openConnection = (
  transport: Transport
): Effect.Effect<StreamConnection, never, StreamHub | AppConfig | Scope.Scope> =>
  Effect.gen(function* () {
    const hub = yield* StreamHub
    const config = yield* AppConfig
    const capacity = config.streamBufferSize
    const connectionScope = yield* Effect.scope
    const running = new Map<string, Running>()
    let writing = false
    let finished = false

    // writes until the outbox is empty or the socket is full; re-entry (a write that triggers an event) is a no-op
    const pump = (): void => {
      if (writing || finished) return
      writing = true
      try {
        for (;;) {
          if (outbox.done()) {
            finished = true
            transport.finished()
            return
          }
          if (!transport.ready(pump)) return
          const next = outbox.next()
          if (next === undefined) return
          transport.write(next)
        }
      } finally {
        writing = false
      }
    }

    const outbox = makeOutbox({
      maxBytes: config.streamMaxBufferedBytes,
      transportBytes: transport.bufferedBytes,
      onReady: pump,
      onOverflow: () => {
        finished = true
        transport.overflowed()
      }
    })
    const control = outbox.lane<ControlEvent>({ mode: "queue", capacity, encode })
    const heartbeat = outbox.lane<HeartbeatEvent>({ mode: "latest", encode })
    const registration = yield* hub.register({
      stats: (id) => ({
        ...outbox.stats(),
        id,
        transport: transport.kind,
        subscriptions: running.size,
        bufferedBytes: transport.bufferedBytes()
      }),
      heartbeat: heartbeat.offer,
      closing: transport.closing,
      terminate: transport.terminate
    })

    const dataLane = (subscription: Subscription): Lane<SubscriptionEvent> => {
      const channel: StreamChannel | null = transport.multiplexed ? subscription.channel : null
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

    /** Detaches a running subscription and drops its pending events; false when there was none. */
    const stop = (key: string): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        const current = running.get(key)
        if (current === undefined) return Effect.succeed(false)
        running.delete(key)
        current.close()
        return Effect.as(Scope.close(current.scope, Exit.void), true)
      })

    const subscribe: StreamConnection["subscribe"] = (subscription, o = {}) =>
      Effect.gen(function* () {
        const key = upstreamKey(subscription)
        yield* stop(key)
        // acks, status and the final error of one subscription stay in order with its data
        const meta = outbox.lane<MetaEvent>({
          mode: "queue",
          capacity,
          encode,
          sameSlot: (pending, next) => pending.event_type === "status" && next.event_type === "status"
        })
        const data = dataLane(subscription)
        const scope = yield* Scope.fork(connectionScope, ExecutionStrategy.sequential)
        const entry: Running = {
          scope,
          close: () => {
            meta.close()
            data.close()
          }
        }
        running.set(key, entry)
        if (o.ack !== undefined) meta.offer(o.ack)
        yield* hub
          .attach(subscription, {
            event: (event) =>
              event.event_type === "status" || event.event_type === "error" ? meta.offer(event) : data.offer(event),
            end: () => {
              // ended by itself: its lanes stay until their last events (the error) went out
              if (running.get(key) === entry) running.delete(key)
              Effect.runFork(Scope.close(scope, Exit.void))
              o.onEnd?.()
            }
          })
          .pipe(Scope.extend(scope))
      })

    return {
      outbox,
      registration,
      control,
      subscribe,
      unsubscribe: (subscription) => stop(upstreamKey(subscription)),
      has: (subscription) => running.has(upstreamKey(subscription)),
      size: () => running.size,
      resume: pump
    } satisfies StreamConnection
  })
