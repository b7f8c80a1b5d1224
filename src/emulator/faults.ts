/** Injected failures: which request they hit, and the generic bodies shared by all venues. */

import { isEmulatedExchange, type EmulatedExchange } from "./markets.js"
import type { RestRequest } from "./protocol.js"

export type FaultKind =
  | "rate-limit-429"
  | "ban-418"
  | "error-500"
  | "error-502-html"
  | "error-503"
  | "error-503-json"
  | "truncated-json"
  | "html-200"
  | "empty-200"
  | "empty-object-200"
  | "empty-array-200"
  | "null-200"
  | "error-envelope-200"
  | "wrong-types-200"
  | "other-symbol"
  | "delay"
  | "reset"
  | "ws-stall"
  | "ws-close"

export const FAULT_KINDS: ReadonlyArray<FaultKind> = [
  "rate-limit-429",
  "ban-418",
  "error-500",
  "error-502-html",
  "error-503",
  "error-503-json",
  "truncated-json",
  "html-200",
  "empty-200",
  "empty-object-200",
  "empty-array-200",
  "null-200",
  "error-envelope-200",
  "wrong-types-200",
  "other-symbol",
  "delay",
  "reset",
  "ws-stall",
  "ws-close"
]

export interface FaultSpec {
  kind: FaultKind
  /** Default: every exchange. */
  exchange?: EmulatedExchange
  /** Path without the exchange prefix, exact or prefix match. Default: every REST path except the market lists. */
  endpoint?: string
  /** REST: requests it applies to; ws-close: connections it closes. Default: unlimited until clearFaults(). */
  times?: number
  /** REST: matching requests to let through untouched before the fault applies (e.g. the second page of a walk). */
  after?: number
  /** truncated-json: bytes of the normal body kept (default half of it; at least 1, at most all but the last). */
  keepBytes?: number
  /** Seconds, sent as Retry-After on 429/418/503. */
  retryAfter?: number
  /** ms epoch for binance's 418 body. */
  bannedUntil?: number
  /** For "delay". */
  delayMs?: number
}

export const isWsFault = (kind: FaultKind): boolean => kind === "ws-stall" || kind === "ws-close"

/**
 * The request as if it had named the next market of the venue wherever it names one (path or parameters): answering
 * it gives "another symbol's payload".
 */
