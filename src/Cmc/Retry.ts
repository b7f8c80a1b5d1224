import { Duration, Option, Schedule } from "effect"
import { type CmcError, isRetryable } from "./Errors.js"

/** The retry knobs of AppConfig (AppConfigShape satisfies this). */
export interface CmcRetrySettings {
  readonly maxRetries: number
  readonly initialBackoff: Duration.DurationInput
  readonly maxBackoff: Duration.DurationInput
  readonly backoffMultiplier: number
}

/**
 * Retries CmcRateLimited, CmcUnavailable and CmcTimeout, at most `maxRetries` times. The n-th wait is
 * initialBackoff × multiplier^(n-1), jittered ×[0.8, 1.2] and capped at maxBackoff; after a 429 it is at least
 * Retry-After. A 429 asking for a longer wait than maxBackoff is not retried: sitting on a request for a daily or
 * monthly quota reset helps nobody, so the caller gets CmcRateLimited with `retryAfterMs` at once.
 */
export const cmcRetryPolicy = (settings: CmcRetrySettings): Schedule.Schedule<unknown, CmcError> => {
  const cap = Duration.decode(settings.maxBackoff)
  const capMs = Duration.toMillis(cap)
  return Schedule.exponential(settings.initialBackoff, settings.backoffMultiplier).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((_, delay) => Duration.min(delay, cap)),
    Schedule.intersect(Schedule.recurs(settings.maxRetries)),
    Schedule.intersect(Schedule.identity<CmcError>()),
    Schedule.whileInput(
      (error: CmcError) => isRetryable(error) && !(error._tag === "CmcRateLimited" && error.retryAfterMs > capMs)
    ),
    Schedule.modifyDelay(([, error], delay) =>
      error._tag === "CmcRateLimited" ? Duration.max(delay, Duration.millis(error.retryAfterMs)) : delay
    )
  )
}

/** Retry-After as milliseconds from `nowMs`: delta-seconds or an HTTP-date (a past date means 0). */
export const parseRetryAfter = (value: string | undefined, nowMs: number): Option.Option<number> => {
  if (value === undefined) return Option.none()
  const text = value.trim()
  if (/^\d+(\.\d+)?$/.test(text)) return Option.some(Math.round(Number(text) * 1000))
  // Date.parse would also take bare numbers like "-5" or "1e3"; an HTTP-date always names a weekday or month
  if (!/[a-z]/i.test(text)) return Option.none()
  const at = Date.parse(text)
  return Number.isNaN(at) ? Option.none() : Option.some(Math.max(0, at - nowMs))
}

const MINUTE_MS = 60_000

/**
 * How long to back off after a 429 without a usable Retry-After: 1008 is a per-minute limit; 1009 and 1010 reset at
 * the next UTC day and month (CMC's billing calendar); 1011 (IP limit) and unknown codes get a minute.
 */
export const defaultRetryAfterMs = (errorCode: number | null, nowMs: number): number => {
  const now = new Date(nowMs)
  switch (errorCode) {
    case 1009:
      return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) - nowMs
    case 1010:
      return Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1) - nowMs
    default:
      return MINUTE_MS
  }
}
