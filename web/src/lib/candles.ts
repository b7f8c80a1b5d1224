import type { Candle } from "./types.js"

/**
 * Merges candles into a series sorted by open time: newer ones are appended, older ones (history pages) inserted, and
 * for a timestamp held already `prefer` decides: a stream update ("incoming", the open candle moving) replaces it, a
 * REST history that arrives after the first stream events ("held") does not overwrite them. Returns the input array
 * itself when nothing changed.
 */
export const mergeCandles = (
  series: ReadonlyArray<Candle>,
  incoming: ReadonlyArray<Candle>,
  prefer: "incoming" | "held" = "incoming"
): ReadonlyArray<Candle> => {
  if (incoming.length === 0) return series
  const last = series[series.length - 1]
  // the common live case: one update of the open candle or the next one
  if (incoming.length === 1 && last !== undefined && prefer === "incoming") {
    const candle = incoming[0] as Candle
    if (candle.timestamp === last.timestamp) {
      return sameCandle(candle, last) ? series : [...series.slice(0, -1), candle]
    }
    if (candle.timestamp > last.timestamp) return [...series, candle]
  }
  const byTime = new Map<number, Candle>()
  for (const c of series) byTime.set(c.timestamp, c)
  for (const c of incoming) if (prefer === "incoming" || !byTime.has(c.timestamp)) byTime.set(c.timestamp, c)
  return [...byTime.values()].sort((a, b) => a.timestamp - b.timestamp)
}

const sameCandle = (a: Candle, b: Candle): boolean =>
  a.open === b.open && a.high === b.high && a.low === b.low && a.close === b.close && a.volume === b.volume

/** Candle interval in milliseconds: "1m" → 60000, "4h", "1d", "1w"; "1M" is a 30-day month. */
export const intervalMs = (interval: string): number | null => {
  const match = /^(\d+)([smhdwM])$/.exec(interval)
  if (match === null) return null
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, M: 2_592_000_000 }[
    match[2] as "s" | "m" | "h" | "d" | "w" | "M"
  ]
  return Number(match[1]) * unit
}

/** The `since` of the page of `limit` candles that ends just before the oldest one held. */
export const olderPageSince = (oldest: number, interval: string, limit: number): number | null => {
  const ms = intervalMs(interval)
  return ms === null ? null : oldest - ms * limit
}

/** Chart time (seconds, as lightweight-charts wants UTCTimestamp) of a candle. */
export const chartTime = (candle: Candle): number => Math.floor(candle.timestamp / 1000)
