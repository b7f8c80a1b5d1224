import type { CallToolResult } from "@modelcontextprotocol/server"
import type { ApiError } from "../Domain/Errors.js"
import type { Cached } from "../Markets/Queries.js"
import type { Meta } from "./Schemas.js"

/** Claude Code swaps tool results above ~25k tokens for a file pointer; stay well below. */
export const MAX_RESULT_CHARS = 80_000

/** Where a piece of a result came from: when it was fetched upstream and whether this call hit the cache. */
export interface Freshness {
  readonly storedAt: number
  readonly cached: boolean
}

export const freshnessOf = (cached: Cached<unknown>): Freshness => ({
  storedAt: cached.response.storedAt,
  cached: cached.response.state !== "MISS"
})

/**
 * A tool result before the size guard. `render(keep)` builds it with only `keep` of its `items` list entries, the
 * tool choosing which ones matter most; `items` is 0 when nothing can be dropped.
 */
export interface Shaped<O> {
  readonly freshness: ReadonlyArray<Freshness>
  readonly items: number
  readonly render: (keep: number) => O
  readonly dropped?: (kept: number, total: number) => string
}

export const whole = <O>(freshness: ReadonlyArray<Freshness>, value: O): Shaped<O> => ({
  freshness,
  items: 0,
  render: () => value
})

/** Freshness of the oldest piece: a result is as old as its stalest input. */
export const metaOf = (freshness: ReadonlyArray<Freshness>, now: number, notice?: string): Meta => {
  const storedAt = freshness.length === 0 ? now : Math.min(...freshness.map((f) => f.storedAt))
  const meta = {
    asOf: new Date(storedAt).toISOString(),
    cached: freshness.length > 0 && freshness.every((f) => f.cached),
    ageMs: Math.max(0, now - storedAt),
    truncated: notice !== undefined
  }
  return notice === undefined ? meta : { ...meta, notice }
}

/** The result as structuredContent mirrored in compact JSON text, shrunk to `budget` characters when needed. */
export const successResult = <O extends Record<string, unknown>>(
  shaped: Shaped<O>,
  now: number,
  budget: number = MAX_RESULT_CHARS
): CallToolResult => {
  const build = (keep: number) => {
    const notice =
      keep < shaped.items
        ? (shaped.dropped?.(keep, shaped.items) ?? `Only ${keep} of ${shaped.items} items fit the size limit`)
        : undefined
    const structured: Record<string, unknown> = { ...shaped.render(keep), meta: metaOf(shaped.freshness, now, notice) }
    return { structured, length: JSON.stringify(structured).length }
  }
  let best = build(shaped.items)
  if (best.length > budget && shaped.items > 0) {
    let low = 0
    let high = shaped.items - 1
    best = build(0)
    while (low <= high) {
      const mid = Math.floor((low + high) / 2)
      const candidate = build(mid)
      if (candidate.length <= budget) {
        best = candidate
        low = mid + 1
      } else {
        high = mid - 1
      }
    }
  }
  return { content: [{ type: "text", text: JSON.stringify(best.structured) }], structuredContent: best.structured }
}

export interface ToolError {
  readonly code: string
  readonly message: string
  readonly retryable: boolean
  readonly hint: string
  readonly suggestions?: ReadonlyArray<string>
  readonly retryAfter?: number
}

const seconds = (s: number) => Math.max(1, Math.ceil(s))

/** The stable code, whether retrying can help and what to do next, for the model reading the error. */
export const describeError = (error: ApiError): ToolError => {
  switch (error._tag) {
    case "InvalidParameter":
      return {
        code: error.code,
        message: error.message,
        retryable: false,
        hint: "Correct the argument named in the message and call the tool again; inputSchema lists every argument."
      }
    case "UnknownExchange": {
      const guess = error.suggestions[0]
      return {
        code: error.code,
        message: error.message,
        retryable: false,
        hint:
          `${guess === undefined ? "" : `Did you mean "${guess}"? `}Enabled exchanges: ${error.enabled.join(", ")}. ` +
          "list_exchanges lists them with what each supports.",
        suggestions: error.suggestions
      }
    }
    case "SymbolNotFound":
      return {
        code: error.code,
        message: error.message,
        retryable: false,
        hint:
          (error.suggestions.length > 0
            ? `Close matches on ${error.exchange}: ${error.suggestions.join(", ")}. `
            : "") +
          `search_markets with exchange "${error.exchange}" finds the exact symbol (quotes differ: USDT, USD, EUR...).`,
        suggestions: error.suggestions
      }
    case "UnsupportedInterval":
      return {
        code: error.code,
        message: error.message,
        retryable: false,
        hint: `Use one of: ${error.supported.join(", ")}.`,
        suggestions: error.supported
      }
    case "NotSupported":
      return {
        code: error.code,
        message: error.message,
        retryable: false,
        hint: `${error.exchange} does not offer this data; list_exchanges shows what each exchange supports.`
      }
    case "RateLimited":
      return {
        code: error.code,
        message: error.message,
        retryable: true,
        hint: `Wait about ${seconds(error.retryAfter)} s before calling again.`,
        retryAfter: seconds(error.retryAfter)
      }
    case "UpstreamUnavailable":
      return {
        code: error.code,
        message: error.message,
        retryable: true,
        hint:
          error.code === "upstream_banned"
            ? `The exchange blocks requests for about ${seconds(error.retryAfter)} s; use another exchange meanwhile.`
            : `Retry in about ${seconds(error.retryAfter)} s, or ask another exchange.`,
        retryAfter: seconds(error.retryAfter)
      }
    case "UpstreamTimeout":
      return {
        code: error.code,
        message: error.message,
        retryable: true,
        hint: "Retry once; if it keeps timing out, ask another exchange."
      }
    case "UpstreamBadResponse":
      return {
        code: error.code,
        message: error.message,
        retryable: true,
        hint: "Usually transient: retry once, or ask another exchange."
      }
    case "Unauthorized":
      return {
        code: error.code,
        message: error.message,
        retryable: false,
        hint: "Configure the MCP client with a valid API key (X-API-Key header or Authorization: Bearer <key>)."
      }
    case "RouteNotFound":
    case "InternalError":
      return {
        code: error.code,
        message: error.message,
        retryable: false,
        hint: "A fault of this server, not of the arguments; calling again will likely fail the same way."
      }
  }
}

/**
 * An error the model can act on: isError and the JSON object in the text. No structuredContent: it would have to
 * match the tool's outputSchema (SDK 1.x clients turn a mismatch into a protocol error, even on an error result), and
 * some hosts drop it on errors anyway.
 */
export const errorResult = (error: ToolError, now: number): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify({ ...error, meta: metaOf([], now) }) }],
  isError: true
})
