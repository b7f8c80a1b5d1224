import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { Exchange } from "../../src/Exchange/Exchange.js"
import { makeMockExchange } from "../support/mockExchange.js"
import { type Json, ofType, openWs, refusedUpgrade } from "./clients.js"
import { type StreamServer, startStreamServer } from "./server.js"

/** Names a plain-object lookup would find on Object.prototype. */
const PROTOTYPE_NAMES = ["constructor", "Constructor", "CONSTRUCTOR", "toString", "hasOwnProperty", "valueOf"]
const CHANNELS = ["ticker", "trades", "orderbook", "ohlcv"] as const

const unknownExchange = (name: string) => ({
  code: "unknown_exchange",
  message: `Unknown exchange "${name}". Enabled exchanges: binance, kraken, coinbaseexchange`
})

let emulator: Emulator
let server: StreamServer

beforeAll(async () => {
  emulator = await startEmulator({ wsPushIntervalMs: 100 })
  server = await startStreamServer({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
    CCXT_THROTTLE: "false"
  })
})

afterAll(async () => {
  await server?.close()
  await emulator?.close()
})

const getJson = async (url: string) => {
  const response = await fetch(url)
  return { status: response.status, type: response.headers.get("content-type"), body: (await response.json()) as Json }
}

describe("client-given names that are Object.prototype properties", () => {
  it("get a JSON 4xx on every SSE route, in the exchange, symbol and interval", async () => {
    for (const name of PROTOTYPE_NAMES) {
      for (const channel of CHANNELS) {
        const bad = await getJson(`${server.http}/v1/stream/${channel}?exchange=${name}&symbol=BTC/USDT`)
        expect(bad).toMatchObject({ status: 400, type: "application/json", body: unknownExchange(name) })
        const symbol = await getJson(`${server.http}/v1/stream/${channel}?exchange=binance&symbol=${name}`)
        expect(symbol).toMatchObject({ status: 404, body: { code: "symbol_not_found", exchange: "binance" } })
      }
      const interval = await getJson(`${server.http}/v1/stream/ohlcv?exchange=binance&symbol=BTC/USDT&interval=${name}`)
      expect(interval).toMatchObject({ status: 400, body: { code: "invalid_parameter", parameter: "interval" } })
    }
  })

  it("refuse the single-stream WebSocket upgrade with the same JSON error", async () => {
    for (const route of ["/ws/ticker", "/ws/realtime"]) {
      expect(await refusedUpgrade(`${server.ws}${route}?exchange=constructor&symbol=BTC/USDT`)).toEqual({
        status: 400,
        body: {
          ...unknownExchange("constructor"),
          exchange: "constructor",
          suggestions: [],
          enabled: expect.any(Array),
          _tag: "UnknownExchange"
        }
      })
    }
  })

  it("get an error event on /ws, and the connection keeps answering pings and subscriptions", async () => {
    const client = await openWs(`${server.ws}/ws`)
    try {
      let id = 0
      for (const name of PROTOTYPE_NAMES) {
        id += 1
        client.send({ op: "subscribe", channel: "ticker", exchange: name, symbol: "BTC/USDT", id })
        expect(await client.next((m) => m["id"] === id)).toMatchObject({
          event_type: "error",
          op: "subscribe",
          ...unknownExchange(name)
        })
        id += 1
        client.send({ op: "unsubscribe", channel: "ticker", exchange: name, symbol: "BTC/USDT", id })
        expect(await client.next((m) => m["id"] === id)).toMatchObject({ event_type: "error", op: "unsubscribe" })
        id += 1
        client.send({ op: "ping", id })
        expect(await client.next((m) => m["id"] === id)).toMatchObject({ event_type: "ack", op: "ping" })
      }
      client.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "BTC/USDT", id: "ok" })
      expect(await client.next((m) => m["id"] === "ok")).toMatchObject({ event_type: "ack", op: "subscribe" })
      await client.next(ofType("ticker"), { timeoutMs: 10_000 })
    } finally {
      await client.close()
    }
  })
})

/** The mock exchange, except that resolving "boom" is a defect (a bug, as a prototype lookup was). */
const DefectExchange = Layer.effect(
  Exchange,
  Effect.gen(function* () {
    const base = yield* Effect.provide(Exchange, (yield* makeMockExchange).layer)
    return {
      ...base,
      resolve: (exchange, symbol) =>
        exchange === "boom" ? Effect.dieMessage("lookup bug") : base.resolve(exchange, symbol)
    }
  })
)

describe("a defect while answering a /ws message", () => {
  it("is an internal_error event; the connection goes on answering", async () => {
    const defective = await startStreamServer({}, DefectExchange)
    const client = await openWs(`${defective.ws}/ws`)
    try {
      client.send({ op: "subscribe", channel: "ticker", exchange: "boom", symbol: "BTC/USDT", id: 1 })
      expect(await client.next(ofType("error"))).toEqual({
        event_type: "error",
        code: "internal_error",
        message: "Internal server error"
      })
      client.send({ op: "ping", id: 2 })
      expect(await client.next((m) => m["id"] === 2)).toMatchObject({ event_type: "ack", op: "ping" })
      client.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "BTC/USDT", id: 3 })
      expect(await client.next((m) => m["id"] === 3)).toMatchObject({ event_type: "ack", op: "subscribe" })
      const sse = await getJson(`${defective.http}/v1/stream/ticker?exchange=boom&symbol=BTC/USDT`)
      expect(sse).toMatchObject({ status: 500, body: { code: "internal_error" } })
    } finally {
      await client.close()
      await defective.close()
    }
  })
})
