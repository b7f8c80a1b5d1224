import { MAX_STREAM_DEPTH } from "../Streams/Upstream.js"

type Json = Record<string, unknown>

const isRecord = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value)

const DECODE_ERROR_REF = "#/components/schemas/HttpApiDecodeError"

const isDecodeErrorRef = (schema: unknown): boolean => isRecord(schema) && schema.$ref === DECODE_ERROR_REF

const onlyDecodeError = (response: unknown): boolean =>
  isRecord(response) &&
  isRecord(response.content) &&
  isRecord(response.content["application/json"]) &&
  isDecodeErrorRef(response.content["application/json"].schema)

const rewrite = (node: unknown, parentKey = ""): unknown => {
  if (Array.isArray(node)) return node.map((item) => rewrite(item))
  if (!isRecord(node)) return node
  const out: Json = {}
  for (const [key, value] of Object.entries(node)) {
    if (parentKey === "responses" && onlyDecodeError(value)) continue
    if (key === "anyOf" && Array.isArray(value)) {
      const kept = value.filter((s) => !isDecodeErrorRef(s)).map((item) => rewrite(item))
      if (kept.length === 1 && isRecord(kept[0])) Object.assign(out, kept[0])
      else out[key] = kept
    } else if (key === "description" && value === "The request did not match the expected schema") {
      out[key] = "Bad request: a parameter is missing or invalid, or the exchange is unknown"
    } else {
      out[key] = rewrite(value, key)
    }
  }
  return out
}

/**
 * Bad parameters reach clients as InvalidParameter (see Middleware.ts), never as HttpApi's own
 * HttpApiDecodeError, so the spec documents only what is really sent.
 */
export const documentInvalidParameterOnly = (spec: Json): Json => {
  const rewritten = rewrite(spec) as Json
  const components = isRecord(rewritten.components) ? rewritten.components : {}
  const schemas = isRecord(components.schemas) ? components.schemas : {}
  const { HttpApiDecodeError: _decode, Issue: _issue, PropertyKey: _key, ...kept } = schemas
  return { ...rewritten, components: { ...components, schemas: kept } }
}

/** Routes anyone may call without a key and without counting against the rate limit (see Security.ts). */
const PUBLIC_ROUTES: ReadonlySet<string> = new Set(["/v1/health"])

const STREAM_PREFIX = "/v1/stream/"

/** Streams candles from the store (src/History): besides JSON, as NDJSON or CSV (`format`). */
const HISTORY_ROUTE = "/v1/history/ohlcv"

/** Routes answered through the response cache (Responses.cachedResponse), with Age and X-Cache. */
const isCached = (path: string): boolean =>
  path === "/v1/exchanges" || path === "/v1/markets" || path.startsWith("/v1/markets/") || path.startsWith("/market/")

const headerRef = (name: string) => ({ $ref: `#/components/headers/${name}` })

/** The response headers the middleware and the response cache really send (Responses.ts, RateLimit.ts). */
const HEADERS: Json = {
  CacheControl: {
    required: true,
    description:
      "Market data: `public, max-age=<seconds left of the cache TTL>`, or `public, max-age=0, must-revalidate` " +
      "on a stale answer. Errors: `no-store`. Streams: `no-cache`.",
    schema: { type: "string" }
  },
  Age: {
    required: true,
    description: "Seconds since this answer was fetched from the exchange",
    schema: { type: "integer", minimum: 0 }
  },
  XCache: {
    required: true,
    description:
      "HIT: served from the cache; MISS: fetched from the exchange now; STALE: the exchange failed and an older " +
      "answer is served (within STALE_IF_ERROR_TTL)",
    schema: { type: "string", enum: ["HIT", "MISS", "STALE"] }
  },
  RateLimitLimit: {
    description: "Requests allowed per window for this client (sent when the rate limit is enabled)",
    schema: { type: "integer", minimum: 0 }
  },
  RateLimitRemaining: {
    description: "Requests left in the current window",
    schema: { type: "integer", minimum: 0 }
  },
  RateLimitReset: {
    description: "Seconds until the current window ends",
    schema: { type: "integer", minimum: 1 }
  },
  RateLimitPolicy: {
    description: "The limit and window, e.g. `100;w=60`",
    schema: { type: "string" }
  },
  RetryAfter: {
    required: true,
    description: "Seconds to wait before retrying",
    schema: { type: "integer", minimum: 1 }
  },
  WwwAuthenticate: {
    required: true,
    description: 'Always `Bearer realm="mcp-crypto-data-server"`',
    schema: { type: "string" }
  }
}

