import { Effect, Layer, Stream } from "effect"
import { type Document, OpenAPIBackend } from "openapi-backend"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Exchange } from "../../src/Exchange/Exchange.js"
import { History } from "../../src/History/History.js"
import { CandleStoreError } from "../../src/Store/CandleStore.js"
import { openSse } from "../streams/clients.js"
import { startStreamServer, type StreamServer } from "../streams/server.js"
import { makeMockExchange } from "../support/mockExchange.js"

/**
 * Real responses of every route, success and error, checked against the served /openapi.json by an independent
 * validator (openapi-backend: its router finds the operation from the method and path, Ajv checks the body and the
 * headers). The server is the real one (REST and stream routes over a loopback socket) with the mock exchange.
 */

const MockExchange = Layer.unwrapEffect(Effect.map(makeMockExchange, (mock) => mock.layer as Layer.Layer<Exchange>))

/** The candle store's reads, faked: the /v1/history/ohlcv handler and its encoders are the real ones. */
const FakeHistory = Layer.succeed(History, {
  open: (query) =>
    query.symbol === "BTC/USDT"
      ? Effect.succeed({
          market: { exchange: query.exchange, symbol: query.symbol },
          interval: query.interval,
          span: [query.since, query.since + 120_000] as const,
          candles: Stream.make(
            { timestamp: query.since, open: 1, high: 2, low: 0.5, close: 1.5, volume: 10 },
            { timestamp: query.since + 60_000, open: 1.5, high: 2.5, low: 1, close: 2, volume: 0 }
          )
        })
      : Effect.fail(new CandleStoreError({ message: "the store cannot be reached" }))
})

const Upstreams = Layer.merge(MockExchange, FakeHistory)

interface Checked {
  readonly status: number
  readonly operationId: string
  readonly headers: Record<string, string>
  readonly body: unknown
  /** Whether the spec's parameters accept the request. */
  readonly requestValid: boolean
}

const load = async (server: StreamServer): Promise<OpenAPIBackend> => {
  const spec = (await (await fetch(`${server.http}/openapi.json`)).json()) as Document
  // quick: openapi-backend checks the document itself against the OpenAPI 3.0 schema only; the 3.1 document is
  // linted by redocly instead (npm run lint:openapi). Bodies and headers are still validated with Ajv.
  const api = new OpenAPIBackend({ definition: spec, quick: true, validate: true })
  await api.init()
  return api
}

/** Operations that answered a documented 200 in these tests. */
const succeeded = new Set<string>()

const headersOf = (response: Response): Record<string, string> => Object.fromEntries(response.headers.entries())

/** GETs `path` and asserts the answer is one the spec documents for that route: status, content type, body, headers. */
const check = async (
  api: OpenAPIBackend,
  server: StreamServer,
  path: string,
  requestHeaders: Record<string, string> = {}
): Promise<Checked> => {
  const response = await fetch(`${server.http}${path}`, { headers: requestHeaders })
  const headers = headersOf(response)
  const url = new URL(path, server.http)
  const operation = api.router.matchOperation({
    method: "get",
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: requestHeaders
  })
  expect(operation, `no operation in the spec for GET ${url.pathname}`).toBeDefined()
  const operationId = operation?.operationId ?? ""
  const documented = operation?.responses?.[String(response.status)]
  expect(documented, `${operationId} does not document ${response.status}`).toBeDefined()
  const content = documented !== undefined && "content" in documented ? (documented.content ?? {}) : {}
  const mediaType = (headers["content-type"] ?? "").split(";")[0] ?? ""
  expect(Object.keys(content), `${operationId} ${response.status}: content type`).toContain(mediaType)

  let body: unknown
  if (mediaType === "application/json") {
    body = await response.json()
    const result = api.validateResponse(body, operationId, response.status)
    expect(result.errors ?? [], `${operationId} ${response.status} body: ${JSON.stringify(body)}`).toEqual([])
  } else {
    await response.body?.cancel()
  }
  // openapi-backend checks the values of the headers present; which must be present is read from the spec here
  const headerResult = api.validateResponseHeaders(headers, operationId, { statusCode: response.status })
  const requiredHeaders = Object.entries(
    documented !== undefined && "headers" in documented ? (documented.headers ?? {}) : {}
  ).flatMap(([name, header]) =>
    typeof header === "object" && header !== null && "required" in header && header.required === true
      ? [name.toLowerCase()]
      : []
  )
  expect(
    requiredHeaders.filter((name) => headers[name] === undefined),
    `${operationId} ${response.status}: required headers missing`
  ).toEqual([])
  expect(headerResult.errors ?? [], `${operationId} ${response.status} headers: ${JSON.stringify(headers)}`).toEqual([])
  if (response.status === 200) succeeded.add(operationId)
  const request = { method: "get", path: url.pathname, query: url.search.slice(1), headers: requestHeaders }
  const requestValid = api.validateRequest(request, operationId).valid
  return { status: response.status, operationId, headers, body, requestValid }
}

