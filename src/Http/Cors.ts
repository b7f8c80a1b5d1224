import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import type { AppConfig } from "../AppConfig.js"
import { MCP_PATH } from "../Mcp/JsonRpc.js"
import { withHeaders } from "./Responses.js"
import { pathOf } from "./RouteTable.js"

/** Sent on every response, whichever path answers it; HTML pages add their own Content-Security-Policy. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
}

/** The default CORS_ORIGINS: any port of http(s)://localhost, 127.0.0.1 and [::1] (a dev server such as Vite's). */
const LOCAL_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/

/** Response headers a cross-origin page may read beyond the CORS-safelisted ones. */
const EXPOSED = "X-Cache, Age, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, Retry-After"
const EXPOSED_MCP = `${EXPOSED}, Mcp-Session-Id, Mcp-Protocol-Version`
const ALLOWED_METHODS = "GET, HEAD, POST, OPTIONS"
/** Request headers a page may send: the API key, JSON bodies, MCP's own headers, SSE resumption. */
const ALLOWED_HEADERS =
  "Accept, Authorization, Content-Type, Last-Event-ID, Mcp-Protocol-Version, Mcp-Session-Id, X-API-Key"
const PREFLIGHT_MAX_AGE = "600"

const WITHOUT_CORS: Readonly<Record<string, string>> = { ...SECURITY_HEADERS, vary: "Origin" }

export interface PreflightAnswer {
  readonly status: 204 | 403
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** The one origin policy of the server (CORS_ORIGINS): REST, SSE, /mcp, the hot path and WebSocket upgrades. */
export interface CorsPolicy {
  readonly allows: (origin: string) => boolean
  /** The headers of any response to a request from `origin` (undefined: no Origin header) for `path`. */
  readonly headers: (origin: string | undefined, path: string) => Readonly<Record<string, string>>
  /** The answer to a preflight (OPTIONS with Access-Control-Request-Method). */
  readonly preflight: (origin: string, path: string) => PreflightAnswer
  /**
   * Whether a WebSocket upgrade may proceed: no Origin (not a browser), a same-origin page (the Origin's host is the
   * Host the request was sent to), or an allowed origin.
   */
  readonly allowsUpgrade: (origin: string | undefined, host: string | undefined) => boolean
}

export const makeCorsPolicy = (origins: AppConfig["corsOrigins"]): CorsPolicy => {
  const exact = new Set(origins.exact)
  const allows = (origin: string) => origins.any || exact.has(origin) || (origins.local && LOCAL_ORIGIN.test(origin))
  const headers = (origin: string | undefined, path: string) =>
    origin === undefined || !allows(origin)
      ? WITHOUT_CORS
      : {
          ...WITHOUT_CORS,
          "access-control-allow-origin": origin,
          "access-control-expose-headers": path === MCP_PATH ? EXPOSED_MCP : EXPOSED
        }
  const preflight = (origin: string, path: string): PreflightAnswer =>
    allows(origin)
      ? {
          status: 204,
          headers: {
            ...headers(origin, path),
            vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            "access-control-allow-methods": ALLOWED_METHODS,
            "access-control-allow-headers": ALLOWED_HEADERS,
            "access-control-max-age": PREFLIGHT_MAX_AGE
          },
          body: ""
        }
      : {
          status: 403,
          headers: { ...WITHOUT_CORS, "cache-control": "no-store" },
          body: JSON.stringify({
            code: "origin_not_allowed",
            message: `Origin ${origin} is not allowed; allowed origins are set by CORS_ORIGINS`
          })
        }
  const allowsUpgrade = (origin: string | undefined, host: string | undefined) => {
    if (origin === undefined || allows(origin)) return true
    return host !== undefined && URL.parse(origin)?.host === host.toLowerCase()
  }
  return { allows, headers, preflight, allowsUpgrade }
}

/** Adds `Origin` to a response's Vary (a page content-negotiated on Accept varies on both). */
const varyWithOrigin = (vary: string | undefined): string =>
  vary === undefined || vary.length === 0 ? "Origin" : /\borigin\b/i.test(vary) ? vary : `${vary}, Origin`

/** The origin policy as middleware: preflights answered here, every other response gets its CORS and security headers. */
export const corsMiddleware =
  (policy: CorsPolicy) =>
  <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const origin = request.headers["origin"]
      const path = pathOf(request.url)
      if (
        request.method === "OPTIONS" &&
        origin !== undefined &&
        request.headers["access-control-request-method"] !== undefined
      ) {
        const answer = policy.preflight(origin, path)
        return answer.status === 204
          ? HttpServerResponse.empty({ status: 204, headers: answer.headers })
          : HttpServerResponse.text(answer.body, {
              status: answer.status,
              contentType: "application/json",
              headers: answer.headers
            })
      }
      const response = yield* app
      const headers = policy.headers(origin, path)
      return withHeaders(response, { ...headers, vary: varyWithOrigin(response.headers["vary"]) })
    })

/** The Origin header from Node's raw header list, without building the parsed header object (the hot path). */
export const originOf = (rawHeaders: ReadonlyArray<string>): string | undefined => {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]
    if (name !== undefined && name.length === 6 && name.toLowerCase() === "origin") return rawHeaders[i + 1]
  }
  return undefined
}
