import { Effect, Option } from "effect"
import type { AppConfig } from "../AppConfig.js"
import type { StreamChannel } from "../Exchange/Exchange.js"
import {
  type AckEvent,
  type ClosingEvent,
  type ErrorEvent,
  type HeartbeatEvent,
  type StatusEvent,
  type Subscription,
  type SubscriptionEvent,
  toWire,
  upstreamKey
} from "./Events.js"
import { type Encoded, type Lane, makeOutbox, type Outbox, type OutboxOptions } from "./Outbox.js"
import { memo, TickerThreshold } from "./Operators.js"
import type { ConnectionHooks, ConnectionStats, Detach, StreamHub } from "./StreamHub.js"

/** Connection-wide events: acks of ping and unsubscribe, errors about bad messages, the shutdown notice. */
export type ControlEvent = AckEvent | ErrorEvent | ClosingEvent

type MetaEvent = AckEvent | StatusEvent | ErrorEvent

/** The socket side of a connection: SSE response or WebSocket. Every method is plain synchronous code. */
export interface Transport {
  readonly kind: "sse" | "ws"
  /** Multiplexed WebSocket: data events also name their channel. */
  readonly multiplexed: boolean
  /** Bytes written to the socket and not yet sent. */
  bufferedBytes(): number
  /**
   * Whether the socket takes an event now. When it does not, the transport calls `resume` once it does (pending
   * updates meanwhile conflate in the outbox).
   */
  ready(resume: () => void): boolean
  write(event: Encoded): void
  /** Everything was sent and no more will come (the stream ended, or the server is closing). */
  finished(): void
  /** The client fell more than STREAM_MAX_BUFFERED_BYTES behind. */
  overflowed(): void
  /** The server is shutting down. */
  closing(): void
  /** The shutdown's grace is over: cut the connection. */
  terminate(): void
}

const encode = (event: { readonly event_type: string }): Encoded => ({
  event: event.event_type,
  data: JSON.stringify(event)
})

// An upstream event reaches every subscriber as the same object unless a threshold changed it: encode it once.
const encodedEvents = new WeakMap<SubscriptionEvent, Map<StreamChannel | null, Encoded>>()

const encodeShared = (event: SubscriptionEvent, channel: StreamChannel | null): Encoded =>
  memo(encodedEvents, event, channel, () => encode(toWire(event, channel)))

// a heartbeat goes to many connections as one object: encoded once for all of them
const encodedHeartbeats = new WeakMap<HeartbeatEvent, Map<null, Encoded>>()
const encodeOnce = (event: HeartbeatEvent): Encoded => memo(encodedHeartbeats, event, null, () => encode(event))

const statusSlot = (pending: MetaEvent, next: MetaEvent) =>
  pending.event_type === "status" && next.event_type === "status"

interface Running {
  readonly meta: Lane<MetaEvent>
  readonly data: Lane<SubscriptionEvent>
  /**
   * Set once the hub attached it, while it is this connection's subscription for its key; one that left the
   * connection before the hub attached it detaches as soon as it is.
   */
  detach: Detach | undefined
}

/** Detaches a subscription from its upstream, once. */
const detachOnce = (hub: StreamHub, entry: Running): void => {
  const detach = entry.detach
  entry.detach = undefined
  if (detach !== undefined) hub.runDetached(detach())
}

/**
 * One client connection: its subscriptions feed one bounded outbox, with heartbeats and a control lane. Plain code
 * (a class: thousands of them are alive at once); `close` when the socket closes, however it closes.
 */
export class StreamConnection implements ConnectionHooks, OutboxOptions {
  readonly outbox: Outbox
  readonly id: number
  readonly maxBytes: number
  readonly control: Lane<ControlEvent>
  private readonly heartbeatLane: Lane<HeartbeatEvent>
  private readonly running = new Map<string, Running>()
  private writing = false
  private finished = false
  private closed = false

  constructor(
    private readonly hub: StreamHub,
    private readonly config: AppConfig,
    private readonly transport: Transport
  ) {
    this.maxBytes = config.streamMaxBufferedBytes
    this.outbox = makeOutbox(this)
    this.control = this.outbox.lane<ControlEvent>({ mode: "queue", capacity: config.streamBufferSize, encode })
    this.heartbeatLane = this.outbox.lane<HeartbeatEvent>({ mode: "latest", encode: encodeOnce })
    this.id = hub.register(this)
  }

