import type { Schedule } from "effect"
import { type RetrySettings, retryPolicy } from "../Resilience/Retry.js"
import { type CmcError, isRetryable } from "./Errors.js"

/** The retry knobs of AppConfig (AppConfigShape satisfies this). */
export type CmcRetrySettings = RetrySettings

/**
 * Retries CmcRateLimited, CmcUnavailable and CmcTimeout with the shared upstream policy (src/Resilience/Retry.ts): at
 * most `maxRetries` times, exponential from initialBackoff, jittered, capped at maxBackoff, at least Retry-After after a
 * 429. A 429 asking for a longer wait than maxBackoff is not retried: sitting on a request for a daily or monthly quota
 * reset helps nobody, so the caller gets CmcRateLimited with `retryAfterMs` at once.
 */
export const cmcRetryPolicy = (settings: CmcRetrySettings): Schedule.Schedule<unknown, CmcError> =>
  retryPolicy(settings, (error: CmcError) => ({
    retryable: isRetryable(error),
    retryAfterMs: error._tag === "CmcRateLimited" ? error.retryAfterMs : undefined
  }))

/** The server's one Retry-After parser (src/Resilience/RetryAfter.ts). */
export { parseRetryAfter } from "../Resilience/RetryAfter.js"

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
