import { Headers, HttpClient, HttpClientRequest } from "@effect/platform"
import type { HttpClientError, HttpClientResponse } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Clock, Duration, Effect, Either, Option, Predicate, Redacted, Schema } from "effect"
import { AppConfig } from "../AppConfig.js"
import {
  CmcBadRequest,
  CmcBadResponse,
  type CmcError,
  CmcNotConfigured,
  CmcRateLimited,
  CmcSymbolNotFound,
  CmcTimeout,
  CmcUnauthorized,
  CmcUnavailable,
  isRetryable
} from "./Errors.js"
import { CmcCoin, CmcConvertQuote, CmcErrorEnvelope, CmcQuote, CmcQuotesEnvelope } from "./Model.js"
import { cmcRetryPolicy, defaultRetryAfterMs, parseRetryAfter } from "./Retry.js"

const KEY_HEADER = "X-CMC_PRO_API_KEY"

export interface CmcService {
  /** False when CMC_API_KEY is unset: every call then fails with CmcNotConfigured without touching the network. */
  readonly configured: boolean
  /** Latest quotes of several symbols in one currency, in one HTTP request, in the order asked (deduplicated). */
  readonly quotes: (symbols: ReadonlyArray<string>, convert: string) => Effect.Effect<ReadonlyArray<CmcQuote>, CmcError>
  readonly quote: (symbol: string, convert: string) => Effect.Effect<CmcQuote, CmcError>
}

const snippet = (body: string): string => {
  const flat = body.replace(/\s+/g, " ").trim()
  return flat.length > 120 ? `${flat.slice(0, 120)}…` : flat
}

const decodeJson = (body: string): Either.Either<unknown, string> =>
  Either.try({ try: (): unknown => JSON.parse(body), catch: (e) => (e instanceof Error ? e.message : String(e)) })

const upstreamError = (body: string): { readonly code: number | null; readonly text: string | null } =>
  Either.flatMap(decodeJson(body), Schema.decodeUnknownEither(CmcErrorEnvelope)).pipe(
    Either.match({
      onLeft: () => ({ code: null, text: null }),
      onRight: ({ status }) => ({ code: status.error_code ?? null, text: status.error_message ?? null })
    })
  )

const INVALID_SYMBOLS = /Invalid values? for "symbol": "([^"]*)"/i

const normalizeSymbols = (symbols: ReadonlyArray<string>): ReadonlyArray<string> =>
  Array.from(
    new Set(
      symbols
        .flatMap((s) => s.split(","))
        .map((s) => s.trim().toUpperCase())
        .filter((s) => s.length > 0)
    )
  )

