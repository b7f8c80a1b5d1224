import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Either, Option, Redacted } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { AppConfig } from "../AppConfig.js"
import { Unauthorized } from "../Domain/Errors.js"
import { RateLimiter } from "./RateLimit.js"
import { errorResponse, withHeaders } from "./Responses.js"
import { isUnlimited, pathOf, PUBLIC_PATHS, STREAM_ROUTE_PATHS } from "./RouteTable.js"

const digest = (value: string) => createHash("sha256").update(value).digest()

/** A short, non-reversible id of a key for logs and rate-limit buckets; the key itself is never stored. */
export const keyId = (key: string): string => digest(key).toString("hex").slice(0, 12)

export const presentedKey = (headers: Readonly<Record<string, string | undefined>>): string | undefined => {
  const header = headers["x-api-key"]?.trim()
  if (header !== undefined && header.length > 0) return header
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers["authorization"] ?? "")
  return match?.[1]
}

const STREAM_PATHS: ReadonlySet<string> = new Set(STREAM_ROUTE_PATHS)

/**
 * The `api_key` query parameter of a stream route: EventSource and WebSocket cannot send headers, so a browser can
 * only stream with the key in the URL. Other routes take headers only. The URL is never logged with its query.
 */
export const queryKey = (url: string): string | undefined => {
  const at = url.indexOf("?")
  if (at < 0 || !STREAM_PATHS.has(url.slice(0, at))) return undefined
  const key = new URLSearchParams(url.slice(at + 1)).get("api_key")?.trim()
  return key === undefined || key.length === 0 ? undefined : key
}

/** Checks a presented key against every configured key in constant time (no early exit, equal-length digests). */
export const makeKeyCheck = (keys: ReadonlyArray<Redacted.Redacted<string>>) => {
  const digests = keys.map((key) => digest(Redacted.value(key)))
  return (presented: string): boolean => {
    const candidate = digest(presented)
    let match = false
    for (const d of digests) match = timingSafeEqual(d, candidate) || match
    return match
  }
}

/** The client address: the socket's, or the first X-Forwarded-For entry behind a trusted proxy. */
export const addressOf = (
  remote: string | undefined,
  forwardedFor: string | undefined,
  trustProxy: boolean
): string => {
  if (trustProxy) {
    const forwarded = forwardedFor?.split(",")[0]?.trim()
    if (forwarded !== undefined && forwarded.length > 0) return forwarded
  }
  return remote ?? "unknown"
}

/** The rate-limit bucket of a request: its API key when keys are configured, else its address. */
export const clientOf = (key: string | undefined, authRequired: boolean, address: string): string =>
  authRequired && key !== undefined ? `key:${keyId(key)}` : `ip:${address}`

/** What admission looks at: the request without its body; headers are read only when a decision needs them. */
export interface AdmissionRequest {
  readonly method: string
  readonly path: string
  readonly header: (name: "x-api-key" | "authorization" | "x-forwarded-for") => string | undefined
  readonly remoteAddress: string | undefined
  /** The key of a stream route's `api_key` query parameter (see queryKey), used when no header carries one. */
  readonly queryKey?: string | undefined
}

/** Admitted, with the headers to add to the answer (the rate-limit state), or refused with this response. */
export type AdmissionDecision = Either.Either<Readonly<Record<string, string>>, HttpServerResponse.HttpServerResponse>

const NO_HEADERS: Readonly<Record<string, string>> = {}
const admitted = Either.right(NO_HEADERS)

/**
 * The admission policy of every request, whichever path serves it (the global middleware, the stream gateway): API
 * keys (when API_KEYS is set) and the inbound rate limit per client (API key if present, else IP).
 */
export const makeAdmission = Effect.gen(function* () {
  const config = yield* AppConfig
  const rateLimit = yield* RateLimiter
  const authRequired = config.apiKeys.length > 0
  const checkKey = makeKeyCheck(config.apiKeys)

  return (request: AdmissionRequest): Effect.Effect<AdmissionDecision> =>
    Effect.gen(function* () {
      const path = request.path
      if (PUBLIC_PATHS.has(path) || request.method === "OPTIONS") return admitted

      const key =
        presentedKey({
          "x-api-key": request.header("x-api-key"),
          authorization: request.header("authorization")
        }) ?? request.queryKey
      if (authRequired && (key === undefined || !checkKey(key))) {
        return Either.left(
          HttpServerResponse.setHeader(
            errorResponse(
              new Unauthorized({
                message:
                  key === undefined
                    ? "An API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>" +
                      (request.queryKey === undefined && STREAM_PATHS.has(path)
                        ? " (or, on stream routes, as the api_key query parameter)"
                        : "")
                    : "The API key is not valid"
              })
            ),
            "www-authenticate",
            'Bearer realm="mcp-crypto-data-server"'
          )
        )
      }
      if (!rateLimit.enabled || isUnlimited(path)) return admitted

      const address = addressOf(request.remoteAddress, request.header("x-forwarded-for"), config.trustProxy)
      const decision = yield* rateLimit.check(clientOf(key, authRequired, address))
      if (!decision.allowed) return Either.left(yield* rateLimit.rejected(decision))
      return Either.right(decision.headers)
    })
})

/** The admission policy as middleware: a refused request gets its refusal, an admitted one the rate-limit headers. */
export const makeSecurity = Effect.map(
  makeAdmission,
  (admit) =>
    <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const decision = yield* admit({
          method: request.method,
          path: pathOf(request.url),
          header: (name) => request.headers[name],
          remoteAddress: Option.getOrUndefined(request.remoteAddress),
          queryKey: queryKey(request.url)
        })
        if (Either.isLeft(decision)) return decision.left
        const response = yield* app
        return decision.right === NO_HEADERS ? response : withHeaders(response, decision.right)
      })
)