const SECURITY_SCHEMES: Json = {
  ApiKeyHeader: {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
    description: "One of the keys in API_KEYS. Required only when the server sets API_KEYS; otherwise ignored."
  },
  BearerAuth: {
    type: "http",
    scheme: "bearer",
    description: "The same key as `Authorization: Bearer <key>`."
  },
  ApiKeyQuery: {
    type: "apiKey",
    in: "query",
    name: "api_key",
    description:
      "One of API_KEYS as the `api_key` query parameter, on stream routes only: EventSource and WebSocket cannot send " +
      "headers. Never logged by the server, but URLs end up in proxies' logs and browser history: prefer the headers."
  }
}

/** Either scheme, or none: keys are enforced only when API_KEYS is set, and then a missing key is a 401. */
const KEY_SECURITY = [{ ApiKeyHeader: [] }, { BearerAuth: [] }, {}]
/** Stream routes also take the key in the query (browsers' EventSource and WebSocket cannot set headers). */
const STREAM_KEY_SECURITY = [{ ApiKeyHeader: [] }, { BearerAuth: [] }, { ApiKeyQuery: [] }, {}]

const rateLimitHeaders = {
  "RateLimit-Limit": headerRef("RateLimitLimit"),
  "RateLimit-Remaining": headerRef("RateLimitRemaining"),
  "RateLimit-Reset": headerRef("RateLimitReset"),
  "RateLimit-Policy": headerRef("RateLimitPolicy")
}

/** The headers one response of a route carries, by its status. */
const headersOf = (path: string, status: number): Json => {
  const isPublic = PUBLIC_ROUTES.has(path)
  const headers: Json = {}
  if (status >= 400) headers["Cache-Control"] = headerRef("CacheControl")
  if (status === 401) headers["WWW-Authenticate"] = { ...headerRef("WwwAuthenticate") }
  if (status === 429 || status === 503) {
    headers["Retry-After"] =
      path === HISTORY_ROUTE && status === 503
        ? {
            description: "Seconds to wait before retrying; absent when the candle store is off or unreachable",
            schema: { type: "integer", minimum: 1 }
          }
        : headerRef("RetryAfter")
  }
  if (status === 200 && isCached(path)) {
    headers["Cache-Control"] = headerRef("CacheControl")
    headers["Age"] = headerRef("Age")
    headers["X-Cache"] = headerRef("XCache")
  }
  if (status === 200 && (path.startsWith(STREAM_PREFIX) || path === HISTORY_ROUTE)) {
    headers["Cache-Control"] = headerRef("CacheControl")
  }
  // the key check comes before the rate limit, and a 500 leaves the middleware before its headers are added
  if (!isPublic && status !== 401 && status !== 500) Object.assign(headers, rateLimitHeaders)
  return headers
}

const withHistoryFormats = (response: Json): Json => ({
  ...response,
  content: {
    ...(isRecord(response.content) ? response.content : {}),
    "application/x-ndjson": {
      schema: { type: "string", description: "format=ndjson: one candle object per line" },
      example: '{"timestamp":1704067200000,"open":42000,"high":42100,"low":41900,"close":42050,"volume":12.5}\n'
    },
    "text/csv": {
      schema: { type: "string", description: "format=csv: a header row, then one candle per row" },
      example: "timestamp,open,high,low,close,volume\n1704067200000,42000,42100,41900,42050,12.5\n"
    }
  }
})

const documentOperation = (path: string, operation: Json): Json => {
  const responses = isRecord(operation.responses) ? operation.responses : {}
  const documented: Json = {}
  for (const [status, response] of Object.entries(responses)) {
    if (!isRecord(response)) continue
    const headers = headersOf(path, Number(status))
    const withContent = path === HISTORY_ROUTE && status === "200" ? withHistoryFormats(response) : response
    documented[status] = Object.keys(headers).length === 0 ? withContent : { ...withContent, headers }
  }
  return {
    ...operation,
    security: PUBLIC_ROUTES.has(path) ? [] : path.startsWith(STREAM_PREFIX) ? STREAM_KEY_SECURITY : KEY_SECURITY,
    responses: documented
  }
}

const jsonError = (description: string, ...schemas: ReadonlyArray<string>): Json => {
  const refs = schemas.map((name) => ({ $ref: `#/components/schemas/${name}` }))
  return { description, content: { "application/json": { schema: refs.length === 1 ? refs[0] : { anyOf: refs } } } }
}

const parameterOf = (spec: Json, path: string, name: string): Json | undefined => {
  const paths = isRecord(spec.paths) ? spec.paths : {}
  const item = paths[path]
  const operation = isRecord(item) ? item.get : undefined
  const parameters = isRecord(operation) && Array.isArray(operation.parameters) ? operation.parameters : []
  return parameters.find((p): p is Json => isRecord(p) && p.name === name)
}

const queryParameter = (name: string, description: string, schema: Json): Json => ({
  name,
  in: "query",
  required: false,
  description,
  schema: { ...schema, description }
})