export class Cmc extends Effect.Service<Cmc>()("app/Cmc", {
  effect: Effect.gen(function* () {
    const config = yield* AppConfig
    const apiKey = config.cmcApiKey
    const timeoutMs = Duration.toMillis(config.cmcTimeout)
    const retryPolicy = cmcRetryPolicy(config)
    const endpoint = `${config.cmcApiUrl}/cryptocurrency/quotes/latest`
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(HttpClientRequest.acceptJson),
      // trace ids are ours; no reason to hand them to a third party
      HttpClient.withTracerPropagation(false)
    )

    // CMC and the network stack could echo anything back; make sure it is never the key
    const hideKey = (text: string): string =>
      Option.match(apiKey, {
        onNone: () => text,
        onSome: (key) => text.split(Redacted.value(key)).join("<redacted>")
      })

    const describe = (status: number, code: number | null, text: string | null): string => {
      const parts = [`HTTP ${status}`, code === null ? null : `error ${code}`].filter(Predicate.isNotNull).join(", ")
      return hideKey(text === null || text === "" ? parts : `${parts}: ${text}`)
    }

    const fromStatus = (
      response: HttpClientResponse.HttpClientResponse,
      body: string
    ): Effect.Effect<CmcQuotesEnvelope, CmcError> => {
      const status = response.status
      if (status === 200) return decodeEnvelope(response, body)
      const { code, text } = upstreamError(body)
      if (status === 401 || status === 402 || status === 403) {
        return Effect.fail(
          new CmcUnauthorized({
            status,
            errorCode: code,
            message: `CoinMarketCap refused the API key or plan (${describe(status, code, text)})`
          })
        )
      }
      if (status === 429) {
        return Clock.currentTimeMillis.pipe(
          Effect.flatMap((now) => {
            const retryAfterMs = parseRetryAfter(response.headers["retry-after"], now).pipe(
              Option.getOrElse(() => defaultRetryAfterMs(code, now))
            )
            return Effect.fail(
              new CmcRateLimited({
                errorCode: code,
                retryAfterMs,
                message: `CoinMarketCap rate limit hit, retry after ${Math.ceil(retryAfterMs / 1000)} s (${describe(status, code, text)})`
              })
            )
          })
        )
      }
      if (status >= 500) {
        return Effect.fail(
          new CmcUnavailable({ status, message: `CoinMarketCap is unavailable (${describe(status, code, text)})` })
        )
      }
      if (status === 400) {
        const invalid = text === null ? null : INVALID_SYMBOLS.exec(text)
        if (invalid !== null) {
          const symbols = normalizeSymbols([invalid[1] ?? ""])
          return Effect.fail(
            new CmcSymbolNotFound({
              symbols,
              message: hideKey(`CoinMarketCap does not know the symbol(s) ${symbols.join(", ")}`)
            })
          )
        }
        return Effect.fail(
          new CmcBadRequest({
            status,
            errorCode: code,
            message: `CoinMarketCap rejected the request (${describe(status, code, text)})`
          })
        )
      }
      return Effect.fail(
        new CmcBadResponse({
          status,
          message: `CoinMarketCap answered with an unexpected status (${describe(status, code, text)})`
        })
      )
    }

    const decodeEnvelope = (
      response: HttpClientResponse.HttpClientResponse,
      body: string
    ): Effect.Effect<CmcQuotesEnvelope, CmcBadResponse> => {
      const bad = (what: string) =>
        new CmcBadResponse({ status: response.status, message: hideKey(`CoinMarketCap answered HTTP 200 ${what}`) })
      return decodeJson(body).pipe(
        Either.mapLeft(() => {
          const type = response.headers["content-type"] ?? "no content-type"
          return bad(`with a body that is not JSON (${type}): ${snippet(body)}`)
        }),
        Either.flatMap((json) =>
          Schema.decodeUnknownEither(CmcQuotesEnvelope)(json).pipe(
            Either.mapLeft((e) => bad(`with an unexpected envelope: ${e.message}`))
          )
        ),
        Either.flatMap((envelope) =>
          envelope.status.error_code === 0
            ? Either.right(envelope)
            : Either.left(
                bad(`with error ${envelope.status.error_code}: ${envelope.status.error_message ?? "no message"}`)
              )
        )
      )
    }

    const attempt = (
      key: Redacted.Redacted<string>,
      symbols: ReadonlyArray<string>,
      convert: string
    ): Effect.Effect<CmcQuotesEnvelope, CmcError> => {
      // literal commas, as in CMC's own examples
      const url = `${endpoint}?symbol=${symbols.map(encodeURIComponent).join(",")}&convert=${encodeURIComponent(convert)}`
      return client.get(url, { headers: { [KEY_HEADER]: Redacted.value(key) } }).pipe(
        Effect.mapError(
          (e) =>
            new CmcUnavailable({
              status: e._tag === "ResponseError" ? e.response.status : null,
              message: hideKey(`CoinMarketCap could not be reached (${transportDetail(e)})`)
            })
        ),
        Effect.flatMap((response) =>
          response.text.pipe(
            Effect.mapError(
              (e) =>
                new CmcUnavailable({
                  status: response.status,
                  message: hideKey(
                    `CoinMarketCap's answer was cut off (HTTP ${response.status}, ${transportDetail(e)})`
                  )
                })
            ),
            Effect.flatMap((body) => fromStatus(response, body))
          )
        ),
        Effect.timeoutFail({
          duration: config.cmcTimeout,
          onTimeout: () => new CmcTimeout({ timeoutMs, message: `CoinMarketCap did not answer within ${timeoutMs} ms` })
        }),
        // HttpClient spans record request headers; keep the key out of traces
        Effect.locallyWith(Headers.currentRedactedNames, (names) => [...names, KEY_HEADER.toLowerCase()])
      )
    }

    const toQuote = (
      data: CmcQuotesEnvelope["data"],
      symbol: string,
      convert: string
    ): Either.Either<CmcQuote, CmcBadResponse> => {
      const raw = data[symbol]
      const bad = (what: string) =>
        new CmcBadResponse({ status: 200, message: hideKey(`CoinMarketCap sent ${what} for ${symbol}`) })
      if (!Predicate.isRecord(raw)) return Either.left(bad("no coin object"))
      return Schema.decodeUnknownEither(CmcCoin)(raw).pipe(
        Either.mapLeft((e) => bad(`an unexpected coin object (${e.message})`)),
        Either.flatMap((coin) => {
          const perConvert = coin.quote[convert]
          if (perConvert === undefined) return Either.left(bad(`no ${convert} quote`))
          return Schema.decodeUnknownEither(CmcConvertQuote)(perConvert).pipe(
            Either.mapLeft((e) => bad(`an unexpected ${convert} quote (${e.message})`)),
            Either.map(
              (q) =>
                new CmcQuote({
                  symbol,
                  name: coin.name,
                  convert,
                  price: q.price,
                  volume24h: q.volume_24h,
                  percentChange1h: q.percent_change_1h,
                  percentChange24h: q.percent_change_24h,
                  marketCap: q.market_cap,
                  lastUpdated: q.last_updated.getTime(),
                  raw
                })
            )
          )
        })
      )
    }

    const quotes = Effect.fn("Cmc.quotes")(function* (symbols: ReadonlyArray<string>, convert: string) {
      if (Option.isNone(apiKey)) {
        return yield* new CmcNotConfigured({ message: "CoinMarketCap is not configured: set CMC_API_KEY" })
      }
      const wanted = normalizeSymbols(symbols)
      const target = convert.trim().toUpperCase()
      if (wanted.length === 0) {
        return yield* new CmcBadRequest({ status: null, errorCode: null, message: "No symbol to quote" })
      }
      if (target.length === 0 || target.includes(",")) {
        return yield* new CmcBadRequest({
          status: null,
          errorCode: null,
          message: `Expected one currency to convert to, got ${JSON.stringify(convert)}`
        })
      }
      yield* Effect.annotateCurrentSpan({ "cmc.symbols": wanted.join(","), "cmc.convert": target })
      const envelope = yield* attempt(apiKey.value, wanted, target).pipe(
        Effect.tapError((e) =>
          isRetryable(e)
            ? Effect.logWarning(e.message).pipe(Effect.annotateLogs({ source: "cmc", error: e._tag }))
            : Effect.void
        ),
        Effect.retry(retryPolicy)
      )
      const missing = wanted.filter((s) => !Object.hasOwn(envelope.data, s))
      if (missing.length > 0) {
        return yield* new CmcSymbolNotFound({
          symbols: missing,
          message: hideKey(`CoinMarketCap does not know the symbol(s) ${missing.join(", ")}`)
        })
      }
      const out: Array<CmcQuote> = []
      for (const symbol of wanted) out.push(yield* toQuote(envelope.data, symbol, target))
      return out
    })

    const quote = Effect.fn("Cmc.quote")(function* (symbol: string, convert: string) {
      if (symbol.includes(",")) {
        return yield* new CmcBadRequest({
          status: null,
          errorCode: null,
          message: `Expected one symbol, got ${JSON.stringify(symbol)}`
        })
      }
      const [first] = yield* quotes([symbol], convert)
      if (first === undefined) {
        return yield* new CmcBadRequest({ status: null, errorCode: null, message: "No symbol to quote" })
      }
      return first
    })

    const service: CmcService = { configured: Option.isSome(apiKey), quotes, quote }
    return service
  }),
  dependencies: [NodeHttpClient.layerUndici]
}) {}

const transportDetail = (error: HttpClientError.HttpClientError): string => {
  const cause: unknown = error.cause
  if (cause instanceof Error) {
    const inner: unknown = cause.cause
    return inner instanceof Error ? `${cause.message}: ${inner.message}` : cause.message
  }
  return error.description ?? error.reason
}
