import { Option } from "effect"

/** RETRY_AFTER_MAX's default: no upstream pauses this server for longer than a minute on one answer. */
export const DEFAULT_RETRY_AFTER_MAX_MS = 60_000

/**
 * The one Retry-After parser of the server (exchanges and CoinMarketCap): delta-seconds or an HTTP-date, as ms from
 * `nowMs`; a past date means 0. Anything else (negative numbers, `1e3`, words) is no hint at all.
 */
export const parseRetryAfter = (value: string | undefined, nowMs: number): Option.Option<number> => {
  if (value === undefined) return Option.none()
  const text = value.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Option.some(Math.round(Number(text) * 1000))
  // Date.parse would also take bare numbers like "-5" or "1e3"; an HTTP-date always names a weekday or month
  if (!/[a-z]/i.test(text)) return Option.none()
  const at = Date.parse(text)
  return Number.isNaN(at) ? Option.none() : Option.some(Math.max(0, at - nowMs))
}

/** The Retry-After header of a header record whose names may be in any case. */
export const retryAfterHeader = (headers: Readonly<Record<string, unknown>> | undefined): string | undefined => {
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (key.toLowerCase() === "retry-after" && typeof value === "string") return value
  }
  return undefined
}

/** A wait an upstream asked for, bounded by RETRY_AFTER_MAX: `Retry-After: 100000` must not silence an exchange for a day. */
export const capRetryAfterMs = (ms: number, maxMs: number): number => Math.max(0, Math.min(ms, maxMs))