const SSE_DESCRIPTION =
  "A Server-Sent Events stream that lasts until the client disconnects. The stream opens with `retry: 3000`; each " +
  "event is an `id:` line (a sequence number per connection) and a `data:` line holding one JSON object whose " +
  "`event_type` names it (ticker, trades, orderbook, ohlcv, heartbeat, status or error; see the README's Live " +
  "streams section for every field). Parameters, exchange and symbol are checked before the stream starts: bad " +
  "input gets the JSON errors of the REST routes."

/** The SSE routes (src/Streams/Http.ts): not HttpApi endpoints, so described here from the same parameters. */
const streamPaths = (spec: Json): Json => {
  const exchange = parameterOf(spec, "/v1/markets/ticker", "exchange")
  const symbol = parameterOf(spec, "/v1/markets/ticker", "symbol")
  const interval = parameterOf(spec, "/v1/markets/ohlcv", "interval")
  const common = [exchange, symbol].filter(isRecord)
  const extra: Record<string, ReadonlyArray<Json>> = {
    ticker: [
      queryParameter(
        "threshold",
        "Smallest move of `last` (a fraction: 0.002 = 0.2 %) that sends an event; default TICKER_DELTA_THRESHOLD",
        { type: "number", minimum: 0, maximum: 1 }
      )
    ],
    trades: [],
    orderbook: [
      queryParameter("depth", `Levels per side (default 10, max ${MAX_STREAM_DEPTH})`, {
        type: "integer",
        minimum: 1,
        maximum: MAX_STREAM_DEPTH,
        default: 10
      })
    ],
    ohlcv: interval === undefined ? [] : [{ ...interval, description: "Candle interval (default 1m)" }]
  }
  const summaries: Record<string, string> = {
    ticker: "Live tickers of one symbol: a snapshot, then each move of at least `threshold`",
    trades: "Live public trades of one symbol: each event carries the trades new since the previous one",
    orderbook: "Live order book of one symbol: each event is the complete top `depth` levels per side",
    ohlcv: "Live candles of one symbol: the current candle each time it changes"
  }
  const paths: Json = {}
  for (const [channel, parameters] of Object.entries(extra)) {
    paths[`${STREAM_PREFIX}${channel}`] = {
      get: {
        tags: ["Streams"],
        operationId: `streams.${channel}`,
        summary: summaries[channel],
        description: SSE_DESCRIPTION,
        parameters: [...common, ...parameters],
        responses: {
          200: {
            description: "The event stream",
            content: {
              "text/event-stream": {
                schema: { type: "string" },
                example: `retry: 3000\n\nid: 1\ndata: {"event_type":"${channel}","exchange":"binance","symbol":"BTC/USDT",…}\n\n`
              }
            }
          },
          400: jsonError(
            "A parameter is missing or invalid, the exchange is unknown, or the interval is not offered",
            "InvalidParameter",
            "UnknownExchange",
            "UnsupportedInterval"
          ),
          401: jsonError("API keys are configured and none, or a wrong one, was sent", "Unauthorized"),
          404: jsonError("The exchange does not list this symbol", "SymbolNotFound"),
          429: jsonError("Too many requests from this client, or to the exchange", "RateLimited"),
          500: jsonError("Unexpected server error", "InternalError"),
          501: jsonError("The exchange offers no data of this channel, streamed or polled", "NotSupported"),
          502: jsonError("The exchange answered the market list with a malformed payload", "UpstreamBadResponse"),
          503: jsonError("The exchange is unavailable, or live streams are not served here", "UpstreamUnavailable"),
          504: jsonError("The exchange did not answer in time", "UpstreamTimeout")
        }
      }
    }
  }
  return paths
}

/**
 * Completes the generated spec with what the server does outside HttpApi: the API-key schemes of the global
 * middleware, the headers it and the response cache send, and the SSE routes.
 */
export const finishSpec = (generated: Json): Json => {
  const spec = documentInvalidParameterOnly(generated)
  const paths: Json = { ...(isRecord(spec.paths) ? spec.paths : {}), ...streamPaths(spec) }
  const documented: Json = {}
  for (const [path, item] of Object.entries(paths)) {
    if (!isRecord(item)) continue
    const methods: Json = {}
    for (const [method, operation] of Object.entries(item)) {
      methods[method] = isRecord(operation) ? documentOperation(path, operation) : operation
    }
    documented[path] = methods
  }
  const components = isRecord(spec.components) ? spec.components : {}
  const tags = Array.isArray(spec.tags) ? spec.tags : []
  return {
    ...spec,
    paths: documented,
    components: { ...components, headers: HEADERS, securitySchemes: SECURITY_SCHEMES },
    tags: [
      ...tags,
      {
        name: "Streams",
        description: "Server-Sent Events of live market data (WebSocket routes: see the README's Live streams section)"
      }
    ]
  }
}
