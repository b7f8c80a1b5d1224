import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option, Redacted } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { AppConfig } from "../AppConfig.js"
import { Unauthorized } from "../Domain/Errors.js"
import { DOCS_PATHS } from "./Docs.js"
import { RateLimiter } from "./RateLimit.js"
import { errorResponse, withHeaders } from "./Responses.js"

/** Routes anyone may call: liveness probes and the API documentation. */
const PUBLIC_PATHS: ReadonlySet<string> = new Set(["/v1/health", "/openapi.json", ...Object.values(DOCS_PATHS)])

const digest = (value: string) => createHash("sha256").update(value).digest()

/** A short, non-reversible id of a key for logs and rate-limit buckets; the key itself is never stored. */
export const keyId = (key: string): string => digest(key).toString("hex").slice(0, 12)

export const presentedKey = (headers: Readonly<Record<string, string | undefined>>): string | undefined => {
  const header = headers["x-api-key"]?.trim()
  if (header !== undefined && header.length > 0) return header
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers["authorization"] ?? "")
  return match?.[1]
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

const pathOf = (url: string) => url.split("?")[0] ?? "/"

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

const clientAddress = (request: HttpServerRequest.HttpServerRequest, trustProxy: boolean): string =>
  addressOf(Option.getOrUndefined(request.remoteAddress), request.headers["x-forwarded-for"], trustProxy)

/** The rate-limit bucket of a request: its API key when keys are configured, else its address. */
export const clientOf = (key: string | undefined, authRequired: boolean, address: string): string =>
  authRequired && key !== undefined ? `key:${keyId(key)}` : `ip:${address}`

/** Whether a path is exempt from the rate limit (liveness, docs and the metrics scrape). */
export const isUnlimited = (path: string): boolean => PUBLIC_PATHS.has(path) || path === "/metrics"

/**
 * API-key authentication (when API_KEYS is set) and the inbound rate limit per client (API key if present, else
 * IP).
 */
export const makeSecurity = Effect.gen(function* () {
  const config = yield* AppConfig
  const rateLimit = yield* RateLimiter
  const authRequired = config.apiKeys.length > 0
  const checkKey = makeKeyCheck(config.apiKeys)

  return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = pathOf(request.url)
      if (PUBLIC_PATHS.has(path) || request.method === "OPTIONS") return yield* app

      const key = presentedKey(request.headers)
      if (authRequired && (key === undefined || !checkKey(key))) {
        return HttpServerResponse.setHeader(
          errorResponse(
            new Unauthorized({
              message:
                key === undefined
                  ? "An API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>"
                  : "The API key is not valid"
            })
          ),
          "www-authenticate",
          'Bearer realm="mcp-crypto-data-server"'
        )
      }
      if (!rateLimit.enabled || isUnlimited(path)) return yield* app

      const decision = yield* rateLimit.check(clientOf(key, authRequired, clientAddress(request, config.trustProxy)))
      if (!decision.allowed) return yield* rateLimit.rejected(decision)
      return withHeaders(yield* app, decision.headers)
    })
})
