import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { ofType, openWs, refusedUpgrade } from "./clients.js"
import { type StreamServer, startStreamServer } from "./server.js"

const KEY = "stream-secret"
let emulator: Emulator
let server: StreamServer

beforeAll(async () => {
  emulator = await startEmulator({ clock: "frozen", wsPushIntervalMs: 50 })
  server = await startStreamServer({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
    CCXT_THROTTLE: "false",
    API_KEYS: KEY,
    WS_MAX_MESSAGE_BYTES: "2048",
    WS_MAX_MESSAGES_PER_SECOND: "100000"
  })
})

afterAll(async () => {
  await server?.close()
  await emulator?.close()
})

describe("streams behind API keys", () => {
  it("refuses SSE and WebSocket upgrades without a valid key, before anything streams", async () => {
    const sse = await fetch(`${server.http}/v1/stream/ticker?exchange=binance&symbol=BTC/USDT`)
    expect(sse.status).toBe(401)
    expect(((await sse.json()) as { code: string }).code).toBe("unauthorized")
    for (const path of [
      "/ws",
      "/ws/ticker?exchange=binance&symbol=BTC/USDT",
      "/ws/realtime?exchange=binance&symbol=BTC/USDT"
    ]) {
      const refused = await refusedUpgrade(`${server.ws}${path}`)
      expect([refused.status, refused.body.code]).toEqual([401, "unauthorized"])
    }
    expect((await server.stats()).connections).toHaveLength(0)
  })

  it("streams with the key in a header", async () => {
    const ws = await openWs(`${server.ws}/ws/ticker?exchange=binance&symbol=BTC/USDT`, {
      headers: { "x-api-key": KEY }
    })
    const ticker = await ws.next(ofType("ticker"))
    expect(ticker.last).toBe(emulator.model.ticker24h("binance", "BTC/USDT").last)
    await ws.close()
  })
})

const hostileFrame = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        op: fc.oneof(
          fc.constantFrom("subscribe", "unsubscribe", "ping", "SUBSCRIBE", ""),
          fc.string({ maxLength: 12 })
        ),
        channel: fc.oneof(fc.constantFrom("ticker", "trades", "orderbook", "ohlcv"), fc.string({ maxLength: 12 })),
        exchange: fc.oneof(fc.constantFrom("binance", "kraken", "nope", "coinbasepro"), fc.string({ maxLength: 12 })),
        symbol: fc.oneof(fc.constantFrom("DOGE/XYZ", "../../etc", "%00", "BTC/USDT/X"), fc.string({ maxLength: 30 })),
        threshold: fc.oneof(fc.double(), fc.string({ maxLength: 5 }), fc.constant(null)),
        depth: fc.oneof(fc.integer(), fc.constant(-1), fc.constant(1e12)),
        interval: fc.oneof(fc.constantFrom("1m", "7m", "", "1y"), fc.string({ maxLength: 6 })),
        id: fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.object({ maxDepth: 1 }))
      },
      { requiredKeys: [] }
    )
    .map((v) => JSON.stringify(v))
)

describe("hostile WebSocket frames (property-based)", () => {
  it("never crash or close the connection; every frame is answered or ignored, and the server stays healthy", async () => {
    const ws = await openWs(`${server.ws}/ws`, { headers: { "x-api-key": KEY } })
    await fc.assert(
      fc.asyncProperty(fc.array(hostileFrame, { minLength: 1, maxLength: 20 }), async (frames) => {
        for (const frame of frames) ws.send(frame)
        const from = ws.messages.length
        const marker = `probe-${from}`
        ws.send({ op: "ping", id: marker })
        const ack = await ws.next((m) => m["event_type"] === "ack" && m["id"] === marker, { from, timeoutMs: 5000 })
        expect(ack.op).toBe("ping")
        for (const message of ws.messages.slice(from)) {
          if (message["event_type"] === "error") expect(typeof message["code"]).toBe("string")
        }
      }),
      { numRuns: 40 }
    )
    expect(ws.socket.readyState).toBe(ws.socket.OPEN)
    expect(ws.messages.filter((m) => m["code"] === "internal_error")).toEqual([])
    await ws.close()
    const health = await fetch(`${server.http}/v1/health`)
    expect(health.status).toBe(200)
  }, 60_000)

  it("an oversized frame closes with 1009 and nothing else breaks", async () => {
    const ws = await openWs(`${server.ws}/ws`, { headers: { "x-api-key": KEY } })
    ws.send("x".repeat(5000))
    expect((await ws.closed).code).toBe(1009)
    const other = await openWs(`${server.ws}/ws`, { headers: { "x-api-key": KEY } })
    other.send({ op: "ping", id: "still-up" })
    expect((await other.next(ofType("ack", { id: "still-up" }))).op).toBe("ping")
    await other.close()
  })
})
