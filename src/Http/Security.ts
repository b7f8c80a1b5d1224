import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Metric, Option, Redacted } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { AppConfig } from "../AppConfig.js"
import { KvCache } from "../Cache/KvCache.js"
import { RateLimited, Unauthorized } from "../Domain/Errors.js"
import { rateLimitRejections } from "../Metrics.js"
import { errorResponse } from "./Responses.js"

/** Routes anyone may call: liveness probes and the API documentation. */
const PUBLIC_PATHS: ReadonlySet<string> = new Set([
  "/v1/health",
  "/docs",
  "/redoc",
  "/redoc/redoc.standalone.js",
  "/openapi.json"
])

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

const clientAddress = (request: HttpServerRequest.HttpServerRequest, trustProxy: boolean): string => {
  if (trustProxy) {
    const forwarded = request.headers["x-forwarded-for"]?.split(",")[0]?.trim()
    if (forwarded !== undefined && forwarded.length > 0) return forwarded
  }
  return Option.getOrElse(request.remoteAddress, () => "unknown")
}

/**
 * API-key authentication (when API_KEYS is set) and the inbound rate limit per client (API key if present, else
 * IP), counted in Redis when it is enabled so the limit holds across instances.
 */
export const makeSecurity = Effect.gen(function* () {
  const config = yield* AppConfig
  const kv = yield* KvCache
  const authRequired = config.apiKeys.length > 0
  const checkKey = makeKeyCheck(config.apiKeys)
  const limit = config.rateLimitRequests
  const window = config.rateLimitWindow
  const windowSeconds = Math.max(1, Math.ceil(Duration.toSeconds(window)))
  const policy = `${limit};w=${windowSeconds}`

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
      if (!config.rateLimitEnabled || path === "/metrics") return yield* app

      const client =
        authRequired && key !== undefined ? `key:${keyId(key)}` : `ip:${clientAddress(request, config.trustProxy)}`
      const { count, resetInMs } = yield* kv.increment(`ratelimit:${client}`, window)
      const reset = Math.max(1, Math.ceil(resetInMs / 1000))
      const headers = {
        "ratelimit-limit": String(limit),
        "ratelimit-remaining": String(Math.max(0, limit - count)),
        "ratelimit-reset": String(reset),
        "ratelimit-policy": policy
      }
      if (count > limit) {
        yield* Metric.increment(rateLimitRejections)
        return HttpServerResponse.setHeaders(
          errorResponse(
            new RateLimited({
              code: "rate_limited",
              message: `Rate limit of ${limit} requests per ${windowSeconds} s exceeded; retry in ${reset} s`,
              retryAfter: reset
            })
          ),
          headers
        )
      }
      return HttpServerResponse.setHeaders(yield* app, headers)
    })
})
