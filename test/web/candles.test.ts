import { describe, expect, it } from "vitest"
import { chartTime, intervalMs, mergeCandles, olderPageSince } from "../../web/src/lib/candles.js"
import type { Candle } from "../../web/src/lib/types.js"

const candle = (minute: number, close: number, volume = 1): Candle => ({
  timestamp: minute * 60_000,
  open: 100,
  high: Math.max(100, close),
  low: Math.min(100, close),
  close,
  volume
})

describe("candle merging", () => {
  const history = [candle(1, 101), candle(2, 102), candle(3, 103)]

  it("replaces the open candle when it moves", () => {
    const merged = mergeCandles(history, [candle(3, 104, 2)])
    expect(merged).toEqual([candle(1, 101), candle(2, 102), candle(3, 104, 2)])
  })

  it("appends the next candle after the closed one", () => {
    const merged = mergeCandles(history, [candle(4, 99)])
    expect(merged.map((c) => c.timestamp)).toEqual([60_000, 120_000, 180_000, 240_000])
    expect(merged[3]).toEqual(candle(4, 99))
  })

  it("returns the same array when an update changes nothing", () => {
    expect(mergeCandles(history, [candle(3, 103)])).toBe(history)
    expect(mergeCandles(history, [])).toBe(history)
  })

  it("inserts older pages in front, sorted and without duplicates", () => {
    const merged = mergeCandles(history, [candle(0, 90), candle(-1, 80), candle(1, 101)])
    expect(merged.map((c) => c.timestamp / 60_000)).toEqual([-1, 0, 1, 2, 3])
  })

  it("keeps a live candle that arrived before the history", () => {
    const live = mergeCandles([], [candle(3, 105)])
    expect(mergeCandles(live, history, "held")).toEqual([candle(1, 101), candle(2, 102), candle(3, 105)])
    expect(mergeCandles(live, history, "incoming")).toEqual(history)
  })
})

describe("intervals", () => {
  it("converts candle intervals to milliseconds", () => {
    expect(intervalMs("1m")).toBe(60_000)
    expect(intervalMs("15m")).toBe(900_000)
    expect(intervalMs("4h")).toBe(14_400_000)
    expect(intervalMs("1d")).toBe(86_400_000)
    expect(intervalMs("1w")).toBe(604_800_000)
    expect(intervalMs("1M")).toBe(2_592_000_000)
    expect(intervalMs("soon")).toBeNull()
  })

  it("pages older candles ending before the oldest held", () => {
    expect(olderPageSince(10 * 60_000, "1m", 5)).toBe(5 * 60_000)
    expect(olderPageSince(0, "bad", 5)).toBeNull()
  })

  it("gives lightweight-charts seconds", () => {
    expect(chartTime(candle(2, 1))).toBe(120)
  })
})