const codeOf = (checked: Checked): unknown =>
  typeof checked.body === "object" && checked.body !== null && "code" in checked.body ? checked.body.code : undefined

describe("OpenAPI: real responses of every route match the served spec", () => {
  let server: StreamServer
  let api: OpenAPIBackend

  beforeAll(async () => {
    server = await startStreamServer({}, Upstreams)
    api = await load(server)
  })
  afterAll(() => server.close())

  it.each([
    ["/v1/health", "health.health"],
    ["/v1/exchanges", "markets.exchanges"],
    ["/v1/markets?exchange=binance", "markets.markets"],
    ["/v1/markets?exchange=kraken&q=btc&base=BTC&quote=USD&offset=0&limit=1", "markets.markets"],
    ["/v1/markets/ticker?exchange=binance&symbol=BTC/USDT", "markets.ticker"],
    ["/v1/markets/ticker?exchange=kraken&symbol=btc-usd", "markets.ticker"],
    ["/v1/markets/tickers?exchange=binance&symbols=BTC/USDT,ETH/USDT", "markets.tickers"],
    ["/v1/markets/ohlcv?exchange=binance&symbol=BTC/USDT&interval=5m&since=1000&limit=3", "markets.ohlcv"],
    ["/v1/markets/orderbook?exchange=binance&symbol=BTC/USDT&limit=2", "markets.orderbook"],
    ["/v1/markets/trades?exchange=binance&symbol=ETH/USDT&limit=2", "markets.trades"],
    ["/market/ticker?exchange=binance&symbol=ETH/USDT", "compat.ticker"],
    ["/market/history?exchange=binance&symbol=BTC/USDT&limit=2", "compat.history"],
    ["/v1/history/ohlcv?exchange=binance&symbol=BTC/USDT&since=1704067200000", "history.ohlcv"],
    ["/v1/history/ohlcv?exchange=binance&symbol=BTC/USDT&since=1704067200000&format=ndjson", "history.ohlcv"],
    ["/v1/history/ohlcv?exchange=binance&symbol=BTC/USDT&since=1704067200000&format=csv", "history.ohlcv"]
  ])("200 %s", async (path, operationId) => {
    const checked = await check(api, server, path)
    expect(checked.status).toBe(200)
    expect(checked.operationId).toBe(operationId)
    expect(checked.requestValid).toBe(true)
    if (operationId.startsWith("markets.") || operationId.startsWith("compat.")) {
      expect(["HIT", "MISS"]).toContain(checked.headers["x-cache"])
      expect(checked.headers["cache-control"]).toMatch(/^public, max-age=\d+$/)
    }
  })

  it.each([
    ["/v1/markets/ticker?exchange=binance", 400, "invalid_parameter"],
    ["/v1/markets/ticker?exchange=nope&symbol=BTC/USDT", 400, "unknown_exchange"],
    ["/v1/markets/tickers?exchange=binance&symbols=BTC/USDT,,", 400, "invalid_parameter"],
    ["/v1/markets/ohlcv?exchange=binance&symbol=BTC/USDT&interval=3m", 400, "unsupported_interval"],
    ["/v1/markets/orderbook?exchange=binance&symbol=BTC/USDT&limit=0", 400, "invalid_parameter"],
    ["/v1/markets?limit=5", 400, "invalid_parameter"],
    ["/market/history?exchange=binance&symbol=BTC/USDT&since=yesterday", 400, "invalid_parameter"],
    ["/v1/markets/ticker?exchange=binance&symbol=NOPE/USDT", 404, "symbol_not_found"],
    ["/v1/markets/trades?exchange=kraken&symbol=BTC/USDT", 404, "symbol_not_found"],
    ["/market/ticker?exchange=binance&symbol=XRP/USDT", 404, "symbol_not_found"],
    ["/v1/markets/ticker?exchange=binance&symbol=HOT/429", 429, "upstream_rate_limited"],
    ["/v1/markets/ticker?exchange=binance&symbol=BOOM/DEFECT", 500, "internal_error"],
    ["/v1/markets/trades?exchange=binance&symbol=NOPE/501", 501, "not_supported"],
    ["/v1/markets/ticker?exchange=binance&symbol=BAD/502", 502, "bad_upstream_response"],
    ["/v1/markets/tickers?exchange=binance&symbols=BTC/USDT,BAD/502", 502, "bad_upstream_response"],
    ["/v1/markets/ohlcv?exchange=binance&symbol=BAD/502", 502, "bad_upstream_response"],
    ["/market/history?exchange=binance&symbol=BAD/502", 502, "bad_upstream_response"],
    ["/v1/markets/orderbook?exchange=binance&symbol=DOWN/503", 503, "upstream_unavailable"],
    ["/market/ticker?exchange=binance&symbol=DOWN/503", 503, "upstream_unavailable"],
    ["/v1/history/ohlcv?exchange=binance&symbol=BTC/USDT", 400, "invalid_parameter"],
    ["/v1/history/ohlcv?exchange=binance&symbol=BTC/USDT&since=0&format=xml", 400, "invalid_parameter"],
    ["/v1/history/ohlcv?exchange=binance&symbol=ETH/USDT&since=0", 503, "store_unavailable"],
    ["/v1/markets/ticker?exchange=binance&symbol=SLOW/504", 504, "upstream_timeout"],
    ["/v1/markets/trades?exchange=binance&symbol=SLOW/504", 504, "upstream_timeout"]
  ])("%s → %i %s", async (path, status, code) => {
    const checked = await check(api, server, path)
    expect(checked.status).toBe(status)
    expect(codeOf(checked)).toBe(code)
    expect(checked.headers["cache-control"]).toBe("no-store")
    if (status === 429 || code === "upstream_unavailable") {
      expect(Number(checked.headers["retry-after"])).toBeGreaterThan(0)
    }
    // the parameters the spec documents reject exactly the requests the server calls invalid
    expect(checked.requestValid).toBe(code !== "invalid_parameter")
  })

  it.each([
    ["/v1/stream/trades?exchange=binance", 400, "invalid_parameter"],
    ["/v1/stream/ticker?exchange=nope&symbol=BTC/USDT", 400, "unknown_exchange"],
    ["/v1/stream/ticker?exchange=binance&symbol=BTC/USDT&threshold=2", 400, "invalid_parameter"],
    ["/v1/stream/orderbook?exchange=binance&symbol=BTC/USDT&depth=0", 400, "invalid_parameter"],
    ["/v1/stream/ohlcv?exchange=binance&symbol=BTC/USDT&interval=3m", 400, "unsupported_interval"],
    ["/v1/stream/orderbook?exchange=binance&symbol=NOPE/USDT", 404, "symbol_not_found"]
  ])("stream %s → %i %s", async (path, status, code) => {
    const checked = await check(api, server, path)
    expect(checked.status).toBe(status)
    expect(codeOf(checked)).toBe(code)
    expect(checked.requestValid).toBe(code !== "invalid_parameter")
  })

  it("200 text/event-stream on the SSE routes, whose events carry the event_type the spec names", async () => {
    for (const channel of ["ticker", "trades", "orderbook", "ohlcv"]) {
      const checked = await check(api, server, `/v1/stream/${channel}?exchange=binance&symbol=BTC/USDT`)
      expect(checked.status).toBe(200)
      expect(checked.operationId).toBe(`streams.${channel}`)
      expect(checked.headers["content-type"]).toBe("text/event-stream")
      expect(checked.headers["cache-control"]).toBe("no-cache")
    }
    const sse = await openSse(`${server.http}/v1/stream/ticker?exchange=binance&symbol=BTC/USDT`)
    try {
      const event = await sse.next("ticker")
      expect(event).toMatchObject({ event_type: "ticker", exchange: "binance", symbol: "BTC/USDT" })
    } finally {
      sse.close()
    }
  })

  it("the validator rejects bodies and headers the spec forbids", async () => {
    const ticker = (await check(api, server, "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT")).body as object
    expect(api.validateResponse(ticker, "markets.ticker", 200).valid).toBe(true)
    expect(api.validateResponse({ ...ticker, last: "42000" }, "markets.ticker", 200).valid).toBe(false)
    expect(api.validateResponse({ code: "oops", message: "m" }, "markets.ticker", 400).valid).toBe(false)
    expect(api.validateResponse({ code: "symbol_not_found", message: "m" }, "markets.ticker", 404).valid).toBe(false)
    expect(api.validateResponseHeaders({ "x-cache": "MAYBE" }, "markets.ticker", { statusCode: 200 }).valid).toBe(false)
    expect(api.validateResponseHeaders({ "retry-after": "soon" }, "markets.ticker", { statusCode: 503 }).valid).toBe(
      false
    )
  })

  it("every operation of the spec answered a documented 200 above", () => {
    const operations = api.getOperations().map((operation) => operation.operationId ?? "")
    expect(operations.length).toBeGreaterThanOrEqual(14)
    expect(operations.filter((id) => !succeeded.has(id))).toEqual([])
  })
})

