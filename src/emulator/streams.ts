/** Cursors that turn the model into push streams: what is new since the previous push. */

import type { Bucket } from "./intervals.js"
import type { RawCandle, RawTrade, Series } from "./model.js"

/** Delivers each trade once; while the clock is frozen it repeats the last trade so watchers still resolve. */
export class TradeCursor {
  private nextSecond: number | undefined
  private last: RawTrade | undefined

  constructor(private readonly series: Series) {}

  /** The latest `count` trades, and start streaming after them. */
  snapshot(now: number, count: number): RawTrade[] {
    const second = Math.floor(now / 1000)
    const trades = this.series.tradesBefore(second, count)
    this.nextSecond = second
    this.last = trades.at(-1) ?? this.last
    return trades
  }

  poll(now: number, frozen: boolean): RawTrade[] {
    const second = Math.floor(now / 1000)
    if (this.nextSecond === undefined) return this.snapshot(now, 1)
    if (second < this.nextSecond) {
      // the clock was set back: restart from there instead of replaying history
      this.nextSecond = second
      return []
    }
    if (second > this.nextSecond) {
      const trades = this.series.tradesBetween(this.nextSecond, second)
      this.nextSecond = second
      if (trades.length > 0) {
        this.last = trades.at(-1)
        return trades
      }
    }
    return frozen && this.last !== undefined ? [this.last] : []
  }
}

/** Pushes the current candle each time; when a bucket ends, its final (closed) version goes out first. */
export class CandleCursor {
  private currentStart: number | undefined

  constructor(
    private readonly series: Series,
    readonly bucket: Bucket
  ) {}

  recent(now: number, count: number): RawCandle[] {
    const candles = this.series.latestCandles(this.bucket, count, now)
    this.currentStart = candles.at(-1)?.start
    return candles
  }

  poll(now: number): RawCandle[] {
    const current = this.series.latestCandles(this.bucket, 1, now)[0]
    if (current === undefined) return []
    const previousStart = this.currentStart
    this.currentStart = current.start
    if (previousStart !== undefined && current.start > previousStart) {
      const closed = this.series.candles(this.bucket, previousStart, 1, now)[0]
      if (closed !== undefined && closed.start === previousStart) return [closed, current]
    }
    return [current]
  }
}
