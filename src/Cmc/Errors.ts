import { Data } from "effect"

/** No CMC_API_KEY is configured; nothing was sent. */
export class CmcNotConfigured extends Data.TaggedError("CmcNotConfigured")<{
  readonly message: string
}> {}

/** CMC rejected the key or the plan (HTTP 401/402/403, error codes 1001-1007). Not retried. */
export class CmcUnauthorized extends Data.TaggedError("CmcUnauthorized")<{
  readonly status: number
  readonly errorCode: number | null
  readonly message: string
}> {}

/** CMC answered 429 (error codes 1008-1011). `retryAfterMs` comes from Retry-After or a per-code default. */
export class CmcRateLimited extends Data.TaggedError("CmcRateLimited")<{
  readonly errorCode: number | null
  readonly retryAfterMs: number
  readonly message: string
}> {}

/** CMC answered 5xx, or the request never got an answer (`status` null: connection refused, reset, DNS). */
export class CmcUnavailable extends Data.TaggedError("CmcUnavailable")<{
  readonly status: number | null
  readonly message: string
}> {}

/** One attempt took longer than CMC_TIMEOUT. */
export class CmcTimeout extends Data.TaggedError("CmcTimeout")<{
  readonly timeoutMs: number
  readonly message: string
}> {}

/** The request was invalid (bad convert, empty symbol list, or a CMC 400 not about symbols). */
export class CmcBadRequest extends Data.TaggedError("CmcBadRequest")<{
  readonly status: number | null
  readonly errorCode: number | null
  readonly message: string
}> {}

/** CMC does not know these symbols (omitted from `data`, or a 400 `Invalid value for "symbol"`). */
export class CmcSymbolNotFound extends Data.TaggedError("CmcSymbolNotFound")<{
  readonly symbols: ReadonlyArray<string>
  readonly message: string
}> {}

/** CMC answered with something we cannot use: not JSON, HTML, wrong shape, no quote for the convert. */
export class CmcBadResponse extends Data.TaggedError("CmcBadResponse")<{
  readonly status: number | null
  readonly message: string
}> {}

export type CmcError =
  | CmcNotConfigured
  | CmcUnauthorized
  | CmcRateLimited
  | CmcUnavailable
  | CmcTimeout
  | CmcBadRequest
  | CmcSymbolNotFound
  | CmcBadResponse

export type CmcRetryableError = CmcRateLimited | CmcUnavailable | CmcTimeout

export const isRetryable = (error: CmcError): error is CmcRetryableError =>
  error._tag === "CmcRateLimited" || error._tag === "CmcUnavailable" || error._tag === "CmcTimeout"
