import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { SymbolNotFound } from "../../src/Domain/Errors.js"
import { Exchange } from "../../src/Exchange/Exchange.js"
import { makeMockExchange } from "../support/mockExchange.js"
import { ofType, openSse, openWs } from "./clients.js"
import { type StreamServer, startStreamServer } from "./server.js"

/** The mock exchange, except that ETH/USDT was delisted: its stream fails for good once started. */
const DelistingExchange = Layer.effect(
  Exchange,
  Effect.gen(function* () {
    const base = yield* Effect.provide(Exchange, (yield* makeMockExchange).layer)
    const delisted = new SymbolNotFound({
      message: 'Symbol "ETH/USDT" is not listed on binance.',
      exchange: "binance",
      symbol: "ETH/USDT",
      suggestions: []
    })
    return {
      ...base,
      watchTicker: (market) =>
        market.symbol === "ETH/USDT"
          ? Effect.succeed({ next: Effect.fail(delisted), reset: Effect.void })
          : base.watchTicker(market)
    }
  })
)

let server: StreamServer

beforeAll(async () => {
  server = await startStreamServer({}, DelistingExchange)
})
afterAll(async () => server?.close())

const expectedError = {
  event_type: "error",
  code: "symbol_not_found",
  message: 'Symbol "ETH/USDT" is not listed on binance.',
  channel: "ticker",
  exchange: "binance",
  symbol: "ETH/USDT"
}

describe("a stream the exchange refuses for good", () => {
  it("ends an SSE stream after an error event", async () => {
    const sse = await openSse(`${server.http}/v1/stream/ticker?exchange=binance&symbol=ETH/USDT`)
    await sse.ended
    // a plain data frame: an `event: error` line would collide with EventSource's own error event
    expect(sse.frames.at(-1)).toMatchObject({ data: expectedError })
    expect(sse.frames.at(-1)?.event).toBeUndefined()
  })

  it("closes /ws/ticker with 1011 after the error event", async () => {
    const client = await openWs(`${server.ws}/ws/ticker?exchange=binance&symbol=ETH/USDT`)
    expect(await client.closed).toEqual({ code: 1011, reason: "upstream failed" })
    expect(client.messages.at(-1)).toEqual(expectedError)
  })

  it("ends only that subscription on /ws", async () => {
    const client = await openWs(`${server.ws}/ws`)
    client.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "ETH/USDT", id: 1 })
    client.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "BTC/USDT", id: 2 })
    expect(await client.next(ofType("error"))).toEqual(expectedError)
    expect(await client.next(ofType("ticker"))).toMatchObject({ symbol: "BTC/USDT", last: 42000 })
    client.send({ op: "unsubscribe", channel: "ticker", exchange: "binance", symbol: "ETH/USDT", id: 3 })
    expect(await client.next(ofType("error", { id: 3 }))).toMatchObject({ code: "not_subscribed" })
    expect(client.socket.readyState).toBe(client.socket.OPEN)
    await client.close()
  })
})
