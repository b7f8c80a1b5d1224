import { Option } from "effect"
import {
  NotSupported,
  RateLimited,
  SymbolNotFound,
  UpstreamBadResponse,
  type UpstreamError,
  UpstreamTimeout,
  UpstreamUnavailable
} from "../Domain/Errors.js"
import { IntegrityViolation } from "./integrity.js"
import { parseRetryAfter as parseRetryAfterHeader, retryAfterHeader } from "../Resilience/RetryAfter.js"

/** Seconds a client should wait when the upstream gave no hint. */
export const DEFAULT_RETRY_AFTER = 5
/** Binance bans for 2 minutes to 3 days after a 418; without a hint assume the shortest. */
export const DEFAULT_BAN_RETRY_AFTER = 120

export interface ErrorContext {
  readonly exchange: string
  /** The ccxt method that failed, e.g. fetchTicker. */
  readonly method: string
  readonly timeoutMs?: number
}

export interface SymbolErrorContext extends ErrorContext {
  readonly symbol: string
}

/**
 * Names of the classes in an error's prototype chain, most specific first. Matching by name rather than `instanceof`
 * keeps this module free of a static ccxt import (ccxt is imported lazily) and still recognises ccxt's own classes.
 */
export const errorClassChain = (error: unknown): ReadonlyArray<string> => {
  const names: Array<string> = []
  let proto: unknown = typeof error === "object" && error !== null ? Object.getPrototypeOf(error) : null
  while (typeof proto === "object" && proto !== null && proto !== Object.prototype) {
    if ("constructor" in proto && typeof proto.constructor === "function" && proto.constructor.name !== "") {
      names.push(proto.constructor.name)
    }
    proto = Object.getPrototypeOf(proto)
  }
  return names
}

/** HTTP details our handleErrors wrapper attaches to ccxt errors (see ccxtClient.ts). */
export interface HttpMeta {
  readonly httpStatus: number | undefined
  readonly retryAfterMs: number | undefined
}

export const httpMetaOf = (error: unknown): HttpMeta => {
  if (typeof error !== "object" || error === null) return { httpStatus: undefined, retryAfterMs: undefined }
  const httpStatus = "httpStatus" in error && typeof error.httpStatus === "number" ? error.httpStatus : undefined
  const retryAfterMs =
    "retryAfterMs" in error && typeof error.retryAfterMs === "number" && Number.isFinite(error.retryAfterMs)
      ? error.retryAfterMs
      : undefined
  return { httpStatus, retryAfterMs }
}

/** Retry-After as delta-seconds or an HTTP date, in ms from `now` (the server's one parser, src/Resilience). */
export const parseRetryAfter = (value: string, now: number): number | undefined =>
  Option.getOrUndefined(parseRetryAfterHeader(value, now))

/** Binance 418 bodies say `IP banned until 1717999999999`; the ban end as ms from `now`. */
export const parseBannedUntil = (body: string, now: number): number | undefined => {
  const match = /banned until (\d{12,14})/i.exec(body)
  return match?.[1] === undefined ? undefined : Math.max(0, Number(match[1]) - now)
}

/** The wait a failed response asks for, from its headers and body, in ms. */
export const retryAfterMsOf = (
  headers: Readonly<Record<string, unknown>> | undefined,
  body: string,
  now: number
): number | undefined => {
  const header = retryAfterHeader(headers)
  const fromHeader = header === undefined ? undefined : parseRetryAfter(header, now)
  const fromBody = parseBannedUntil(body, now)
  if (fromHeader === undefined) return fromBody
  return fromBody === undefined ? fromHeader : Math.max(fromHeader, fromBody)
}

const toSeconds = (ms: number | undefined, fallback: number): number =>
  ms === undefined ? fallback : Math.max(1, Math.ceil(ms / 1000))

const httpSuffix = (status: number | undefined): string =>
  status === undefined || status < 400 ? "" : ` (HTTP ${status})`

/** Upstream texts that mean "no such market" even when ccxt classifies them as a generic exchange error. */
const SYMBOL_REJECTION =
  /unknown asset pair|invalid asset pair|invalid symbol|unknown symbol|not supported symbols?|instrument id doesn'?t exist|productid is invalid|invalid product_?id|market not found|no such (symbol|market|pair)/i

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "string" ? error : ""

/** Maps a failure of a ccxt call that is not about one symbol to the HTTP-facing error. */
export const mapUpstreamError = (error: unknown, ctx: ErrorContext): UpstreamError => {
  const mapped = classify(error, ctx, undefined)
  return mapped._tag === "SymbolNotFound"
    ? new UpstreamBadResponse({ message: `${ctx.exchange} rejected ${ctx.method}`, source: ctx.exchange })
    : mapped
}

/** Maps a failure of a ccxt call about `ctx.symbol` to the HTTP-facing error. */
export const mapCcxtError = (error: unknown, ctx: SymbolErrorContext): SymbolNotFound | UpstreamError =>
  classify(error, ctx, ctx.symbol)

