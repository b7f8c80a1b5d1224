import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

const RetryAfter = Schema.Number.annotations({
  description: "Seconds to wait before retrying (also sent as Retry-After)"
})

export class InvalidParameter extends Schema.TaggedError<InvalidParameter>()(
  "InvalidParameter",
  { code: Schema.tag("invalid_parameter"), message: Schema.String, parameter: Schema.optional(Schema.String) },
  HttpApiSchema.annotations({ status: 400, description: "A query parameter is missing or invalid" })
) {}

export class UnknownExchange extends Schema.TaggedError<UnknownExchange>()(
  "UnknownExchange",
  {
    code: Schema.tag("unknown_exchange"),
    message: Schema.String,
    exchange: Schema.String,
    suggestions: Schema.Array(Schema.String),
    enabled: Schema.Array(Schema.String)
  },
  HttpApiSchema.annotations({ status: 400, description: "The exchange id is unknown or not enabled" })
) {}

export class UnsupportedInterval extends Schema.TaggedError<UnsupportedInterval>()(
  "UnsupportedInterval",
  {
    code: Schema.tag("unsupported_interval"),
    message: Schema.String,
    interval: Schema.String,
    supported: Schema.Array(Schema.String)
  },
  HttpApiSchema.annotations({ status: 400, description: "The exchange does not offer this candle interval" })
) {}

export class SymbolNotFound extends Schema.TaggedError<SymbolNotFound>()(
  "SymbolNotFound",
  {
    code: Schema.tag("symbol_not_found"),
    message: Schema.String,
    exchange: Schema.String,
    symbol: Schema.String,
    suggestions: Schema.Array(Schema.String)
  },
  HttpApiSchema.annotations({ status: 404, description: "The exchange does not list this symbol" })
) {}

export class RouteNotFound extends Schema.TaggedError<RouteNotFound>()(
  "RouteNotFound",
  { code: Schema.tag("not_found"), message: Schema.String },
  HttpApiSchema.annotations({ status: 404, description: "No such route" })
) {}

export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { code: Schema.tag("unauthorized"), message: Schema.String },
  HttpApiSchema.annotations({ status: 401, description: "API keys are configured and none, or a wrong one, was sent" })
) {}

export class RateLimited extends Schema.TaggedError<RateLimited>()(
  "RateLimited",
  {
    code: Schema.Literal("rate_limited", "upstream_rate_limited"),
    message: Schema.String,
    retryAfter: RetryAfter,
    source: Schema.optional(Schema.String)
  },
  HttpApiSchema.annotations({
    status: 429,
    description: "Too many requests: from this client (rate_limited) or to the exchange (upstream_rate_limited)"
  })
) {}

export class NotSupported extends Schema.TaggedError<NotSupported>()(
  "NotSupported",
  { code: Schema.tag("not_supported"), message: Schema.String, exchange: Schema.String, method: Schema.String },
  HttpApiSchema.annotations({ status: 501, description: "The exchange does not support this method" })
) {}

export class UpstreamBadResponse extends Schema.TaggedError<UpstreamBadResponse>()(
  "UpstreamBadResponse",
  { code: Schema.tag("bad_upstream_response"), message: Schema.String, source: Schema.String },
  HttpApiSchema.annotations({ status: 502, description: "The upstream answered with a malformed or empty payload" })
) {}

export class UpstreamUnavailable extends Schema.TaggedError<UpstreamUnavailable>()(
  "UpstreamUnavailable",
  {
    code: Schema.Literal("upstream_unavailable", "upstream_banned"),
    message: Schema.String,
    source: Schema.String,
    retryAfter: RetryAfter
  },
  HttpApiSchema.annotations({
    status: 503,
    description:
      "The upstream is unreachable or failing (upstream_unavailable), or has banned us for a while (upstream_banned)"
  })
) {}

export class UpstreamTimeout extends Schema.TaggedError<UpstreamTimeout>()(
  "UpstreamTimeout",
  { code: Schema.tag("upstream_timeout"), message: Schema.String, source: Schema.String },
  HttpApiSchema.annotations({ status: 504, description: "The upstream did not answer in time" })
) {}

export class InternalError extends Schema.TaggedError<InternalError>()(
  "InternalError",
  { code: Schema.tag("internal_error"), message: Schema.String },
  HttpApiSchema.annotations({ status: 500, description: "Unexpected server error" })
) {}

/** Errors any upstream market-data call can end with. */
export type UpstreamError = UpstreamBadResponse | UpstreamUnavailable | UpstreamTimeout | NotSupported | RateLimited

/** Errors of a market-data request about one symbol on one exchange. */
export type MarketError = UnknownExchange | SymbolNotFound | InvalidParameter | UnsupportedInterval | UpstreamError

export const ApiError = Schema.Union(
  InvalidParameter,
  UnknownExchange,
  UnsupportedInterval,
  SymbolNotFound,
  RouteNotFound,
  Unauthorized,
  RateLimited,
  NotSupported,
  UpstreamBadResponse,
  UpstreamUnavailable,
  UpstreamTimeout,
  InternalError
)
export type ApiError = typeof ApiError.Type