  /**
   * Writes what is pending, as far as the socket takes it; transports call it when the socket opens or drains.
   * Re-entry (a write that triggers an event) is a no-op.
   */
  readonly resume = (): void => {
    if (this.writing || this.finished) return
    this.writing = true
    try {
      for (;;) {
        if (this.outbox.done()) {
          this.finished = true
          this.transport.finished()
          return
        }
        if (!this.transport.ready(this.resume)) return
        const next = this.outbox.next()
        if (next === undefined) return
        this.transport.write(next)
      }
    } finally {
      this.writing = false
    }
  }

  transportBytes(): number {
    return this.transport.bufferedBytes()
  }

  onReady(): void {
    this.resume()
  }

  onOverflow(): void {
    this.finished = true
    this.hub.closedSlow()
    this.transport.overflowed()
  }

  canWriteNow(): boolean {
    return !this.writing && !this.finished && this.transport.ready(this.resume)
  }

  write(event: Encoded): void {
    this.transport.write(event)
  }

  stats(id: number): ConnectionStats {
    return {
      ...this.outbox.stats(),
      id,
      transport: this.transport.kind,
      subscriptions: this.running.size,
      bufferedBytes: this.transport.bufferedBytes()
    }
  }

  heartbeat(event: HeartbeatEvent): void {
    this.heartbeatLane.offer(event)
  }

  closing(): void {
    this.transport.closing()
  }

  terminate(): void {
    this.transport.terminate()
  }

  private dataLane(subscription: Subscription): Lane<SubscriptionEvent> {
    const outbox = this.outbox
    const capacity = this.config.streamBufferSize
    const channel: StreamChannel | null = this.transport.multiplexed ? subscription.channel : null
    const toEncoded = (event: SubscriptionEvent) => encodeShared(event, channel)
    switch (subscription.channel) {
      case "ticker": {
        // decided when the event leaves, against what this client was sent: conflation replaces pending tickers
        const threshold = new TickerThreshold(subscription.threshold)
        const deliver = (event: SubscriptionEvent): Option.Option<SubscriptionEvent> =>
          event.event_type === "ticker" ? Option.fromNullable(threshold.pass(event)) : Option.some(event)
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

  /** Drops a subscription's pending events and detaches it from its upstream. */
  private stop(entry: Running): void {
    entry.meta.close()
    entry.data.close()
    detachOnce(this.hub, entry)
  }

  /**
   * Starts a subscription, replacing one with the same channel, exchange, symbol and interval; `ack` goes out before
   * its first event, `onEnd` runs when it ends by itself (after an error event).
   */
  subscribe(
    subscription: Subscription,
    options: { readonly ack?: AckEvent; readonly onEnd?: () => void } = {}
  ): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.closed) return Effect.void
      const key = upstreamKey(subscription)
      const previous = this.running.get(key)
      if (previous !== undefined) this.stop(previous)
      const capacity = this.config.streamBufferSize
      // acks, status and the final error of one subscription stay in order with its data
      const meta = this.outbox.lane<MetaEvent>({ mode: "queue", capacity, encode, sameSlot: statusSlot })
      const data = this.dataLane(subscription)
      const entry: Running = { meta, data, detach: undefined }
      this.running.set(key, entry)
      if (options.ack !== undefined) meta.offer(options.ack)
      return Effect.map(
        this.hub.attach(subscription, {
          // the ticker lane's deliver
          thresholdAtSend: true,
          event: (event) =>
            event.event_type === "status" || event.event_type === "error" ? meta.offer(event) : data.offer(event),
          end: () => {
            // ended by itself: its lanes stay until their last events (the error) went out
            if (this.running.get(key) === entry) this.running.delete(key)
            detachOnce(this.hub, entry)
            options.onEnd?.()
          }
        }),
        (detach) => {
          // replaced, unsubscribed, closed or ended while the upstream was starting
          if (this.running.get(key) !== entry) this.hub.runDetached(detach())
          else entry.detach = detach
        }
      )
    })
  }

  /** False when there was no such subscription. */
  unsubscribe(subscription: Subscription): boolean {
    const key = upstreamKey(subscription)
    const entry = this.running.get(key)
    if (entry === undefined) return false
    this.running.delete(key)
    this.stop(entry)
    return true
  }

  has(subscription: Subscription): boolean {
    return this.running.has(upstreamKey(subscription))
  }

  size(): number {
    return this.running.size
  }

  /** The socket closed: every subscription detaches and the hub forgets the connection. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.finished = true
    for (const entry of this.running.values()) this.stop(entry)
    this.running.clear()
    this.hub.unregister(this.id)
  }
}
