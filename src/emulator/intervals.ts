/** Candle bucket arithmetic: fixed-length buckets aligned to an epoch offset, or calendar months. */

export type Bucket =
  { readonly kind: "fixed"; readonly ms: number; readonly offsetMs: number } | { readonly kind: "month" }

export const SECOND = 1000
export const MINUTE = 60 * SECOND
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR
export const WEEK = 7 * DAY
/** 1970-01-05 was the first Monday after the (Thursday) epoch. */
const MONDAY_OFFSET = 4 * DAY

export const fixedBucket = (ms: number, offsetMs = 0): Bucket => ({ kind: "fixed", ms, offsetMs })

const UNIT_MS: Readonly<Record<string, number>> = { s: SECOND, m: MINUTE, h: HOUR, d: DAY }

/** ccxt/binance timeframe string → bucket; weeks start on Monday, "1M" is a calendar month. */
export const timeframeBucket = (timeframe: string): Bucket | undefined => {
  if (timeframe === "1M") return { kind: "month" }
  const match = /^(\d+)([smhdw])$/.exec(timeframe)
  if (match === null) return undefined
  const n = Number(match[1])
  const unit = match[2] ?? ""
  if (!(n > 0)) return undefined
  if (unit === "w") return fixedBucket(n * WEEK, MONDAY_OFFSET)
  const unitMs = UNIT_MS[unit]
  return unitMs === undefined ? undefined : fixedBucket(n * unitMs)
}

export const bucketStart = (t: number, bucket: Bucket): number => {
  if (bucket.kind === "month") {
    const d = new Date(t)
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
  }
  return Math.floor((t - bucket.offsetMs) / bucket.ms) * bucket.ms + bucket.offsetMs
}

export const bucketEnd = (start: number, bucket: Bucket): number => {
  if (bucket.kind === "month") {
    const d = new Date(start)
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
  }
  return start + bucket.ms
}

/** Start of the bucket `count` buckets before the one starting at `start` (count may be 0). */
export const bucketBack = (start: number, bucket: Bucket, count: number): number => {
  if (bucket.kind === "month") {
    const d = new Date(start)
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - count, 1)
  }
  return start - count * bucket.ms
}