describe("OpenAPI: API keys and the inbound rate limit as documented", () => {
  let server: StreamServer
  let api: OpenAPIBackend

  beforeAll(async () => {
    server = await startStreamServer(
      { API_KEYS: "key-one,key-two", RATE_LIMIT_ENABLED: "true", RATE_LIMIT_REQUESTS: "3", RATE_LIMIT_WINDOW: "60" },
      MockExchange
    )
    api = await load(server)
  })
  afterAll(() => server.close())

  it("401 without a key or with a wrong one, on REST and stream routes; the health route stays public", async () => {
    for (const [path, headers] of [
      ["/v1/exchanges", {}],
      ["/v1/markets/ticker?exchange=binance&symbol=BTC/USDT", { "x-api-key": "wrong" }],
      ["/market/history?exchange=binance&symbol=BTC/USDT", { authorization: "Bearer wrong" }],
      ["/v1/stream/ticker?exchange=binance&symbol=BTC/USDT", {}]
    ] as const) {
      const checked = await check(api, server, path, headers)
      expect(checked.status).toBe(401)
      expect(codeOf(checked)).toBe("unauthorized")
      expect(checked.headers["www-authenticate"]).toBe('Bearer realm="mcp-crypto-data-server"')
      expect(checked.headers["ratelimit-limit"]).toBeUndefined()
    }
    expect((await check(api, server, "/v1/health")).status).toBe(200)
  })

  it("either documented scheme is accepted; RateLimit-* on each answer, then 429 rate_limited with Retry-After", async () => {
    const first = await check(api, server, "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT", {
      "x-api-key": "key-one"
    })
    expect(first.status).toBe(200)
    expect(first.headers["ratelimit-limit"]).toBe("3")
    expect(first.headers["ratelimit-remaining"]).toBe("2")
    expect(first.headers["ratelimit-policy"]).toBe("3;w=60")
    const second = await check(api, server, "/v1/markets/ticker?exchange=nope&symbol=BTC/USDT", {
      authorization: "Bearer key-one"
    })
    expect(second.status).toBe(400)
    expect(second.headers["ratelimit-remaining"]).toBe("1")
    const third = await check(api, server, "/v1/exchanges", { "x-api-key": "key-one" })
    expect(third.status).toBe(200)
    expect(third.headers["ratelimit-remaining"]).toBe("0")
    for (const path of ["/v1/exchanges", "/v1/stream/ticker?exchange=binance&symbol=BTC/USDT"]) {
      const limited = await check(api, server, path, { "x-api-key": "key-one" })
      expect(limited.status).toBe(429)
      expect(codeOf(limited)).toBe("rate_limited")
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0)
      expect(limited.headers["ratelimit-remaining"]).toBe("0")
    }
    // another key has its own budget
    expect((await check(api, server, "/v1/exchanges", { "x-api-key": "key-two" })).status).toBe(200)
  })
})
