import { Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { Exchange } from "../../src/Exchange/Exchange.js"
import { ofType, openSse, openWs } from "./clients.js"
import { startStreamServer } from "./server.js"
import { makeMockExchange } from "../support/mockExchange.js"

/** The mock exchange (one ticker update a second), whose REST ticker for ETH/USDT takes 800 ms. */
const SlowTickerExchange = Layer.effect(
  Exchange,
  Effect.gen(function* () {
    const base = yield* Effect.provide(Exchange, (yield* makeMockExchange).layer)
    return {
      ...base,
      ticker: (market) =>
        market.symbol === "ETH/USDT"
          ? Effect.zipRight(Effect.sleep("800 millis"), base.ticker(market))
          : base.ticker(market)
    }
  })
)

describe("shutdown", () => {
  it("ends SSE streams, closes WebSockets with 1001 and lets in-flight requests finish", async () => {
    const server = await startStreamServer({ STREAM_HEARTBEAT_INTERVAL: "30" }, SlowTickerExchange)
    const query = "exchange=binance&symbol=BTC/USDT"
    const sse = await openSse(`${server.http}/v1/stream/ticker?${query}`)
    const single = await openWs(`${server.ws}/ws/ticker?${query}`)
    const multi = await openWs(`${server.ws}/ws`)
    multi.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "BTC/USDT" })
    await Promise.all([sse.next("ticker"), single.next(ofType("ticker")), multi.next(ofType("ticker"))])

    const inflight = fetch(`${server.http}/v1/markets/ticker?exchange=binance&symbol=ETH/USDT`)
    await new Promise((resolve) => setTimeout(resolve, 150))
    const started = Date.now()
    await server.close()
    // well before the 3 s drain deadline: nothing had to be cut
    expect(Date.now() - started).toBeLessThan(3000)

    const response = await inflight
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ symbol: "ETH/USDT", last: 2500 })
    await sse.ended
    expect(sse.frames.at(-1)?.data).toMatchObject({
      event_type: "status",
      status: "closing",
      reason: "server shutting down"
    })
    expect(await single.closed).toEqual({ code: 1001, reason: "server shutting down" })
    expect(await multi.closed).toEqual({ code: 1001, reason: "server shutting down" })
  })
})
