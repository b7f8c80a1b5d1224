/** Deterministic order books around the last traded price, their diffs, and the per-market update sequence. */

import { pow10 } from "./format.js"
import type { MarketSpec } from "./markets.js"
import { hash, unit } from "./random.js"

/** [price in ticks, size in lot units]; a size of 0 in a diff removes the level. */
export type Level = readonly [number, number]

export interface BookLevels {
  readonly bids: ReadonlyArray<Level>
  readonly asks: ReadonlyArray<Level>
}

export const BOOK_LEVELS = 200

const TWO_POW_32 = 4294967296

const levelUnits = (spec: MarketSpec, seedKey: number, ticks: number, second: number): number => {
  const h = hash(seedKey, ticks, 12)
  // each level refreshes on its own period so consecutive books differ in a few sizes, not all of them
  const period = 2 + (h % 29)
  const phase = (h >>> 8) % period
  const epoch = Math.floor((second + phase) / period)
  const u = unit(hash(seedKey, ticks, 13, epoch))
  let size = spec.levelSize * (0.05 + 1.9 * u * u)
  if ((h >>> 20) % 97 === 0) size *= 12
  return Math.max(1, Math.round(size * pow10(spec.amountDecimals)))
}

/**
 * Levels sit on a fixed, hashed subset of price ticks, so they persist while the price moves through them;
 * asks start strictly above and bids strictly below the last trade, which keeps the book uncrossed.
 */
export const generateBook = (
  spec: MarketSpec,
  seedKey: number,
  lastTicks: number,
  second: number,
  levels: number
): BookLevels => {
  const threshold = spec.bookDensity * TWO_POW_32
  const asks: Level[] = []
  const bids: Level[] = []
  for (let p = lastTicks + 1; asks.length < levels; p++) {
    if (hash(seedKey, p, 11) < threshold) asks.push([p, levelUnits(spec, seedKey, p, second)])
  }
  for (let p = lastTicks - 1; bids.length < levels && p > 0; p--) {
    if (hash(seedKey, p, 11) < threshold) bids.push([p, levelUnits(spec, seedKey, p, second)])
  }
  return { bids, asks }
}

export const truncateBook = (book: BookLevels, depth: number): BookLevels => ({
  bids: book.bids.slice(0, depth),
  asks: book.asks.slice(0, depth)
})

const diffSide = (before: ReadonlyArray<Level>, after: ReadonlyArray<Level>): Level[] => {
  const previous = new Map<number, number>(before)
  const out: Level[] = []
  for (const [price, size] of after) {
    if (previous.get(price) !== size) out.push([price, size])
    previous.delete(price)
  }
  for (const price of previous.keys()) out.push([price, 0])
  return out
}

export interface BookChanges {
  readonly bids: ReadonlyArray<Level>
  readonly asks: ReadonlyArray<Level>
}

export const diffBooks = (before: BookLevels, after: BookLevels): BookChanges => ({
  bids: diffSide(before.bids, after.bids),
  asks: diffSide(before.asks, after.asks)
})

export const changeCount = (changes: BookChanges): number => changes.bids.length + changes.asks.length

export interface BookState {
  readonly id: number
  readonly second: number
  readonly book: BookLevels
}

export interface BookEvent {
  readonly previousId: number
  readonly id: number
  readonly time: number
  readonly changes: BookChanges
  readonly book: BookLevels
  /** True when nothing changed and the best levels are only re-sent (frozen clock). */
  readonly heartbeat: boolean
}

export type BookListener = (event: BookEvent) => void

/**
 * The shared book of one market: REST snapshots and WebSocket diffs both read this state, and every
 * transition is broadcast, so a REST snapshot always lines up with the diff stream (binance U/u sync).
 */
export class BookFeed {
  private state: BookState | undefined
  private readonly listeners = new Set<BookListener>()

  constructor(private readonly bookAt: (second: number) => BookLevels) {}

  get listenerCount(): number {
    return this.listeners.size
  }

  subscribe(listener: BookListener): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  /** Current state at model time `now`, advancing (and broadcasting) when the model second changed. */
  current(now: number): BookState {
    const second = Math.floor(now / 1000)
    const state = this.state
    if (state === undefined) {
      const fresh = { id: (second - 1_000_000_000) * 60, second, book: this.bookAt(second) }
      this.state = fresh
      return fresh
    }
    if (state.second === second) return state
    const book = this.bookAt(second)
    const changes = diffBooks(state.book, book)
    const next = { id: state.id + Math.max(1, changeCount(changes)), second, book }
    this.state = next
    this.emit({ previousId: state.id, id: next.id, time: now, changes, book, heartbeat: false })
    return next
  }

  /** Re-sends the unchanged best levels as a new update so that watchers resolve while the clock is frozen. */
  heartbeat(now: number): void {
    const state = this.current(now)
    const bestBid = state.book.bids[0]
    const bestAsk = state.book.asks[0]
    const changes: BookChanges = {
      bids: bestBid === undefined ? [] : [bestBid],
      asks: bestAsk === undefined ? [] : [bestAsk]
    }
    const next = { ...state, id: state.id + 1 }
    this.state = next
    this.emit({ previousId: state.id, id: next.id, time: now, changes, book: state.book, heartbeat: true })
  }

  private emit(event: BookEvent): void {
    for (const listener of [...this.listeners]) listener(event)
  }
}
