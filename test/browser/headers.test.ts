import { Logger, LogLevel, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { WebSocket } from "ws"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { type StreamServer, startStreamServer } from "../streams/server.js"

const KEY = "browser-secret-key"
const ALLOWED = "http://127.0.0.1:5173"
const OTHER = "https://evil.example"
const TICKER = "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT"
const SSE = "/v1/stream/ticker?exchange=binance&symbol=BTC/USDT"

const EXPOSED = "X-Cache, Age, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, Retry-After"

let emulator: Emulator
let server: StreamServer
const logLines: Array<string> = []

beforeAll(async () => {
  emulator = await startEmulator({ wsPushIntervalMs: 50 })
  const logs = Layer.mergeAll(
    Logger.replace(
      Logger.defaultLogger,
      Logger.map(Logger.jsonLogger, (line) => {
        logLines.push(line)
      })
    ),
    Logger.minimumLogLevel(LogLevel.Info)
  )
  server = await startStreamServer(
    { ...emulator.env(), ENABLED_EXCHANGES: "binance", API_KEYS: KEY, CORS_ORIGINS: `${ALLOWED},https://app.example` },
    undefined,
    logs
  )
})

afterAll(async () => {
  await server?.close()
  await emulator?.close()
})

const request = (path: string, init: RequestInit = {}) => fetch(`${server.http}${path}`, init)

const securityHeaders = (headers: Headers) => ({
  nosniff: headers.get("x-content-type-options"),
  referrer: headers.get("referrer-policy")
})

const preflight = (path: string, origin: string, method = "GET") =>
  request(path, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": method, "access-control-request-headers": "x-api-key" }
  })

describe("preflight", () => {
  it("is answered 204 for REST, SSE and /mcp from an allowed origin, without an API key", async () => {
    for (const [path, method] of [
      [TICKER, "GET"],
      [SSE, "GET"],
      ["/mcp", "POST"]
    ] as const) {
      const res = await preflight(path, ALLOWED, method)
      expect(res.status, path).toBe(204)
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED)
      expect(res.headers.get("access-control-allow-methods")).toBe("GET, HEAD, POST, OPTIONS")
      expect(res.headers.get("access-control-allow-headers")).toContain("X-API-Key")
      expect(res.headers.get("access-control-allow-headers")).toContain("Mcp-Protocol-Version")
      expect(res.headers.get("access-control-max-age")).toBe("600")
      expect(res.headers.get("vary")).toBe("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
      expect(securityHeaders(res.headers)).toEqual({ nosniff: "nosniff", referrer: "no-referrer" })
    }
  })

  it("is refused 403 JSON for an origin CORS_ORIGINS does not list, with no allow-origin header", async () => {
    const res = await preflight(TICKER, OTHER)
    expect(res.status).toBe(403)
    expect(res.headers.get("access-control-allow-origin")).toBeNull()
    expect(await res.json()).toEqual({
      code: "origin_not_allowed",
      message: "Origin https://evil.example is not allowed; allowed origins are set by CORS_ORIGINS"
    })
    // the default localhost rule is replaced by the configured list
    expect((await preflight(TICKER, "http://localhost:3000")).status).toBe(403)
    expect((await preflight(TICKER, "https://app.example")).status).toBe(204)
  })
})

