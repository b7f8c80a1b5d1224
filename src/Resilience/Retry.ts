import { Duration, Schedule } from "effect"
import type { MarketError } from "../Domain/Errors.js"

/** The retry knobs of AppConfig (AppConfigShape satisfies this). */
export interface RetrySettings {
  readonly maxRetries: number
  readonly initialBackoff: Duration.DurationInput
  readonly maxBackoff: Duration.DurationInput
  readonly backoffMultiplier: number
}

/** What the policy needs to know about one failure. */
export interface RetryVerdict {
  readonly retryable: boolean
  /** The wait the upstream asked for (Retry-After), in ms; the next attempt waits at least this long. */
  readonly retryAfterMs?: number | undefined
}

/**
 * The wait policy of every retry and reconnect: initialBackoff × multiplier^(n-1) for the n-th wait, jittered
 * ×[0.8, 1.2] and capped at maxBackoff. Unbounded: callers that give up add their own limit.
 */
export const backoffSchedule = (settings: Omit<RetrySettings, "maxRetries">): Schedule.Schedule<Duration.Duration> => {
  const cap = Duration.decode(settings.maxBackoff)
  return Schedule.exponential(settings.initialBackoff, settings.backoffMultiplier).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((_, delay) => Duration.min(delay, cap))
  )
}

/**
 * At most `maxRetries` retries of failures `classify` calls retryable. The n-th wait is
 * initialBackoff × multiplier^(n-1), jittered ×[0.8, 1.2] and capped at maxBackoff, and never shorter than the
 * failure's Retry-After. A Retry-After longer than maxBackoff is not waited for: a client request sitting on an
 * upstream's quota window helps nobody, so the caller gets the failure at once (and the Retry-After with it).
 */
export const retryPolicy = <E>(
  settings: RetrySettings,
  classify: (error: E) => RetryVerdict
): Schedule.Schedule<unknown, E> => {
  const capMs = Duration.toMillis(Duration.decode(settings.maxBackoff))
  return backoffSchedule(settings).pipe(
    Schedule.intersect(Schedule.recurs(settings.maxRetries)),
    Schedule.intersect(Schedule.identity<E>()),
    Schedule.whileInput((error: E) => {
      const verdict = classify(error)
      return verdict.retryable && (verdict.retryAfterMs === undefined || verdict.retryAfterMs <= capMs)
    }),
    Schedule.modifyDelay(([, error], delay) => {
      const after = classify(error).retryAfterMs
      return after === undefined ? delay : Duration.max(delay, Duration.millis(after))
    })
  )
}

/**
 * Exchange failures worth another attempt: network trouble and 5xx (upstream_unavailable), timeouts and 429s. A ban
 * (418) is not retried: it opens the circuit. Bad payloads are not retried either; ccxt parses the same bytes the same
 * way, and the mapped error cannot tell a cut-off body from an exchange that answers with an error page.
 *
 * Only a 429's Retry-After is honoured here. The retryAfter of upstream_unavailable is a hint for our clients that
 * defaults to 5 s when the exchange sent none; waiting for it on every 5xx would multiply a request's latency.
 */
export const classifyMarketError = (error: MarketError): RetryVerdict => {
  switch (error._tag) {
    case "RateLimited":
      return { retryable: error.code === "upstream_rate_limited", retryAfterMs: error.retryAfter * 1000 }
    case "UpstreamUnavailable":
      return { retryable: error.code === "upstream_unavailable" }
    case "UpstreamTimeout":
      return { retryable: true }
    default:
      return { retryable: false }
  }
}
