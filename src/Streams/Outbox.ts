import { Option } from "effect"
import { streamMessagesConflated, streamMessagesDropped } from "../Metrics.js"

/** An event ready for the wire: its type (the SSE event name) and its JSON. */
export interface Encoded {
  readonly event: string
  readonly data: string
  /** The data as a WebSocket text frame, made once by the first WebSocket that sends it and reused by the others. */
  frame?: Buffer
}

/**
 * How one subscription's events wait in a connection's outbox.
 * - `latest`: at most one pending event, a newer one replaces it (tickers, books, status).
 * - `queue`: up to `capacity` pending events, the oldest dropped first (trades, candles, acks).
 */
export interface LaneOptions<A> {
  readonly mode: "latest" | "queue"
  /** queue: pending events kept before the oldest is dropped. */
  readonly capacity?: number
  readonly encode: (a: A) => Encoded
  /** queue: replaces the newest pending event instead of queueing behind it (a candle updated again). */
  readonly sameSlot?: (pending: A, next: A) => boolean
  /** queue: how many items a dropped event counts for (trades in a batch); 1 by default. */
  readonly weight?: (a: A) => number
  /** queue: the first event delivered after drops, told how many items were dropped before it. */
  readonly withDropped?: (a: A, dropped: number) => A
  /** A last decision when the event is sent: None skips it, Some may rewrite it. */
  readonly deliver?: (a: A) => Option.Option<A>
}

export interface Lane<A> {
  /** Never blocks: the outbox conflates or drops instead. */
  readonly offer: (a: A) => void
  /** Drops the pending events and detaches the lane. */
  readonly close: () => void
}

export interface OutboxStats {
  readonly pendingEvents: number
  /** Encoded size of the pending events (UTF-16 code units, i.e. bytes for ASCII JSON). */
  readonly pendingBytes: number
  /** Items dropped from queue lanes since the connection opened. */
  readonly dropped: number
  /** Events replaced by a newer one in latest lanes. */
  readonly conflated: number
}

/**
 * The bounded buffer between a connection's subscriptions and its socket. Plain synchronous code: an upstream event
 * reaches every subscriber's outbox in one loop, without a fiber per subscriber.
 */
export interface Outbox {
  readonly lane: <A>(options: LaneOptions<A>) => Lane<A>
  /** Removes and returns the oldest pending event; undefined when there is none (or the outbox overflowed). */
  readonly next: () => Encoded | undefined
  /** No more events will be accepted; what is pending still leaves. */
  readonly end: () => void
  /** Ended (or overflowed) and nothing is pending: the connection is done. */
  readonly done: () => boolean
  readonly stats: () => OutboxStats
}

/** The connection an outbox feeds, called as a method (a connection implements it). */
export interface OutboxOptions {
  /** Pending bytes plus `transportBytes()` beyond which the client counts as hopelessly behind. */
  readonly maxBytes: number
  /** Bytes accepted by the socket but not yet sent. */
  transportBytes(): number
  /** An event became pending, or the outbox ended: the connection should write what it can. */
  onReady(): void
  /** The client fell more than `maxBytes` behind; the outbox has dropped everything and accepts nothing more. */
  onOverflow(): void
  /**
   * For the common case of a client that keeps up: whether an event offered while nothing is pending can be written
   * at once, without queueing (to `write`).
   */
  canWriteNow?(): boolean
  write?(event: Encoded): void
}

interface Item<A> {
  readonly value: A
  readonly encoded: Encoded
  /** Arrival order; a replacement keeps the place of the event it replaces. */
  readonly seq: number
}

const sizeOf = (e: Encoded) => e.data.length

/** What the outbox needs of a lane, whatever its event type. */
interface PendingLane {
  /** Sequence number of the oldest pending event. */
  head(): number | undefined
  /** Removes the oldest pending event; undefined when `deliver` skipped it. */
  shift(): Encoded | undefined
  clear(): void
}

// Lanes and outboxes are classes, not closures: thousands of connections each hold several, and methods on a
// prototype cost nothing per instance.
class LaneImpl<A> implements Lane<A>, PendingLane {
  private items: Array<Item<A>> = []
  private droppedHere = 0
  private closed = false
  readonly capacity: number

  constructor(
    private readonly outbox: OutboxImpl,
    private readonly o: LaneOptions<A>
  ) {
    this.capacity = Math.max(1, o.capacity ?? 1)
  }

  head(): number | undefined {
    return this.items[0]?.seq
  }

