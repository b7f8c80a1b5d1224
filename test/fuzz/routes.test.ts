/**
 * Property-based bad input against every HTTP route of the real server (real routes, middleware, caches and the
 * resilience layer over the mock exchange), sent byte for byte over TCP. Whatever arrives: no 5xx, no hang, no crash,
 * and every 4xx is JSON with a `code`. WebSocket frames are fuzzed with the streams (test/streams).
 */
import { HttpLayerRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import fc from "fast-check"
import { createServer } from "node:http"
import { AppConfig } from "../../src/AppConfig.js"
import { KvCache } from "../../src/Cache/KvCache.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { MarketQueriesLive } from "../../src/Markets/Queries.js"
import { AppRoutes } from "../../src/Routes.js"
import { installJsonClientErrors } from "../../src/Resilience/ClientErrors.js"
import { ResilientExchangeLive } from "../../src/Resilience/ResilientExchange.js"
import { makeMockExchange } from "../support/mockExchange.js"
import { getJson, ResilientEmulatorServer } from "../resilience/server.js"
import { buildRequest, type RawResponse, rawRequest } from "./rawHttp.js"

const MockExchangeLive = Layer.unwrapEffect(Effect.map(makeMockExchange, (mock) => mock.layer))

const DisabledRedis = Layer.effect(
  KvCache,
  Effect.map(KvCache, (memory) => ({
    ...memory,
    status: Effect.succeed({ backend: "memory" as const, redis: "disabled" as const })
  }))
).pipe(Layer.provide(MemoryKvCacheLive({ maxEntries: 10_000 })))

/** Like src/Server.ts (plus the JSON answers to unparseable requests), over the mock exchange, on a free port. */
const FuzzServer = (env: Record<string, string> = {}) =>
  HttpLayerRouter.serve(AppRoutes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(MarketQueriesLive),
    Layer.provide(ResponseCacheLive),
    Layer.provide(DisabledRedis),
    Layer.provide(ResilientExchangeLive),
    Layer.provide(MockExchangeLive),
    Layer.provide(
      AppConfig.fromRecord({
        REDIS_ENABLED: "false",
        RATE_LIMIT_ENABLED: "false",
        EXCHANGE_RATE_LIMIT_BINANCE: "10000",
        EXCHANGE_RATE_LIMIT_KRAKEN: "10000",
        ENABLED_EXCHANGES: "binance,kraken",
        ...env
      })
    ),
    Layer.provideMerge(
      NodeHttpServer.layer(() => installJsonClientErrors(createServer()), { port: 0, host: "127.0.0.1" })
    )
  )

const port = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "TcpAddress" ? server.address.port : 0
)