describe("headers on every kind of response", () => {
  it("REST on the Effect path (MISS) and on the hot path (HIT) carry the same CORS and security headers", async () => {
    const headers = { origin: ALLOWED, "x-api-key": KEY }
    const miss = await request(TICKER, { headers })
    expect(miss.status).toBe(200)
    const hit = await request(TICKER, { headers })
    expect(hit.status).toBe(200)
    expect([miss.headers.get("x-cache"), hit.headers.get("x-cache")]).toEqual(["MISS", "HIT"])
    for (const res of [miss, hit]) {
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED)
      expect(res.headers.get("access-control-expose-headers")).toBe(EXPOSED)
      expect(res.headers.get("vary")).toBe("Origin")
      expect(securityHeaders(res.headers)).toEqual({ nosniff: "nosniff", referrer: "no-referrer" })
    }
  })

  it("a request without Origin or from another origin gets the security headers and Vary, never allow-origin", async () => {
    for (const origin of [undefined, OTHER]) {
      const res = await request(TICKER, { headers: { "x-api-key": KEY, ...(origin === undefined ? {} : { origin }) } })
      expect(res.status).toBe(200)
      expect(res.headers.get("access-control-allow-origin")).toBeNull()
      expect(res.headers.get("vary")).toBe("Origin")
      expect(securityHeaders(res.headers)).toEqual({ nosniff: "nosniff", referrer: "no-referrer" })
    }
  })

  it("errors (401, 404), /mcp, /v1/health and the JSON index carry them too; / varies on Accept", async () => {
    const unauthorized = await request(TICKER, { headers: { origin: ALLOWED } })
    expect(unauthorized.status).toBe(401)
    const missing = await request("/no/such/route", { headers: { origin: ALLOWED, "x-api-key": KEY } })
    expect(missing.status).toBe(404)
    const health = await request("/v1/health", { headers: { origin: ALLOWED } })
    expect(health.status).toBe(200)
    const index = await request("/", { headers: { origin: ALLOWED, "x-api-key": KEY, accept: "application/json" } })
    expect(index.status).toBe(200)
    expect(index.headers.get("vary")).toBe("Accept, Origin")
    for (const res of [unauthorized, missing, health, index]) {
      expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED)
      expect(securityHeaders(res.headers)).toEqual({ nosniff: "nosniff", referrer: "no-referrer" })
    }
    const mcp = await request("/mcp", {
      method: "POST",
      headers: {
        origin: ALLOWED,
        "x-api-key": KEY,
        "content-type": "application/json",
        accept: "application/json, text/event-stream"
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" })
    })
    expect(mcp.headers.get("access-control-allow-origin")).toBe(ALLOWED)
    expect(mcp.headers.get("access-control-expose-headers")).toBe(`${EXPOSED}, Mcp-Session-Id, Mcp-Protocol-Version`)
    expect(securityHeaders(mcp.headers)).toEqual({ nosniff: "nosniff", referrer: "no-referrer" })
  })

  it("SSE: the stream and its refusals carry them; api_key in the query admits a stream", async () => {
    const refused = await request(SSE, { headers: { origin: ALLOWED } })
    expect(refused.status).toBe(401)
    expect(refused.headers.get("access-control-allow-origin")).toBe(ALLOWED)
    expect(securityHeaders(refused.headers)).toEqual({ nosniff: "nosniff", referrer: "no-referrer" })
    expect(((await refused.json()) as { message: string }).message).toContain("api_key query parameter")

    const wrong = await request(`${SSE}&api_key=not-the-key`, { headers: { origin: ALLOWED } })
    expect(wrong.status).toBe(401)

    const controller = new AbortController()
    const stream = await request(`${SSE}&api_key=${KEY}`, { headers: { origin: ALLOWED }, signal: controller.signal })
    expect(stream.status).toBe(200)
    expect(stream.headers.get("content-type")).toBe("text/event-stream")
    expect(stream.headers.get("access-control-allow-origin")).toBe(ALLOWED)
    expect(securityHeaders(stream.headers)).toEqual({ nosniff: "nosniff", referrer: "no-referrer" })
    controller.abort()
  })

  it("api_key is not taken on REST routes (headers only there)", async () => {
    expect((await request(`${TICKER}&api_key=${KEY}`)).status).toBe(401)
  })
})

const upgrade = (path: string, headers: Record<string, string>) =>
  new Promise<{ opened: boolean; status?: number; body?: string }>((resolve) => {
    const ws = new WebSocket(`${server.ws}${path}`, { headers })
    ws.once("open", () => {
      ws.close()
      resolve({ opened: true })
    })
    ws.once("unexpected-response", (_request, response) => {
      let body = ""
      response.on("data", (chunk: Buffer) => (body += chunk.toString()))
      response.on("end", () => resolve({ opened: false, status: response.statusCode ?? 0, body }))
    })
    ws.once("error", () => undefined)
  })

describe("WebSocket upgrades follow the origin policy", () => {
  const path = `/ws/ticker?exchange=binance&symbol=BTC/USDT&api_key=${KEY}`

  it("an allowed origin, a same-origin page and a client without Origin may open one; api_key admits it", async () => {
    expect(await upgrade(path, { origin: ALLOWED })).toEqual({ opened: true })
    expect(await upgrade(path, {})).toEqual({ opened: true })
    expect(await upgrade(path, { origin: server.http })).toEqual({ opened: true })
    expect(await upgrade(`/ws?api_key=${KEY}`, { origin: ALLOWED })).toEqual({ opened: true })
  })

  it("another origin gets 403 JSON before the upgrade; no key gets 401", async () => {
    const refused = await upgrade(path, { origin: OTHER })
    expect(refused.status).toBe(403)
    expect(JSON.parse(refused.body ?? "")).toEqual({
      code: "origin_not_allowed",
      message: "Origin https://evil.example may not open WebSockets here; allowed origins are set by CORS_ORIGINS"
    })
    expect((await upgrade("/ws/ticker?exchange=binance&symbol=BTC/USDT", { origin: ALLOWED })).status).toBe(401)
  })
})

describe("api_key is never logged", () => {
  it("request log lines name the route without its query, and no line nor metric label contains the key", async () => {
    const metrics = await (await request("/metrics", { headers: { "x-api-key": KEY } })).text()
    expect(metrics).toContain('route="/v1/stream/ticker"')
    expect(metrics).not.toContain(KEY)
    const requests = logLines.filter((line) => line.includes('"http request"'))
    expect(requests.some((line) => line.includes('"route":"/v1/stream/ticker"'))).toBe(true)
    expect(requests.some((line) => line.includes('"route":"/ws/ticker"'))).toBe(true)
    // the upgrade refused for its origin is logged like any request
    const annotations = requests.map(
      (line) => (JSON.parse(line) as { annotations: { route: string; status: number } }).annotations
    )
    expect(annotations.some((a) => a.route === "/ws/ticker" && a.status === 403)).toBe(true)
    expect(logLines.filter((line) => line.includes(KEY))).toEqual([])
    expect(logLines.filter((line) => line.includes("not-the-key"))).toEqual([])
  })
})