export const otherSymbolRequest = (
  markets: ReadonlyArray<{ readonly id: string }>,
  request: RestRequest
): RestRequest => {
  const next = new Map(markets.map((m, i) => [m.id, markets[(i + 1) % markets.length]?.id ?? m.id]))
  const ids = [...next.keys()]
    .sort((a, b) => b.length - a.length)
    .map((id) => id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
  const pattern = new RegExp(ids.join("|"), "g")
  const swap = (text: string) => text.replace(pattern, (id) => next.get(id) ?? id)
  const params = new URLSearchParams()
  for (const [key, value] of request.params) params.append(key, swap(value))
  return { ...request, path: swap(request.path), params }
}

interface ActiveFault {
  readonly spec: FaultSpec
  remaining: number
  skip: number
}

/** Faults in injection order; the first active one that matches a request applies and is consumed. */
export class FaultRegistry {
  private faults: ActiveFault[] = []

  add(spec: FaultSpec): void {
    this.faults.push({ spec, remaining: spec.times ?? Number.POSITIVE_INFINITY, skip: spec.after ?? 0 })
  }

  clear(): void {
    this.faults = []
  }

  list(): ReadonlyArray<FaultSpec & { readonly remaining: number | null }> {
    return this.faults.map((f) => ({ ...f.spec, remaining: Number.isFinite(f.remaining) ? f.remaining : null }))
  }

  /** Takes one use of the first REST fault matching the request. */
  takeRest(exchange: EmulatedExchange, path: string, marketListPaths: ReadonlySet<string>): FaultSpec | undefined {
    for (const fault of this.faults) {
      const spec = fault.spec
      if (fault.remaining <= 0 || isWsFault(spec.kind)) continue
      if (spec.exchange !== undefined && spec.exchange !== exchange) continue
      const matches =
        spec.endpoint === undefined
          ? !marketListPaths.has(path)
          : path === spec.endpoint || path.startsWith(spec.endpoint)
      if (!matches) continue
      if (fault.skip > 0) {
        fault.skip -= 1
        return undefined
      }
      fault.remaining -= 1
      return spec
    }
    return undefined
  }

  /** Whether a WebSocket fault of `kind` is active for the exchange (without consuming it). */
  wsActive(exchange: EmulatedExchange, kind: "ws-stall" | "ws-close"): boolean {
    return this.faults.some(
      (f) => f.spec.kind === kind && f.remaining > 0 && (f.spec.exchange === undefined || f.spec.exchange === exchange)
    )
  }

  /** Consumes one use of an active ws-close fault; false when none is left. */
  takeWsClose(exchange: EmulatedExchange): boolean {
    const fault = this.faults.find(
      (f) =>
        f.spec.kind === "ws-close" && f.remaining > 0 && (f.spec.exchange === undefined || f.spec.exchange === exchange)
    )
    if (fault === undefined) return false
    fault.remaining -= 1
    return true
  }
}

/** Validates a fault spec received over the control API. */
export const parseFaultSpec = (input: unknown): FaultSpec | string => {
  if (typeof input !== "object" || input === null) return "body must be a JSON object"
  const record = input as Record<string, unknown>
  const kind = record["kind"]
  if (typeof kind !== "string" || !(FAULT_KINDS as ReadonlyArray<string>).includes(kind)) {
    return `kind must be one of ${FAULT_KINDS.join(", ")}`
  }
  const spec: FaultSpec = { kind: kind as FaultKind }
  const exchange = record["exchange"]
  if (exchange !== undefined) {
    if (typeof exchange !== "string" || !isEmulatedExchange(exchange)) return "exchange is not emulated"
    spec.exchange = exchange
  }
  const endpoint = record["endpoint"]
  if (endpoint !== undefined) {
    if (typeof endpoint !== "string" || !endpoint.startsWith("/")) return "endpoint must be a path starting with /"
    spec.endpoint = endpoint
  }
  for (const key of ["times", "after", "keepBytes", "retryAfter", "bannedUntil", "delayMs"] as const) {
    const value = record[key]
    if (value === undefined) continue
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return `${key} must be a number >= 0`
    spec[key] = value
  }
  return spec
}

export interface RawResponse {
  readonly status: number
  readonly body: string
  readonly contentType: string
  readonly headers?: Readonly<Record<string, string>>
}

const html = (status: number, title: string, text: string): RawResponse => ({
  status,
  contentType: "text/html; charset=utf-8",
  body: `<!DOCTYPE html>\n<html>\n<head><title>${status} ${title}</title></head>\n<body>\n<center><h1>${status} ${title}</h1></center>\n<p>${text}</p>\n<hr><center>nginx</center>\n</body>\n</html>\n`
})

export const htmlError500 = (): RawResponse => html(500, "Internal Server Error", "The server encountered an error.")

export const htmlError502 = (): RawResponse =>
  html(502, "Bad Gateway", "The proxy server received an invalid response from an upstream server.")

export const htmlError503 = (): RawResponse =>
  html(503, "Service Temporarily Unavailable", "The server is temporarily unable to service your request.")

export const htmlMaintenance200 = (): RawResponse => ({
  status: 200,
  contentType: "text/html; charset=utf-8",
  body: "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head><body><h1>We'll be back soon</h1><p>System maintenance in progress.</p></body></html>\n"
})

export const empty200 = (): RawResponse => ({ status: 200, contentType: "application/json", body: "" })

/** A valid body cut short (in half by default): what a proxy dropping the connection mid-body leaves behind. */
export const truncate = (body: string, keep?: number): string =>
  body.slice(0, Math.min(Math.max(1, body.length - 1), Math.max(1, Math.floor(keep ?? body.length / 2))))

const jsonBody = (body: unknown): RawResponse => ({
  status: 200,
  contentType: "application/json;charset=UTF-8",
  body: JSON.stringify(body)
})

/** Every string and number of a JSON value turned into a boolean, keys and nesting kept: a schema change upstream. */
export const wrongTypes = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(wrongTypes)
    : typeof value === "object" && value !== null
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, wrongTypes(v)]))
      : typeof value === "string" || typeof value === "number"
        ? true
        : value

const parseOr = (body: string): unknown => {
  try {
    return JSON.parse(body) as unknown
  } catch {
    return body
  }
}

export const withRetryAfter = (response: RawResponse, spec: FaultSpec): RawResponse =>
  spec.retryAfter === undefined
    ? response
    : { ...response, headers: { ...response.headers, "Retry-After": String(Math.round(spec.retryAfter)) } }

/** The shared part of every venue's fault answer; venue-specific bodies are handled before calling this. */
export const genericFault = (spec: FaultSpec, normal: () => RawResponse): RawResponse => {
  switch (spec.kind) {
    case "rate-limit-429":
      return withRetryAfter({ status: 429, contentType: "text/plain", body: "Too Many Requests" }, spec)
    case "ban-418":
      return withRetryAfter({ status: 418, contentType: "text/plain", body: "I'm a teapot: IP banned" }, spec)
    case "error-500":
      return htmlError500()
    case "error-502-html":
      return htmlError502()
    case "error-503":
      return withRetryAfter(htmlError503(), spec)
    case "error-503-json":
      return withRetryAfter(
        { status: 503, contentType: "application/json", body: JSON.stringify({ message: "Service Unavailable" }) },
        spec
      )
    case "truncated-json": {
      const response = normal()
      return { ...response, status: 200, body: truncate(response.body, spec.keepBytes) }
    }
    case "html-200":
      return htmlMaintenance200()
    case "empty-200":
      return empty200()
    case "empty-object-200":
      return jsonBody({})
    case "empty-array-200":
      return jsonBody([])
    case "null-200":
      return jsonBody(null)
    case "error-envelope-200":
      return jsonBody({ message: "Internal server error" })
    case "wrong-types-200":
      return jsonBody(wrongTypes(parseOr(normal().body)))
    default:
      return normal()
  }
}
