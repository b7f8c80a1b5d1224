import { Effect, Metric } from "effect"
import type { CmcError } from "../Cmc/Errors.js"
import type { ApiError } from "../Domain/Errors.js"
import { upstreamCalls, upstreamErrors } from "../Metrics.js"

/** Failures of the upstream itself, as opposed to a question it cannot answer (unknown symbol, bad parameter). */
export const isUpstreamFailure = (error: ApiError): boolean => {
  switch (error._tag) {
    case "UpstreamUnavailable":
    case "UpstreamTimeout":
    case "UpstreamBadResponse":
      return true
    case "RateLimited":
      return error.code === "upstream_rate_limited"
    default:
      return false
  }
}

const cmcOk = Metric.tagged(
  Metric.tagged(Metric.tagged(upstreamCalls, "source", "coinmarketcap"), "method", "quotes"),
  "outcome",
  "ok"
)
const cmcFailed = Metric.tagged(
  Metric.tagged(Metric.tagged(upstreamCalls, "source", "coinmarketcap"), "method", "quotes"),
  "outcome",
  "error"
)

/** Counts one logical CMC quote call (its retries included) in the upstream metrics. */
export const observeCmc = <A>(call: Effect.Effect<A, CmcError>): Effect.Effect<A, CmcError> =>
  call.pipe(
    Effect.tapBoth({
      onSuccess: () => Metric.increment(cmcOk),
      onFailure: (error) =>
        Effect.zipRight(
          Metric.increment(cmcFailed),
          Metric.increment(
            Metric.tagged(
              Metric.tagged(Metric.tagged(upstreamErrors, "source", "coinmarketcap"), "method", "quotes"),
              "code",
              error._tag
            )
          )
        )
    })
  )
