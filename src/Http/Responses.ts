import { HttpApiSchema, HttpServerResponse } from "@effect/platform"
import { Duration, Schema } from "effect"
import type { CachedResponse } from "../Cache/ResponseCache.js"
import { ApiError } from "../Domain/Errors.js"

const encodeApiError = Schema.encodeSync(ApiError)
const statusByTag = new Map<string, number>(
  ApiError.members.map((member) => [member._tag, HttpApiSchema.getStatusError(member)] as const)
)

export const statusOf = (error: ApiError): number => statusByTag.get(error._tag) ?? 500

/** The JSON error response of an API error, with Retry-After where the error says when to retry. */
export const errorResponse = (error: ApiError): HttpServerResponse.HttpServerResponse => {
  const headers: Record<string, string> = { "cache-control": "no-store" }
  if ("retryAfter" in error) headers["retry-after"] = String(Math.max(1, Math.ceil(error.retryAfter)))
  return HttpServerResponse.text(JSON.stringify(encodeApiError(error)), {
    status: statusOf(error),
    contentType: "application/json",
    headers
  })
}

/**
 * A cached market response: the stored body as is, plus Cache-Control, Age (seconds since it was fetched upstream)
 * and X-Cache (HIT, MISS, or STALE when the upstream failed and an older answer is served instead). A stale answer
 * gets max-age=0 so that no cache downstream keeps it as fresh.
 */
export const cachedResponse = (
  cached: CachedResponse,
  ttl: Duration.Duration
): HttpServerResponse.HttpServerResponse => {
  const ttlSeconds = Math.floor(Duration.toSeconds(ttl))
  const response = HttpServerResponse.text(cached.body, {
    contentType: "application/json",
    headers: {
      "cache-control":
        cached.state === "STALE"
          ? "public, max-age=0, must-revalidate"
          : `public, max-age=${Math.max(0, ttlSeconds - cached.age)}`,
      age: String(cached.age),
      "x-cache": cached.state
    }
  })
  if (cached.state !== "STALE") freshness.set(response, { storedAt: cached.storedAt, ttlMs: Duration.toMillis(ttl) })
  return response
}

/** When a fresh cached response was fetched and how long it stays fresh; what the hot cache needs to reuse it. */
const freshness = new WeakMap<
  HttpServerResponse.HttpServerResponse,
  { readonly storedAt: number; readonly ttlMs: number }
>()

export const freshnessOf = (response: HttpServerResponse.HttpServerResponse) => freshness.get(response)

/** Adds headers to a response; a fresh cached answer stays one. */
export const withHeaders = (
  response: HttpServerResponse.HttpServerResponse,
  headers: Readonly<Record<string, string>>
): HttpServerResponse.HttpServerResponse => {
  const updated = HttpServerResponse.setHeaders(response, headers)
  const fresh = freshness.get(response)
  if (fresh !== undefined) freshness.set(updated, fresh)
  return updated
}
