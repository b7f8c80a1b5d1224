import { Option } from "effect"
import { streamMessagesConflated, streamMessagesDropped } from "../Metrics.js"

/** An event ready for the wire: its type (the SSE event name) and its JSON. */
export interface Encoded {
  readonly event: string
  readonly data: string
  /** The data as bytes, made once by the first WebSocket that sends it and reused by the others. */
  bytes?: Buffer
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

export interface OutboxOptions {
  /** Pending bytes plus `transportBytes()` beyond which the client counts as hopelessly behind. */
  readonly maxBytes: number
  /** Bytes accepted by the socket but not yet sent. */
  readonly transportBytes: () => number
  /** An event became pending, or the outbox ended: the connection should write what it can. */
  readonly onReady: () => void
  /** The client fell more than `maxBytes` behind; the outbox has dropped everything and accepts nothing more. */
  readonly onOverflow: () => void
}

interface Item<A> {
  readonly value: A
  readonly encoded: Encoded
  /** Arrival order; a replacement keeps the place of the event it replaces. */
  readonly seq: number
}

interface LaneState {
  /** Sequence number of the oldest pending event. */
  readonly head: () => number | undefined
  /** Removes the oldest pending event; undefined when `deliver` skipped it. */
  readonly shift: () => Encoded | undefined
  readonly clear: () => void
}

const sizeOf = (e: Encoded) => e.data.length

export const makeOutbox = (options: OutboxOptions): Outbox => {
  const ready = new Set<LaneState>()
  let seq = 0
  let pendingEvents = 0
  let pendingBytes = 0
  let dropped = 0
  let conflated = 0
  let ended = false
  let stopped = false

  const stop = () => {
    stopped = true
    for (const lane of ready) lane.clear()
    ready.clear()
    options.onOverflow()
  }

  const lane = <A>(o: LaneOptions<A>): Lane<A> => {
    const capacity = Math.max(1, o.capacity ?? 1)
    let items: Array<Item<A>> = []
    let droppedHere = 0
    let closed = false
    const forget = (item: Item<A>) => {
      pendingEvents -= 1
      pendingBytes -= sizeOf(item.encoded)
    }
    const state: LaneState = {
      head: () => items[0]?.seq,
      shift: () => {
        const item = items.shift()
        if (item === undefined) return undefined
        forget(item)
        if (items.length === 0) ready.delete(state)
        let value = item.value
        let encoded: Encoded | undefined = item.encoded
        if (o.deliver !== undefined) {
          const decided = o.deliver(value)
          if (Option.isNone(decided)) return undefined
          if (decided.value !== value) {
            value = decided.value
            encoded = undefined
          }
        }
        if (droppedHere > 0 && o.withDropped !== undefined) {
          value = o.withDropped(value, droppedHere)
          droppedHere = 0
          encoded = undefined
        }
        return encoded ?? o.encode(value)
      },
      clear: () => {
        for (const item of items) forget(item)
        items = []
      }
    }
    const offer = (a: A) => {
      if (closed || ended || stopped) return
      const last = items.at(-1)
      let place = (seq += 1)
      if (last !== undefined && (o.mode === "latest" || o.sameSlot?.(last.value, a) === true)) {
        items.pop()
        forget(last)
        conflated += 1
        streamMessagesConflated.unsafeUpdate(1, [])
        place = last.seq
      }
      const item: Item<A> = { value: a, encoded: o.encode(a), seq: place }
      items.push(item)
      pendingEvents += 1
      pendingBytes += sizeOf(item.encoded)
      while (items.length > capacity) {
        const oldest = items.shift()
        if (oldest === undefined) break
        forget(oldest)
        const weight = o.weight?.(oldest.value) ?? 1
        droppedHere += weight
        dropped += weight
        streamMessagesDropped.unsafeUpdate(weight, [])
      }
      ready.add(state)
      if (pendingBytes + options.transportBytes() > options.maxBytes) stop()
      else options.onReady()
    }
    return {
      offer,
      close: () => {
        closed = true
        state.clear()
        ready.delete(state)
      }
    }
  }

  /** The lane holding the oldest pending event: events leave in arrival order across lanes. */
  const oldest = (): LaneState | undefined => {
    let best: LaneState | undefined
    let bestSeq = Number.POSITIVE_INFINITY
    for (const state of ready) {
      const head = state.head()
      if (head !== undefined && head < bestSeq) {
        best = state
        bestSeq = head
      }
    }
    return best
  }

  const next = (): Encoded | undefined => {
    while (!stopped) {
      const state = oldest()
      if (state === undefined) return undefined
      const encoded = state.shift()
      if (encoded !== undefined) return encoded
    }
    return undefined
  }

  return {
    lane,
    next,
    end: () => {
      if (ended) return
      ended = true
      options.onReady()
    },
    done: () => stopped || (ended && pendingEvents === 0),
    stats: () => ({ pendingEvents, pendingBytes, dropped, conflated })
  }
}
