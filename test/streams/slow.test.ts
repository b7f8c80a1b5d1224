import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BookLevel, OrderBook, Trade, Trades } from "../../src/Domain/Market.js"
import { Exchange, type Watcher } from "../../src/Exchange/Exchange.js"
import type { ConnectionStats } from "../../src/Streams/StreamHub.js"
import { eventually, type Json, ofType, openWs, type WsClient } from "./clients.js"
import { type StreamServer, startStreamServer } from "./server.js"
import { makeMockExchange, T0, tickerOf } from "../support/mockExchange.js"

const TRADES_PER_EVENT = 100

/** The mock exchange, streaming as fast as it can: a 100-trade batch, a ticker and a 100-level book every 2 ms. */
const FloodingExchange = Layer.effect(
  Exchange,
  Effect.gen(function* () {
    const base = yield* Effect.provide(Exchange, (yield* makeMockExchange).layer)
    const flood = <A>(update: (n: number) => A): Effect.Effect<Watcher<A>> =>
      Effect.sync(() => {
        let n = 0
        return {
          next: Effect.as(Effect.sleep("2 millis"), undefined).pipe(Effect.map(() => update(n++))),
          reset: Effect.void
        }
      })
    return {
      ...base,
      canWatch: (exchange) => Effect.as(base.resolveExchange(exchange), true),
      watchTicker: (market) => flood((n) => tickerOf(market, 100 + (n % 2))),
      watchTrades: (market) =>
        flood(
          (n) =>
            new Trades({
              exchange: market.exchange,
              symbol: market.symbol,
              trades: Array.from(
                { length: TRADES_PER_EVENT },
                (_, i) =>
                  new Trade({
                    trade_id: String(n * TRADES_PER_EVENT + i),
                    timestamp: T0 + n,
                    price: 100 + i / 100,
                    amount: 0.5,
                    side: "buy"
                  })
              )
            })
        ),
      watchOrderBook: (market, depth) =>
        flood(
          (n) =>
            new OrderBook({
              exchange: market.exchange,
              symbol: market.symbol,
              bids: Array.from({ length: depth }, (_, i) => new BookLevel({ price: 100 - i / 10, amount: 1 + n })),
              asks: Array.from({ length: depth }, (_, i) => new BookLevel({ price: 101 + i / 10, amount: 1 + n })),
              timestamp: T0 + n
            })
        )
    }
  })
)

const connectionOf = async (server: StreamServer, subscriptions: number): Promise<ConnectionStats> =>
  eventually(async () => (await server.stats()).connections.find((c) => c.subscriptions === subscriptions))