/** Percent-encodes every byte of the UTF-8 form except unreserved characters (lone surrogates become U+FFFD). */
const pct = (s: string) =>
  Array.from(Buffer.from(s, "utf8"))
    .map((b) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, "0").toUpperCase()}`
    )
    .join("")

const SEGMENTS = [
  "v1",
  "markets",
  "ticker",
  "tickers",
  "ohlcv",
  "orderbook",
  "trades",
  "exchanges",
  "health",
  "market",
  "history",
  "docs",
  "redoc",
  "openapi.json",
  "mcp",
  "metrics",
  "..",
  "%2e%2e",
  ".",
  "",
  "%00",
  "%zz",
  "%",
  "%C3%BC",
  "%F0%9F%92%A9",
  "%2F",
  "%5C",
  "ü",
  "\u202e",
  "~",
  ";",
  "a".repeat(600)
]

const segment = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...SEGMENTS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map(pct) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 6 }).map(pct) }
)

const KNOWN_ROUTES = [
  "/v1/markets/ticker",
  "/v1/markets/tickers",
  "/v1/markets/ohlcv",
  "/v1/markets/orderbook",
  "/v1/markets/trades",
  "/v1/markets",
  "/v1/exchanges",
  "/v1/health",
  "/market/ticker",
  "/market/history",
  "/openapi.json",
  "/mcp",
  "/"
]

const path = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...KNOWN_ROUTES) },
  { weight: 2, arbitrary: fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => `/${s.join("/")}`) },
  { weight: 1, arbitrary: fc.constantFrom("/../../etc/passwd", "/v1/../v1/health", "/%2e%2e/%2e%2e/", "//v1//health") }
)

const PARAMS = [
  "exchange",
  "symbol",
  "symbols",
  "interval",
  "since",
  "limit",
  "convert",
  "q",
  "base",
  "quote",
  "offset"
]
const GOOD = [
  "binance",
  "kraken",
  "coinbasepro",
  "BTC/USDT",
  "eth-usdt",
  "BTC/USDT,ETH/USDT",
  "1m",
  "1h",
  "5",
  "100",
  "USD"
]
const HOSTILE = [
  "",
  "%00",
  "%",
  "%zz",
  "%E0%A4%A",
  "-1",
  "1e309",
  "NaN",
  "Infinity",
  "0x10",
  "+",
  "%20",
  "9".repeat(400),
  pct("BTC/USDT".repeat(200)),
  pct("../../etc/passwd"),
  pct("<script>alert(1)</script>"),
  pct("' OR 1=1 --"),
  pct('{"$gt":""}'),
  pct("\u0000\u0001\u001f\u007f"),
  pct("\ud800"),
  "%F0%9F%92%A9",
  "BOOM%2FDEFECT".toLowerCase(),
  "constructor",
  "__proto__",
  "toString",
  "hasOwnProperty",
  "CONSTRUCTOR"
]
const paramValue = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...GOOD).map(pct) },
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 2, arbitrary: fc.string({ maxLength: 30 }).map(pct) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 10 }).map(pct) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 5_000 }).map((n) => "A".repeat(n)) }
)
const param = fc.tuple(
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...PARAMS) },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }).map(pct) }
  ),
  paramValue,
  fc.constantFrom("=", "=", "=", "", "==")
)
const query = fc.oneof(
  fc.constant(""),
  fc
    .array(param, { maxLength: 7 })
    .map((ps) => `?${ps.map(([k, v, eq]) => `${k}${eq}${eq === "" ? "" : v}`).join("&")}`),
  fc.constantFrom("?", "?&&&", "?=", "?#frag", "?%")
)

const HEADER_NAMES = [
  "X-API-Key",
  "Authorization",
  "Accept",
  "Accept-Encoding",
  "Content-Type",
  "Origin",
  "X-Forwarded-For",
  "Cookie",
  "Range",
  "If-None-Match",
  "Mcp-Session-Id",
  "Last-Event-ID",
  "User-Agent"
]
/** Header values the client can send at all: no CR, LF or other control characters (those are framing tests). */
const withoutControls = (s: string) =>
  Array.from(s)
    .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
    .join("")

const headerValue = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }).map((s) => withoutControls(s).trim()) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "Bearer ",
      "Bearer \u00ff\u00fe",
      "application/json",
      "text/event-stream",
      "*/*",
      "gzip, br",
      "null",
      "bytes=0-1,-5",
      "\u00e9\u00e8",
      "😀",
      "1.2.3.4, ::1, garbage"
    )
  },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 6_000 }).map((n) => "x".repeat(n)) }
)
const header = fc
  .tuple(
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...HEADER_NAMES) },
      { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/) }
    ),
    headerValue
  )
  .filter(([name]) => !/^(content-length|transfer-encoding|host|connection|expect|upgrade|te|trailer)$/i.test(name))

const METHODS = ["GET", "GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]

const request = fc.record({
  method: fc.constantFrom(...METHODS),
  path,
  query,
  headers: fc.array(header, { maxLength: 5 }),
  body: fc.option(
    fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom("{}", "[]", '{"jsonrpc":"2.0"}', "null", "{")),
    {
      nil: undefined
    }
  )
})

/** Our error shape ({ code, message }), or on /mcp a JSON-RPC error, which is what MCP clients expect there. */
const isJsonError = (res: RawResponse) => {
  try {
    const parsed: unknown = JSON.parse(res.body)
    if (typeof parsed !== "object" || parsed === null) return false
    if ("code" in parsed && typeof parsed.code === "string") return true
    return "jsonrpc" in parsed && "error" in parsed && typeof parsed.error === "object" && parsed.error !== null
  } catch {
    return false
  }
}

/** What must hold for any answer: it came, it is not a 5xx, and an error says what went wrong in JSON. */
const checkAnswer = (method: string, res: RawResponse, label: string) => {
  expect(res.timedOut, `${label}: no answer`).toBe(false)
  expect(res.status, `${label}: status`).toBeGreaterThanOrEqual(200)
  expect(res.status, `${label}: ${res.body.slice(0, 200)}`).toBeLessThan(500)
  if (res.status >= 400 && method !== "HEAD") {
    expect(isJsonError(res), `${label}: not a JSON error: ${res.body.slice(0, 200)}`).toBe(true)
  }
}

const TICKER = "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT"

layer(FuzzServer(), { timeout: 120_000 })("hostile HTTP input", (it) => {
  it.effect("random and hostile methods, paths, query strings, headers and bodies: never 5xx, errors are JSON", () =>
    Effect.gen(function* () {
      const p = yield* port
      const primed = yield* Effect.promise(() => rawRequest(p, buildRequest("GET", TICKER, [])))
      expect([primed.status, primed.headers["x-cache"]]).toEqual([200, "MISS"])

      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(request, async (r) => {
            const target = `${r.path}${r.query}`
            const res = await rawRequest(p, buildRequest(r.method, target, r.headers, r.body))
            checkAnswer(r.method, res, `${r.method} ${target.slice(0, 200)}`)
          }),
          { numRuns: Number(process.env.FUZZ_RUNS ?? 600) }
        )
      )

      // still serving, and from the cache it had before
      const after = yield* Effect.promise(() => rawRequest(p, buildRequest("GET", TICKER, [])))
      expect([after.status, after.headers["x-cache"], after.body]).toEqual([200, "HIT", primed.body])
    })
  )

  it.effect("malformed HTTP framing gets a JSON 4xx from the parser guard, never a dropped connection", () =>
    Effect.gen(function* () {
      const p = yield* port
      const framing = fc.oneof(
        // an invalid method or version, or random bytes for a request line
        fc
          .tuple(
            fc.string({ unit: "binary", minLength: 1, maxLength: 20 }),
            fc.constantFrom("HTTP/1.1", "HTTP/2.0", "HTTP/9", "")
          )
          .map(([line, version]) =>
            Buffer.from(`${line.replace(/[\r\n]/g, "")} / ${version}\r\nHost: x\r\n\r\n`, "utf8")
          ),
        // a header with a control character, no colon, a space before the colon, or a bare LF
        fc
          .constantFrom(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0000b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX-Bad : v\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n",
            "GET /v1/health HTTP/1.1\r\n\r\n",
            "GET /v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET /v1 health HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /v1/\u0001health HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /mcp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n\r\n"
          )
          .map((s) => Buffer.from(s, "latin1"))
      )
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(framing, async (bytes) => {
            const res = await rawRequest(p, bytes)
            const text = bytes.toString("latin1")
            // HTTP/1.1 without Host: Node answers 400 itself (no body, no hook) before the request reaches any handler
            if (/^GET \/v1\/health HTTP\/1\.1\r\n\r\n$/.test(text)) expect([res.status, res.body]).toEqual([400, ""])
            else checkAnswer("GET", res, JSON.stringify(text.slice(0, 80)))
          }),
          { numRuns: 150 }
        )
      )
    })
  )

  it.effect("size limits: URL and headers together over 16 KiB are 431 JSON; long but smaller URLs are JSON 4xx", () =>
    Effect.gen(function* () {
      const p = yield* port
      const longUrl = yield* Effect.promise(() =>
        rawRequest(p, buildRequest("GET", `/v1/markets/ticker?exchange=binance&symbol=${"A".repeat(20_000)}`, []))
      )
      expect(longUrl.status).toBe(431)
      expect(JSON.parse(longUrl.body)).toMatchObject({ code: "request_too_large" })

      const bigHeader = yield* Effect.promise(() =>
        rawRequest(p, buildRequest("GET", TICKER, [["X-Padding", "p".repeat(20_000)]]))
      )
      expect(bigHeader.status).toBe(431)
      expect(isJsonError(bigHeader)).toBe(true)

      const manyHeaders = yield* Effect.promise(() =>
        rawRequest(
          p,
          buildRequest(
            "GET",
            TICKER,
            Array.from({ length: 400 }, (_, i) => [`X-H${i}`, "v".repeat(40)] as const)
          )
        )
      )
      expect(manyHeaders.status).toBe(431)

      for (const target of [
        `/v1/markets/ticker?exchange=binance&symbol=${"A".repeat(12_000)}`,
        `/${"x/".repeat(5_000)}`,
        `/v1/markets/tickers?exchange=binance&symbols=${Array.from({ length: 1_000 }, () => "BTC/USDT").join(",")}`
      ]) {
        const res = yield* Effect.promise(() => rawRequest(p, buildRequest("GET", target, [])))
        expect([400, 404]).toContain(res.status)
        expect(isJsonError(res)).toBe(true)
      }
    })
  )
})

layer(FuzzServer({ API_KEYS: "fuzz-key-1,fuzz-key-2" }), { timeout: 120_000 })(
  "hostile HTTP input with API keys",
  (it) => {
    it.effect("hostile credentials and requests: 401 or another JSON 4xx, never 5xx; the right key still works", () =>
      Effect.gen(function* () {
        const p = yield* port
        const credentials = fc.oneof(
          fc.constant<ReadonlyArray<readonly [string, string]>>([]),
          fc.tuple(fc.constantFrom("X-API-Key", "Authorization", "x-api-key"), headerValue).map((h) => [h]),
          fc.constantFrom<ReadonlyArray<readonly [string, string]>>(
            [["Authorization", "Bearer fuzz-key-1x"]],
            [["Authorization", "Bearer  fuzz-key-1"]],
            [["Authorization", "bearer"]],
            [
              ["X-API-Key", "fuzz-key-1"],
              ["X-API-Key", "wrong"]
            ],
            [["X-API-Key", "fuzz-key-"]],
            [["X-API-Key", "\u00ff".repeat(64)]]
          )
        )
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(request, credentials, async (r, auth) => {
              const target = `${r.path}${r.query}`
              const res = await rawRequest(p, buildRequest(r.method, target, [...r.headers, ...auth], r.body))
              checkAnswer(r.method, res, `${r.method} ${target.slice(0, 200)}`)
            }),
            { numRuns: Number(process.env.FUZZ_RUNS ?? 600) / 2 }
          )
        )
        const ok = yield* Effect.promise(() =>
          rawRequest(p, buildRequest("GET", TICKER, [["X-API-Key", "fuzz-key-2"]]))
        )
        expect(ok.status).toBe(200)
      })
    )
  }
)

/** Names every plain object inherits: a lookup by a client-given name must never find them (issue 12). */
const PROTOTYPE_NAMES = ["constructor", "Constructor", "CONSTRUCTOR", "__proto__", "toString", "hasOwnProperty"]

/** Every REST route with valid values for its parameters, and what a wrong value of each must give. */
const ROUTE_PARAMS: ReadonlyArray<{
  readonly path: string
  readonly good: Readonly<Record<string, string>>
  /** Expected status per parameter; absent: any answer below 500 (filters, where no match is a fine answer). */
  readonly expect: Readonly<Record<string, ReadonlyArray<number>>>
}> = [
  {
    path: "/v1/markets/ticker",
    good: { exchange: "binance", symbol: "BTC/USDT" },
    expect: { exchange: [400], symbol: [400, 404], convert: [200, 400] }
  },
  {
    path: "/v1/markets/tickers",
    good: { exchange: "binance", symbols: "BTC/USDT,ETH/USDT" },
    expect: { exchange: [400], symbols: [400, 404] }
  },
  {
    path: "/v1/markets/ohlcv",
    good: { exchange: "binance", symbol: "BTC/USDT", interval: "1h", limit: "5" },
    expect: { exchange: [400], symbol: [400, 404], interval: [400], since: [400], limit: [400] }
  },
  {
    path: "/v1/markets/orderbook",
    good: { exchange: "binance", symbol: "BTC/USDT", limit: "5" },
    expect: { exchange: [400], symbol: [400, 404], limit: [400] }
  },
  {
    path: "/v1/markets/trades",
    good: { exchange: "binance", symbol: "BTC/USDT", limit: "5" },
    expect: { exchange: [400], symbol: [400, 404], limit: [400] }
  },
  {
    path: "/v1/markets",
    good: { exchange: "binance" },
    expect: { exchange: [400], offset: [400], limit: [400], q: [200], base: [200], quote: [200] }
  },
  {
    path: "/market/ticker",
    good: { exchange: "binance", symbol: "BTC/USDT" },
    expect: { exchange: [400], symbol: [400, 404], convert: [200, 400] }
  },
  {
    path: "/market/history",
    good: { exchange: "binance", symbol: "BTC/USDT", interval: "1h", limit: "5" },
    expect: { exchange: [400], symbol: [400, 404], interval: [400], since: [400], limit: [400] }
  }
]

layer(ResilientEmulatorServer({ EXCHANGE_TIMEOUT: "5" }), { excludeTestServices: true, timeout: 120_000 })(
  "prototype names in every parameter of every REST route (real ccxt over the emulator)",
  (it) => {
    for (const route of ROUTE_PARAMS) {
      for (const [name, statuses] of Object.entries(route.expect)) {
        it.effect(`${route.path} ${name}=constructor|__proto__|toString|hasOwnProperty ⇒ ${statuses.join("/")}`, () =>
          Effect.gen(function* () {
            for (const hostile of PROTOTYPE_NAMES) {
              const values = { ...route.good, [name]: name === "symbols" ? `BTC/USDT,${hostile}` : hostile }
              const url = `${route.path}?${new URLSearchParams(values).toString()}`
              const res = yield* getJson(url)
              expect([url, res.status]).toEqual([url, expect.toBeOneOf([...statuses])])
              if (res.status >= 400) {
                expect(typeof (res.json as { code?: unknown }).code, url).toBe("string")
                expect((res.json as { message?: string }).message, url).not.toMatch(/function|prototype/i)
              }
            }
          })
        )
      }
    }
  }
)