const classify = (error: unknown, ctx: ErrorContext, symbol: string | undefined): SymbolNotFound | UpstreamError => {
  const source = ctx.exchange
  const chain = errorClassChain(error)
  const is = (name: string): boolean => chain.includes(name)
  const { httpStatus, retryAfterMs } = httpMetaOf(error)
  if (error instanceof IntegrityViolation) {
    return new UpstreamBadResponse({
      message: `${source} sent a bad response to ${ctx.method}: ${error.reason}`,
      source
    })
  }
  const symbolNotFound = (s: string) =>
    new SymbolNotFound({
      message: `Symbol "${s}" is not listed on ${source}.`,
      exchange: source,
      symbol: s,
      suggestions: []
    })

  if (!is("BaseError")) {
    // ccxt lets plain JS errors escape from response parsing (binance throws TypeError on a truncated body)
    return new UpstreamBadResponse({ message: `${source} returned a malformed response to ${ctx.method}`, source })
  }
  if (is("RateLimitExceeded") || is("DDoSProtection")) {
    const banned = httpStatus === 418
    const retryAfter = toSeconds(retryAfterMs, banned ? DEFAULT_BAN_RETRY_AFTER : DEFAULT_RETRY_AFTER)
    if (banned) {
      return new UpstreamUnavailable({
        code: "upstream_banned",
        message: `${source} has temporarily banned this server for exceeding its rate limits (HTTP 418); retry in ${retryAfter} s`,
        source,
        retryAfter
      })
    }
    return new RateLimited({
      code: "upstream_rate_limited",
      message: `${source} is rate limiting this server${httpSuffix(httpStatus)}; retry in ${retryAfter} s`,
      source,
      retryAfter
    })
  }
  if (is("RequestTimeout")) {
    const within = ctx.timeoutMs === undefined ? "" : ` within ${ctx.timeoutMs / 1000} s`
    return new UpstreamTimeout({
      message:
        httpStatus === undefined
          ? `${source} did not answer ${ctx.method}${within}`
          : `${source} reported a gateway timeout${httpSuffix(httpStatus)}`,
      source
    })
  }
  if (is("NetworkError")) {
    const retryAfter = toSeconds(retryAfterMs, DEFAULT_RETRY_AFTER)
    const message = is("OnMaintenance")
      ? `${source} is under maintenance${httpSuffix(httpStatus)}`
      : is("ExchangeNotAvailable")
        ? `${source} is unavailable${httpSuffix(httpStatus)}`
        : `${source} could not be reached${httpSuffix(httpStatus)}`
    return new UpstreamUnavailable({
      code: "upstream_unavailable",
      message: `${message}; retry in ${retryAfter} s`,
      source,
      retryAfter
    })
  }
  if (is("BadResponse")) {
    return new UpstreamBadResponse({
      message: `${source} returned ${is("NullResponse") ? "an empty" : "a malformed"} response to ${ctx.method}`,
      source
    })
  }
  if (is("OperationFailed")) {
    const retryAfter = toSeconds(retryAfterMs, DEFAULT_RETRY_AFTER)
    return new UpstreamUnavailable({
      code: "upstream_unavailable",
      message: `${source} failed to process ${ctx.method}${httpSuffix(httpStatus)}; retry in ${retryAfter} s`,
      source,
      retryAfter
    })
  }
  if (is("NotSupported")) {
    return new NotSupported({
      message: `${source} does not support ${ctx.method}`,
      exchange: source,
      method: ctx.method
    })
  }
  if (is("ExchangeClosedByUser")) {
    return new UpstreamUnavailable({
      code: "upstream_unavailable",
      message: `${source} connection is shutting down; retry in ${DEFAULT_RETRY_AFTER} s`,
      source,
      retryAfter: DEFAULT_RETRY_AFTER
    })
  }
  if (symbol !== undefined && (is("BadSymbol") || SYMBOL_REJECTION.test(messageOf(error)))) {
    return symbolNotFound(symbol)
  }
  if (httpStatus !== undefined && httpStatus >= 500) {
    // binance answers an overload with 503 and a JSON body that ccxt raises as a plain ExchangeError
    const retryAfter = toSeconds(retryAfterMs, DEFAULT_RETRY_AFTER)
    return new UpstreamUnavailable({
      code: "upstream_unavailable",
      message: `${source} failed${httpSuffix(httpStatus)}; retry in ${retryAfter} s`,
      source,
      retryAfter
    })
  }
  if (is("AuthenticationError")) {
    return new UpstreamBadResponse({
      message: `${source} refused ${ctx.method} as unauthorized${httpSuffix(httpStatus)}`,
      source
    })
  }
  return new UpstreamBadResponse({ message: `${source} rejected ${ctx.method}${httpSuffix(httpStatus)}`, source })
}
