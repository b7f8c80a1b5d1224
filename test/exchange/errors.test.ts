import ccxt from "ccxt"
import { describe, expect, it } from "vitest"
import {
  errorClassChain,
  mapCcxtError,
  mapUpstreamError,
  parseBannedUntil,
  parseRetryAfter,
  retryAfterMsOf
} from "../../src/Exchange/errors.js"

const ctx = { exchange: "binance", method: "fetchTicker", symbol: "BTC/USDT", timeoutMs: 10_000 }

/** A real ccxt error as our handleErrors wrapper leaves it. */
const withMeta = <E extends Error>(error: E, httpStatus?: number, retryAfterMs?: number): E =>
  Object.assign(error, { httpStatus, retryAfterMs })

const URL_TEXT = "binance GET https://api.binance.com/api/v3/ticker/24hr?symbol=BTCUSDT"

describe("mapCcxtError", () => {
  it("reads the class chain of real ccxt errors", () => {
    expect(errorClassChain(new ccxt.OnMaintenance("x"))).toEqual([
      "OnMaintenance",
      "ExchangeNotAvailable",
      "NetworkError",
      "OperationFailed",
      "BaseError",
      "Error"
    ])
  })

  it.each([
    [
      "BadSymbol",
      new ccxt.BadSymbol("binance does not have market symbol BTC/USDT"),
      {
        _tag: "SymbolNotFound",
        code: "symbol_not_found",
        exchange: "binance",
        symbol: "BTC/USDT",
        suggestions: [],
        message: 'Symbol "BTC/USDT" is not listed on binance.'
      }
    ],
    [
      "DDoSProtection 429 + Retry-After",
      withMeta(new ccxt.DDoSProtection(`${URL_TEXT} 429 Too Many Requests`), 429, 7000),
      {
        _tag: "RateLimited",
        code: "upstream_rate_limited",
        retryAfter: 7,
        source: "binance",
        message: "binance is rate limiting this server (HTTP 429); retry in 7 s"
      }
    ],
    [
      "DDoSProtection 418 without a hint",
      withMeta(new ccxt.DDoSProtection(`${URL_TEXT} 418`), 418),
      {
        _tag: "UpstreamUnavailable",
        code: "upstream_banned",
        retryAfter: 120,
        message: "binance has temporarily banned this server for exceeding its rate limits (HTTP 418); retry in 120 s"
      }
    ],
    [
      "RateLimitExceeded in a 200 body, 1.2 s wait",
      withMeta(new ccxt.RateLimitExceeded('kraken {"error":["EAPI:Rate limit exceeded"]}'), 200, 1200),
      {
        code: "upstream_rate_limited",
        retryAfter: 2,
        message: "binance is rate limiting this server; retry in 2 s"
      }
    ],
    [
      "RateLimitExceeded without meta",
      new ccxt.RateLimitExceeded("x"),
      { code: "upstream_rate_limited", retryAfter: 5 }
    ],
    [
      "RequestTimeout",
      new ccxt.RequestTimeout(`${URL_TEXT} request timed out (10000 ms)`),
      {
        _tag: "UpstreamTimeout",
        code: "upstream_timeout",
        source: "binance",
        message: "binance did not answer fetchTicker within 10 s"
      }
    ],
    [
      "RequestTimeout from a 504",
      withMeta(new ccxt.RequestTimeout(`${URL_TEXT} 504 Gateway Timeout`), 504),
      { _tag: "UpstreamTimeout", message: "binance reported a gateway timeout (HTTP 504)" }
    ],
    [
      "ExchangeNotAvailable 503 + Retry-After 30",
      withMeta(new ccxt.ExchangeNotAvailable(`${URL_TEXT} 503`), 503, 30_000),
      {
        _tag: "UpstreamUnavailable",
        code: "upstream_unavailable",
        retryAfter: 30,
        message: "binance is unavailable (HTTP 503); retry in 30 s"
      }
    ],
    [
      "OnMaintenance",
      new ccxt.OnMaintenance("okx 50001"),
      { code: "upstream_unavailable", retryAfter: 5, message: "binance is under maintenance; retry in 5 s" }
    ],
    [
      "NetworkError",
      new ccxt.NetworkError("binance GET fetch failed: connect ECONNREFUSED 127.0.0.1:1"),
      { code: "upstream_unavailable", retryAfter: 5, message: "binance could not be reached; retry in 5 s" }
    ],
    [
      "BadResponse",
      new ccxt.BadResponse("garbage"),
      {
        _tag: "UpstreamBadResponse",
        code: "bad_upstream_response",
        message: "binance returned a malformed response to fetchTicker"
      }
    ],
    [
      "NullResponse",
      new ccxt.NullResponse("empty"),
      { _tag: "UpstreamBadResponse", message: "binance returned an empty response to fetchTicker" }
    ],
    [
      "plain TypeError from parsing",
      new TypeError("Cannot use 'in' operator to search for 'time' in {\"symbol"),
      { _tag: "UpstreamBadResponse", message: "binance returned a malformed response to fetchTicker" }
    ],
    [
      "OperationFailed (binance -1001 internal error)",
      withMeta(new ccxt.OperationFailed('binance {"code":-1001}'), 500),
      {
        _tag: "UpstreamUnavailable",
        code: "upstream_unavailable",
        message: "binance failed to process fetchTicker (HTTP 500); retry in 5 s"
      }
    ],
    [
      "NotSupported",
      new ccxt.NotSupported("binance fetchTicker() is not supported yet"),
      { _tag: "NotSupported", code: "not_supported", exchange: "binance", method: "fetchTicker" }
    ],
    [
      "BadRequest about the pair",
      new ccxt.BadRequest('kraken {"error":["EQuery:Unknown asset pair"]}'),
      { _tag: "SymbolNotFound", symbol: "BTC/USDT" }
    ],
    [
      "ExchangeError about the pair",
      new ccxt.ExchangeError('kraken {"error":["EQuery:Unknown asset pair"]}'),
      { _tag: "SymbolNotFound", symbol: "BTC/USDT" }
    ],
    [
      "BadRequest about something else",
      withMeta(new ccxt.BadRequest(`${URL_TEXT} {"code":-1100,"msg":"Illegal characters found in a parameter."}`), 400),
      { _tag: "UpstreamBadResponse", message: "binance rejected fetchTicker (HTTP 400)" }
    ],
    [
      "ExchangeError 503 (binance -1008 overloaded)",
      withMeta(new ccxt.ExchangeError('binance {"code":-1008,"msg":"Server is currently overloaded"}'), 503),
      {
        _tag: "UpstreamUnavailable",
        code: "upstream_unavailable",
        retryAfter: 5,
        message: "binance failed (HTTP 503); retry in 5 s"
      }
    ],
    [
      "AuthenticationError",
      withMeta(new ccxt.AuthenticationError("binance 401"), 401),
      { _tag: "UpstreamBadResponse", message: "binance refused fetchTicker as unauthorized (HTTP 401)" }
    ],
    [
      "ExchangeClosedByUser",
      new ccxt.ExchangeClosedByUser("binance closedByUser"),
      { _tag: "UpstreamUnavailable", code: "upstream_unavailable", retryAfter: 5 }
    ]
  ])("maps %s", (_name, error, expected) => {
    const mapped = mapCcxtError(error, ctx)
    expect(mapped).toMatchObject(expected)
    // messages are ours: no upstream URLs, bodies or stack traces
    expect(mapped.message).not.toMatch(/https?:\/\/|\{|\bat /)
  })

  it("never produces SymbolNotFound without a symbol", () => {
    expect(mapUpstreamError(new ccxt.BadSymbol("x"), { exchange: "kraken", method: "loadMarkets" })).toMatchObject({
      _tag: "UpstreamBadResponse",
      message: "kraken rejected loadMarkets"
    })
  })
})

describe("Retry-After parsing", () => {
  const now = Date.UTC(2024, 5, 10, 6, 0, 0)

  it("reads delta seconds and HTTP dates", () => {
    expect(parseRetryAfter("7", now)).toBe(7000)
    expect(parseRetryAfter("0.5", now)).toBe(500)
    expect(parseRetryAfter("Mon, 10 Jun 2024 06:00:30 GMT", now)).toBe(30_000)
    expect(parseRetryAfter("soon", now)).toBeUndefined()
  })

  it("reads a binance ban end from the body", () => {
    expect(
      parseBannedUntil(`{"code":-1003,"msg":"Way too much request weight used; IP banned until ${now + 90_000}."}`, now)
    ).toBe(90_000)
    expect(parseBannedUntil('{"code":-1003}', now)).toBeUndefined()
  })

  it("takes the longer of header and ban", () => {
    const body = `IP banned until ${now + 90_000}`
    expect(retryAfterMsOf({ "Retry-After": "7" }, body, now)).toBe(90_000)
    expect(retryAfterMsOf({ "retry-after": "7" }, "", now)).toBe(7000)
    expect(retryAfterMsOf(undefined, "", now)).toBeUndefined()
  })
})