  /** The event as it leaves: `deliver` may skip (undefined) or rewrite it; after drops it says how many. */
  private decide(value: A, encoded: Encoded | undefined): Encoded | undefined {
    const o = this.o
    if (o.deliver !== undefined) {
      const decided = o.deliver(value)
      if (Option.isNone(decided)) return undefined
      if (decided.value !== value) {
        value = decided.value
        encoded = undefined
      }
    }
    if (this.droppedHere > 0 && o.withDropped !== undefined) {
      value = o.withDropped(value, this.droppedHere)
      this.droppedHere = 0
      encoded = undefined
    }
    return encoded ?? o.encode(value)
  }

  shift(): Encoded | undefined {
    const item = this.items.shift()
    if (item === undefined) return undefined
    this.outbox.forget(item.encoded)
    return this.decide(item.value, item.encoded)
  }

  clear(): void {
    for (const item of this.items) this.outbox.forget(item.encoded)
    this.items = []
  }

  offer(a: A): void {
    const outbox = this.outbox
    if (this.closed || outbox.ended || outbox.stopped) return
    const options = outbox.options
    // the common case, a client that keeps up: nothing waits ahead of the event and the socket takes it
    if (outbox.pendingEvents === 0 && options.canWriteNow?.() === true && options.write !== undefined) {
      const encoded = this.decide(a, undefined)
      if (encoded !== undefined) options.write(encoded)
      return
    }
    const o = this.o
    const items = this.items
    const last = items.at(-1)
    let place = (outbox.seq += 1)
    if (last !== undefined && (o.mode === "latest" || o.sameSlot?.(last.value, a) === true)) {
      items.pop()
      outbox.forget(last.encoded)
      outbox.conflated += 1
      streamMessagesConflated.unsafeUpdate(1, [])
      place = last.seq
    }
    const encoded = o.encode(a)
    items.push({ value: a, encoded, seq: place })
    outbox.pendingEvents += 1
    outbox.pendingBytes += sizeOf(encoded)
    while (items.length > this.capacity) {
      const oldest = items.shift()
      if (oldest === undefined) break
      outbox.forget(oldest.encoded)
      const weight = o.weight?.(oldest.value) ?? 1
      this.droppedHere += weight
      outbox.dropped += weight
      streamMessagesDropped.unsafeUpdate(weight, [])
    }
    outbox.arrived()
  }

  close(): void {
    this.closed = true
    this.clear()
    this.outbox.detach(this)
  }
}

class OutboxImpl implements Outbox {
  private lanes: Array<PendingLane> = []
  seq = 0
  pendingEvents = 0
  pendingBytes = 0
  dropped = 0
  conflated = 0
  ended = false
  stopped = false

  constructor(readonly options: OutboxOptions) {}

  lane<A>(options: LaneOptions<A>): Lane<A> {
    const lane = new LaneImpl<A>(this, options)
    this.lanes.push(lane)
    return lane
  }

  forget(encoded: Encoded): void {
    this.pendingEvents -= 1
    this.pendingBytes -= sizeOf(encoded)
  }

  detach(lane: PendingLane): void {
    this.lanes = this.lanes.filter((l) => l !== lane)
  }

  /** An event became pending: past the byte cap the client counts as gone, otherwise the connection writes. */
  arrived(): void {
    if (this.pendingBytes + this.options.transportBytes() > this.options.maxBytes) {
      this.stopped = true
      for (const lane of this.lanes) lane.clear()
      this.options.onOverflow()
    } else {
      this.options.onReady()
    }
  }

  /** The lane holding the oldest pending event: events leave in arrival order across lanes. */
  private oldest(): PendingLane | undefined {
    let best: PendingLane | undefined
    let bestSeq = Number.POSITIVE_INFINITY
    for (const lane of this.lanes) {
      const head = lane.head()
      if (head !== undefined && head < bestSeq) {
        best = lane
        bestSeq = head
      }
    }
    return best
  }

  next(): Encoded | undefined {
    while (!this.stopped && this.pendingEvents > 0) {
      const lane = this.oldest()
      if (lane === undefined) return undefined
      const encoded = lane.shift()
      if (encoded !== undefined) return encoded
    }
    return undefined
  }

  end(): void {
    if (this.ended) return
    this.ended = true
    this.options.onReady()
  }

  done(): boolean {
    return this.stopped || (this.ended && this.pendingEvents === 0)
  }

  stats(): OutboxStats {
    return {
      pendingEvents: this.pendingEvents,
      pendingBytes: this.pendingBytes,
      dropped: this.dropped,
      conflated: this.conflated
    }
  }
}

export const makeOutbox = (options: OutboxOptions): Outbox => new OutboxImpl(options)
