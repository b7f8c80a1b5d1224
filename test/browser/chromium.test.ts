import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import type { Browser } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { type StreamServer, startStreamServer } from "../streams/server.js"
import { launchChromium } from "../web/browser.js"

const KEY = "chromium-key"

/** A page of another origin: the tiny static site a dashboard on a dev server would be. */
const PAGE = "<!doctype html><html><head><title>client</title></head><body>client page</body></html>"

let emulator: Emulator
let server: StreamServer
let site: Server
let sitePort: number
let browser: Browser

beforeAll(async () => {
  site = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/html" })
    response.end(PAGE)
  })
  await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve))
  sitePort = (site.address() as AddressInfo).port
  emulator = await startEmulator({ wsPushIntervalMs: 50 })
  server = await startStreamServer({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance",
    API_KEYS: KEY,
    RATE_LIMIT_ENABLED: "true",
    RATE_LIMIT_REQUESTS: "1000",
    // the second fetch must find the first answer fresh however slowly a loaded machine runs the page
    TICKER_CACHE_TTL: "60",
    // only the page's exact origin: the same site reached as localhost is another origin, and refused
    CORS_ORIGINS: `http://127.0.0.1:${sitePort}`
  })
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await emulator?.close()
  await new Promise((resolve) => site?.close(resolve))
})

interface Outcome {
  readonly rest: { status: number; xCache: Array<string | null>; remaining: string | null } | string
  readonly sse: { types: Array<string>; ids: Array<string> } | string
  readonly ws: { first: string } | string
}

/** What the page does, in the page: fetch with the key header (a preflight), EventSource and WebSocket with api_key. */
const script = (api: string, ws: string, key: string) => `(async () => {
  const withTimeout = (promise, ms, what) =>
    Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(what + ": timed out"), ms))])
  const ticker = "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT"
  const rest = await (async () => {
    // no-store: the browser's own HTTP cache (Cache-Control: max-age) would replay the first answer, MISS and all
    try {
      const first = await fetch(${JSON.stringify(api)} + ticker, { cache: "no-store", headers: { "X-API-Key": ${JSON.stringify(key)} } })
      await first.text()
      const second = await fetch(${JSON.stringify(api)} + ticker, { cache: "no-store", headers: { "X-API-Key": ${JSON.stringify(key)} } })
      await second.json()
      return {
        status: second.status,
        xCache: [first.headers.get("X-Cache"), second.headers.get("X-Cache")],
        remaining: second.headers.get("RateLimit-Remaining")
      }
    } catch (error) {
      return "fetch failed: " + error.name
    }
  })()
  const sse = await withTimeout(new Promise((resolve) => {
    const source = new EventSource(${JSON.stringify(api)} + "/v1/stream/ticker?exchange=binance&symbol=BTC/USDT&api_key=" + ${JSON.stringify(key)})
    const types = [], ids = []
    source.onmessage = (event) => {
      types.push(JSON.parse(event.data).event_type)
      ids.push(event.lastEventId)
      if (types.includes("ticker")) { source.close(); resolve({ types, ids }) }
    }
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) resolve("eventsource failed") }
  }), 10000, "eventsource")
  const ws = await withTimeout(new Promise((resolve) => {
    const socket = new WebSocket(${JSON.stringify(ws)} + "/ws/ticker?exchange=binance&symbol=BTC/USDT&api_key=" + ${JSON.stringify(key)})
    let opened = false
    socket.onopen = () => { opened = true }
    socket.onmessage = (event) => { socket.close(); resolve({ first: JSON.parse(event.data).event_type }) }
    socket.onclose = () => resolve(opened ? "closed without a message" : "websocket refused")
  }), 10000, "websocket")
  return { rest, sse, ws }
})()`

const visit = async (origin: string): Promise<Outcome> => {
  const page = await browser.newPage()
  try {
    await page.goto(`${origin}/`)
    return await page.evaluate<Outcome>(script(server.http, server.ws, KEY))
  } finally {
    await page.close()
  }
}

describe("a page of another origin in Chromium", () => {
  it("an allowed origin fetches REST (reading X-Cache), receives EventSource messages and WebSocket events with api_key", async () => {
    const outcome = await visit(`http://127.0.0.1:${sitePort}`)
    // X-Cache and RateLimit-* are readable cross-origin only because they are exposed
    // the two fetches are the key's only counted requests so far (the preflights are not counted)
    expect(outcome.rest).toEqual({ status: 200, xCache: ["MISS", "HIT"], remaining: "998" })
    expect(typeof outcome.sse).toBe("object")
    const sse = outcome.sse as { types: Array<string>; ids: Array<string> }
    // onmessage saw every frame: the ticker, and whatever came before it (heartbeats, status)
    expect(sse.types.at(-1)).toBe("ticker")
    expect(sse.ids.map(Number)).toEqual(sse.ids.map((_, i) => i + 1))
    expect(outcome.ws).toEqual({ first: "ticker" })
  })

  it("a disallowed origin is refused: fetch fails on CORS, EventSource fails, the WebSocket upgrade gets 403", async () => {
    const outcome = await visit(`http://localhost:${sitePort}`)
    expect(outcome).toEqual({
      rest: "fetch failed: TypeError",
      sse: "eventsource failed",
      ws: "websocket refused"
    })
  })
})
