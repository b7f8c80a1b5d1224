import type { HttpServerRequest } from "@effect/platform"
import { Option, Redacted } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import type { IncomingMessage } from "node:http"
import { isStreamRoute, isUnlimited, labelOf, pathOf, PUBLIC_PATHS, queryOf } from "./RouteTable.js"

const digest = (value: string) => createHash("sha256").update(value).digest()

const idOf = (hash: Buffer): string => hash.toString("hex", 0, 6)

/** A short, non-reversible id of a key for logs and rate-limit buckets; the key itself is never stored. */
export const keyId = (key: string): string => idOf(digest(key))

/** The headers admission may read. */
export type AdmissionHeader = "x-api-key" | "authorization" | "x-forwarded-for"

/** What admission looks at: the request without its body. */
export interface AdmissionRequest {
  readonly method: string
  readonly path: string
  /** The request target's query (after "?"), if any: only a stream route's `api_key` is read from it. */
  readonly query: string | undefined
  /** Called only when the verdict depends on a header (Node builds a request's header object on first access). */
  readonly header: (name: AdmissionHeader) => string | undefined
  readonly remoteAddress: string | undefined
}

/** What admission knows of a route from its method and path alone; fixed per URL, so callers may keep it. */
export interface RouteAdmission {
  /** The route label of logs and metrics (bounded: unknown paths share one). */
  readonly label: string
  /** Open without an API key: liveness, the docs, the OpenAPI document, CORS preflights. */
  readonly open: boolean
  /** Counted by the inbound rate limit (false for every route when the limit is off). */
  readonly limited: boolean
  /** A stream route, which also takes the key as the `api_key` query parameter. */
  readonly stream: boolean
}

/** The admission policy's answer for one request, except the rate-limit count (see Security.ts and HotCache.ts). */
export interface AdmissionVerdict {
  readonly route: RouteAdmission
  /** Why the request is refused with 401, if it is. */
  readonly refusal: "missing_key" | "invalid_key" | undefined
  /** The client of the request log: `key:<id>` for a key presented while API keys are configured, else anonymous. */
  readonly client: string
  /** The rate-limit bucket to count the request in; undefined when it is not counted (or refused). */
  readonly bucket: string | undefined
}

export interface AdmissionPolicy {
  readonly route: (method: string, path: string) => RouteAdmission
  /** `route`, when given, must be `route(request.method, request.path)` (a caller that kept it saves the lookup). */
  readonly verdict: (request: AdmissionRequest, route?: RouteAdmission) => AdmissionVerdict
}

export interface AdmissionSettings {
  readonly apiKeys: ReadonlyArray<Redacted.Redacted<string>>
  readonly trustProxy: boolean
  readonly rateLimitEnabled: boolean
}

const ANONYMOUS = "anonymous"

const nonEmpty = (value: string | undefined): string | undefined => {
  const trimmed = value?.trim()
  return trimmed === undefined || trimmed.length === 0 ? undefined : trimmed
}

/**
 * The admission policy of every request, whichever path serves it (the global middleware, the hot cache, the stream
 * gateway): which routes need an API key (when API_KEYS is set) and which count in the inbound rate limit, the key a
 * request presents and whether it is valid, the client id of its log line and its rate-limit bucket — the API key
 * when keys are configured, else the client address (the first X-Forwarded-For entry only behind a trusted proxy).
 * Pure: it reads headers only when the verdict depends on them.
 */
export const makeAdmissionPolicy = (settings: AdmissionSettings): AdmissionPolicy => {
  const authRequired = settings.apiKeys.length > 0
  const digests = settings.apiKeys.map((key) => digest(Redacted.value(key)))
  // constant time: every configured key is compared, equal-length digests, no early exit
  const matches = (candidate: Buffer): boolean => {
    let match = false
    for (const d of digests) match = timingSafeEqual(d, candidate) || match
    return match
  }

  // by label, so bounded: unknown paths share the "unmatched" facts (none of them is public, limited apart or a stream)
  const routes = new Map<string, RouteAdmission>()
  const preflights = new Map<string, RouteAdmission>()
  const route = (method: string, path: string): RouteAdmission => {
    const label = labelOf(path)
    const preflight = method === "OPTIONS"
    const table = preflight ? preflights : routes
    const known = table.get(label)
    if (known !== undefined) return known
    const facts: RouteAdmission = {
      label,
      open: preflight || PUBLIC_PATHS.has(label),
      limited: !preflight && settings.rateLimitEnabled && !isUnlimited(label),
      stream: isStreamRoute(label)
    }
    table.set(label, facts)
    return facts
  }

  const address = (request: AdmissionRequest): string => {
    if (settings.trustProxy) {
      const forwarded = nonEmpty(request.header("x-forwarded-for")?.split(",")[0])
      if (forwarded !== undefined) return forwarded
    }
    return request.remoteAddress ?? "unknown"
  }

  /** X-API-Key, else an Authorization bearer token, else (stream routes only) the `api_key` query parameter. */
  const presented = (request: AdmissionRequest, facts: RouteAdmission): string | undefined => {
    const header =
      nonEmpty(request.header("x-api-key")) ?? /^Bearer\s+(\S+)\s*$/i.exec(request.header("authorization") ?? "")?.[1]
    if (header !== undefined || !facts.stream || request.query === undefined) return header
    return nonEmpty(new URLSearchParams(request.query).get("api_key") ?? undefined)
  }

  const verdict = (
    request: AdmissionRequest,
    facts: RouteAdmission = route(request.method, request.path)
  ): AdmissionVerdict => {
    if (!authRequired) {
      return {
        route: facts,
        refusal: undefined,
        client: ANONYMOUS,
        bucket: facts.limited ? `ip:${address(request)}` : undefined
      }
    }
    const found = presented(request, facts)
    if (found === undefined) {
      return {
        route: facts,
        refusal: facts.open ? undefined : "missing_key",
        client: ANONYMOUS,
        bucket: undefined
      }
    }
    const hash = digest(found)
    const valid = matches(hash)
    const client = `key:${idOf(hash)}`
    return {
      route: facts,
      refusal: valid || facts.open ? undefined : "invalid_key",
      client,
      bucket: valid && facts.limited ? client : undefined
    }
  }

  return { route, verdict }
}

/** A Node request as admission sees it, given its target already split into path and query. */
export const nodeAdmissionRequest = (
  request: IncomingMessage,
  path: string,
  query: string | undefined
): AdmissionRequest => ({
  method: request.method ?? "GET",
  path,
  query,
  header: (name) => {
    const value = request.headers[name]
    return typeof value === "string" ? value : undefined
  },
  remoteAddress: request.socket.remoteAddress
})

/** A request of the Effect path as admission sees it. */
export const platformAdmissionRequest = (request: HttpServerRequest.HttpServerRequest): AdmissionRequest => ({
  method: request.method,
  path: pathOf(request.url),
  query: queryOf(request.url),
  header: (name) => request.headers[name],
  remoteAddress: Option.getOrUndefined(request.remoteAddress)
})