/** Samples a connection's buffers while its client reads nothing, until `done` held for a few more samples. */
const watchBuffers = async (server: StreamServer, id: number, done: (s: ConnectionStats) => boolean) => {
  const samples: Array<ConnectionStats> = []
  const deadline = Date.now() + 15_000
  let after = 0
  while (Date.now() < deadline && after < 10) {
    const stats = (await server.stats()).connections.find((c) => c.id === id)
    if (stats === undefined) break
    samples.push(stats)
    if (done(stats)) after += 1
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return samples
}

const subscribeAll = async (client: WsClient, channels: ReadonlyArray<string>) => {
  for (const channel of channels)
    client.send({ op: "subscribe", channel, exchange: "binance", symbol: "BTC/USDT", depth: 100 })
  for (const channel of channels) await client.next(ofType(channel))
}

/** Trade ids are consecutive upstream; a gap before an event must be exactly its `dropped` count. */
const checkDrops = (events: ReadonlyArray<Json>) => {
  let previous: number | undefined
  let total = 0
  for (const event of events) {
    const trades = event["trades"] as ReadonlyArray<Json>
    const first = Number(trades[0]?.["trade_id"])
    if (previous !== undefined) expect(first - previous - 1).toBe(event["dropped"])
    total += Number(event["dropped"])
    previous = Number(trades.at(-1)?.["trade_id"])
  }
  return total
}

describe("slow consumers", () => {
  let server: StreamServer

  beforeAll(async () => {
    server = await startStreamServer(
      { STREAM_BUFFER_SIZE: "8", STREAM_MAX_BUFFERED_BYTES: "4194304", STREAM_HEARTBEAT_INTERVAL: "0.05" },
      FloodingExchange
    )
  })
  afterAll(async () => server?.close())

  it("a client that stops reading costs bounded memory: books and tickers conflate, trades drop the oldest and count them", async () => {
    const client = await openWs(`${server.ws}/ws`)
    await subscribeAll(client, ["ticker", "orderbook", "trades"])
    const { id } = await connectionOf(server, 3)
    client.socket.pause()
    const samples = await watchBuffers(server, id, (s) => s.dropped > 0 && s.conflated > 0)
    const last = samples.at(-1)
    // the socket filled up, then events waited in the outbox, where they were conflated or dropped
    expect(last?.dropped).toBeGreaterThan(0)
    expect(last?.conflated).toBeGreaterThan(0)
    // at most: 8 trade events, 1 book, 1 ticker, 1 heartbeat; the socket holds one write past its 64 KiB mark
    expect(Math.max(...samples.map((s) => s.pendingEvents))).toBeLessThanOrEqual(11)
    expect(Math.max(...samples.map((s) => s.bufferedBytes))).toBeLessThan(64 * 1024 + 16 * 1024)
    expect((await server.stats()).slowClosed).toBe(0)

    const before = client.messages.length
    client.socket.resume()
    await eventually(() =>
      client.messages.slice(before).find((m) => m["event_type"] === "trades" && Number(m["dropped"]) > 0)
    )
    const trades = client.messages.filter(ofType("trades"))
    expect(checkDrops(trades)).toBeGreaterThan(0)
    expect(client.socket.readyState).toBe(client.socket.OPEN)
    await client.close()
  })
})

describe("a client behind past the byte cap", () => {
  let server: StreamServer

  beforeAll(async () => {
    server = await startStreamServer(
      { STREAM_BUFFER_SIZE: "512", STREAM_MAX_BUFFERED_BYTES: "262144" },
      FloodingExchange
    )
  })
  afterAll(async () => server?.close())

  it("is closed with 1008, while a conflated client as slow as it stays connected", async () => {
    const trades = await openWs(`${server.ws}/ws`)
    await subscribeAll(trades, ["trades"])
    const ticker = await openWs(`${server.ws}/ws`)
    await subscribeAll(ticker, ["ticker", "orderbook"])
    trades.socket.pause()
    ticker.socket.pause()
    await eventually(async () => ((await server.stats()).slowClosed === 1 ? true : undefined), 10_000)
    // the closing one has let go of its buffer; the conflated one holds one event per lane at most
    const remaining = (await server.stats()).connections
    expect(remaining.map((c) => c.subscriptions)).toEqual([1, 2])
    expect(remaining[0]).toMatchObject({ pendingEvents: 0, pendingBytes: 0 })
    expect(remaining[1]?.pendingEvents).toBeLessThanOrEqual(3)

    trades.socket.resume()
    expect(await trades.closed).toEqual({ code: 1008, reason: "slow consumer: over 262144 bytes behind" })
    ticker.socket.resume()
    expect(ticker.socket.readyState).toBe(ticker.socket.OPEN)
    await ticker.close()
  })

  it("an SSE client that stops reading is cut off the same way", async () => {
    const response = await fetch(`${server.http}/v1/stream/trades?exchange=binance&symbol=BTC/USDT`)
    const reader = response.body?.getReader()
    await reader?.read()
    const before = (await server.stats()).slowClosed
    await eventually(async () => ((await server.stats()).slowClosed > before ? true : undefined), 10_000)
    // what was in flight can still be read; then the stream fails instead of ending normally
    const drained = (async () => {
      while (true) if ((await reader?.read())?.done !== false) return "ended"
    })()
    await expect(drained).rejects.toThrow()
  })
})
