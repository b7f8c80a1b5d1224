import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { eventually, type Json, ofType, openSse, openWs, refusedUpgrade } from "./clients.js"
import { type StreamServer, startStreamServer } from "./server.js"

/** Model time: frozen, so that every value an event carries can be computed from the emulator's model. */
const T0 = Date.UTC(2024, 0, 1, 10, 0, 0)
const GRACE_MS = 1000

let emulator: Emulator
let server: StreamServer

beforeAll(async () => {
  emulator = await startEmulator({ clock: "frozen", startTime: T0, wsPushIntervalMs: 50 })
  server = await startStreamServer({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
    STREAM_IDLE_GRACE: String(GRACE_MS / 1000),
    WS_MAX_SUBSCRIPTIONS: "4",
    WS_MAX_MESSAGE_BYTES: "2048",
    WS_MAX_MESSAGES_PER_SECOND: "20",
    WS_PING_INTERVAL: "0.3"
  })
})

afterAll(async () => {
  await server?.close()
  await emulator?.close()
})

const lastPrice = (t: number) => emulator.model.ticker24h("binance", "BTC/USDT", t).last

/** The first whole second after `from` (within an hour) where `accept` holds. */
const findTime = (from: number, accept: (t: number) => boolean): number => {
  for (let t = from + 1000; t < from + 3_600_000; t += 1000) if (accept(t)) return t
  throw new Error("no such time in the model")
}

const tickerOfModel = (exchange: "binance" | "kraken", symbol: string, t: number) => {
  const m = emulator.model.ticker24h(exchange, symbol, t)
  return { bid: m.bid, ask: m.ask, last: m.last }
}

/** The first ticker event a subscriber to binance BTC/USDT gets at model time `t`: the model's prices, no change. */
const firstBtcTicker = (t: number) => ({
  event_type: "ticker",
  exchange: "binance",
  symbol: "BTC/USDT",
  ...tickerOfModel("binance", "BTC/USDT", t),
  timestamp: t,
  price_change_percent: 0
})

describe("SSE", () => {
  it("streams ticker events from the model, with ids, a retry hint, proxy-safe headers and heartbeats", async () => {
    const threshold = 0.0005
    const t0 = T0 + 3_600_000
    emulator.setTime(t0)
    const url = `${server.http}/v1/stream/ticker?exchange=binance&symbol=BTC/USDT`
    const sse = await openSse(`${url}&threshold=${threshold}`)
    // every sample, as a witness that the upstream has seen a model time
    const witness = await openSse(`${url}&threshold=0`)
    try {
      expect(sse.status).toBe(200)
      expect(sse.headers.get("content-type")).toBe("text/event-stream")
      expect(sse.headers.get("cache-control")).toBe("no-cache")
      expect(sse.headers.get("x-accel-buffering")).toBe("no")
      expect(sse.headers.get("connection")).toBe("keep-alive")

      const first = await sse.next("ticker")
      const p0 = lastPrice(t0)
      expect(first).toEqual(firstBtcTicker(t0))

      // a move of at least the threshold is sent, with the change since the previous event
      const t1 = findTime(t0, (t) => Math.abs(lastPrice(t) / p0 - 1) >= threshold)
      const p1 = lastPrice(t1)
      emulator.setTime(t1)
      const second = await sse.next("ticker", (e) => e["timestamp"] === t1)
      expect(second).toMatchObject({ last: p1, price_change_percent: ((p1 - p0) / p0) * 100 })

      // a smaller move is not sent; the next is measured from the last event sent, not from the last sample
      const t2 = findTime(t1, (t) => lastPrice(t) !== p1 && Math.abs(lastPrice(t) / p1 - 1) < threshold)
      const p2 = lastPrice(t2)
      const t3 = findTime(
        t2,
        (t) => Math.abs(lastPrice(t) / p1 - 1) >= threshold && Math.abs(lastPrice(t) / p2 - 1) < threshold
      )
      const p3 = lastPrice(t3)
      emulator.setTime(t2)
      await witness.next("ticker", (e) => e["timestamp"] === t2)
      emulator.setTime(t3)
      const third = await sse.next("ticker", (e) => e["timestamp"] === t3)
      expect(third).toMatchObject({ last: p3, price_change_percent: ((p3 - p1) / p1) * 100 })
      expect(sse.events("ticker").map((e) => e["last"])).toEqual([p0, p1, p3])

      await sse.next("heartbeat")
      expect(sse.frames[0]).toEqual({ retry: "3000" })
      const ids = sse.frames.slice(1).map((f) => Number(f.id))
      expect(ids).toEqual(ids.map((_, i) => i + 1))
      // no `event:` line, so EventSource.onmessage gets every frame; the JSON's event_type names it
      expect(
        sse.frames.slice(1).every((f) => f.event === undefined && typeof f.data?.["event_type"] === "string")
      ).toBe(true)
    } finally {
      sse.close()
      witness.close()
    }
  })

  it("streams order books (REST-polled on coinbaseexchange, which signs its book feed) and candles", async () => {
    const now = emulator.now()
    const book = await openSse(`${server.http}/v1/stream/orderbook?exchange=coinbaseexchange&symbol=BTC-USD&depth=3`)
    const candles = await openSse(`${server.http}/v1/stream/ohlcv?exchange=binance&symbol=BTC/USDT&interval=1m`)
    try {
      const model = emulator.model.orderBook("coinbaseexchange", "BTC/USD", now, 3)
      const levels = (side: ReadonlyArray<readonly [number, number]>) =>
        side.map(([price, amount]) => ({ price, amount }))
      expect(await book.next("orderbook")).toMatchObject({
        exchange: "coinbaseexchange",
        symbol: "BTC/USD",
        bids: levels(model.bids),
        asks: levels(model.asks)
      })
      const candle = emulator.model.latestCandles("binance", "BTC/USDT", "1m", 1, now)[0]
      expect(await candles.next("ohlcv", (e) => e["timestamp"] === candle?.timestamp)).toEqual({
        event_type: "ohlcv",
        exchange: "binance",
        symbol: "BTC/USDT",
        interval: "1m",
        timestamp: candle?.timestamp,
        open: candle?.open,
        high: candle?.high,
        low: candle?.low,
        close: candle?.close,
        volume: candle?.volume
      })
    } finally {
      book.close()
      candles.close()
    }
  })

  it("answers bad input with a JSON 4xx before any stream starts", async () => {
    await eventually(async () => ((await server.stats()).subscribers === 0 ? true : undefined))
    const cases: Array<[string, number, string]> = [
      ["ticker?exchange=binanse&symbol=BTC/USDT", 400, "unknown_exchange"],
      ["ticker?exchange=binance&symbol=NOPE/USDT", 404, "symbol_not_found"],
      ["ticker?exchange=binance", 400, "invalid_parameter"],
      ["ticker?exchange=binance&symbol=BTC/USDT&threshold=lots", 400, "invalid_parameter"],
      ["orderbook?exchange=binance&symbol=BTC/USDT&depth=1000", 400, "invalid_parameter"],
      ["ohlcv?exchange=binance&symbol=BTC/USDT&interval=7m", 400, "unsupported_interval"]
    ]
    for (const [query, status, code] of cases) {
      const response = await fetch(`${server.http}/v1/stream/${query}`)
      expect(response.status, query).toBe(status)
      expect(response.headers.get("content-type")).toBe("application/json")
      expect((await response.json()) as Json).toMatchObject({ code })
    }
    expect((await server.stats()).subscribers).toBe(0)
  })
})

describe("WebSocket", () => {
  it("/ws/ticker and /ws/realtime send the same ticker events as SSE, then heartbeats", async () => {
    const now = emulator.now()
    const clients = await Promise.all(
      ["/ws/ticker", "/ws/realtime"].map((path) => openWs(`${server.ws}${path}?exchange=binance&symbol=BTC/USDT`))
    )
    try {
      for (const client of clients) {
        const first = await client.next(ofType("ticker"))
        expect(first).toEqual(firstBtcTicker(now))
        await client.next(ofType("heartbeat"))
        client.send({ op: "ping", id: 7 })
        expect(await client.next(ofType("ack"))).toMatchObject({ op: "ping", id: 7 })
        client.send({ op: "subscribe", channel: "trades", exchange: "binance", symbol: "BTC/USDT" })
        expect(await client.next(ofType("error"))).toMatchObject({ code: "unsupported_op", op: "subscribe" })
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()))
    }
  })

  it("refuses a bad market with a JSON error instead of upgrading", async () => {
    const refused = await refusedUpgrade(`${server.ws}/ws/ticker?exchange=binance&symbol=NOPE/USDT`)
    expect(refused.status).toBe(404)
    expect(refused.body).toMatchObject({ code: "symbol_not_found", exchange: "binance" })
    const plain = await fetch(`${server.http}/ws`)
    expect(plain.status).toBe(400)
  })

  it("/ws multiplexes channels with acks, and keeps the connection up through bad messages", async () => {
    const client = await openWs(`${server.ws}/ws`)
    try {
      const now = emulator.now()
      client.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "btc-usdt", threshold: 0, id: 1 })
      client.send({ op: "subscribe", channel: "orderbook", exchange: "binance", symbol: "BTC/USDT", depth: 5, id: 2 })
      client.send({ op: "subscribe", channel: "trades", exchange: "kraken", symbol: "BTC/USD", id: 3 })
      client.send({ op: "subscribe", channel: "ohlcv", exchange: "coinbaseexchange", symbol: "BTC/USD", id: "c" })
      const acks = await Promise.all([1, 2, 3, "c"].map((id) => client.next(ofType("ack", { id }))))
      expect(acks).toEqual([
        {
          event_type: "ack",
          op: "subscribe",
          channel: "ticker",
          exchange: "binance",
          symbol: "BTC/USDT",
          id: 1,
          threshold: 0
        },
        {
          event_type: "ack",
          op: "subscribe",
          channel: "orderbook",
          exchange: "binance",
          symbol: "BTC/USDT",
          id: 2,
          depth: 5
        },
        { event_type: "ack", op: "subscribe", channel: "trades", exchange: "kraken", symbol: "BTC/USD", id: 3 },
        {
          event_type: "ack",
          op: "subscribe",
          channel: "ohlcv",
          exchange: "coinbaseexchange",
          symbol: "BTC/USD",
          interval: "1m",
          id: "c"
        }
      ])
      const ticker = await client.next(ofType("ticker"))
      expect(ticker).toEqual({ ...firstBtcTicker(now), channel: "ticker" })
      const book = emulator.model.orderBook("binance", "BTC/USDT", now, 5)
      expect(await client.next(ofType("orderbook"))).toMatchObject({
        channel: "orderbook",
        exchange: "binance",
        symbol: "BTC/USDT",
        bids: book.bids.map(([price, amount]) => ({ price, amount })),
        asks: book.asks.map(([price, amount]) => ({ price, amount }))
      })
      const candle = emulator.model.latestCandles("coinbaseexchange", "BTC/USD", "1m", 1, now)[0]
      expect(await client.next(ofType("ohlcv"))).toMatchObject({
        channel: "ohlcv",
        exchange: "coinbaseexchange",
        interval: "1m",
        timestamp: candle?.timestamp,
        close: candle?.close
      })
      // trades carry only what is made after the upstream started (not kraken's replay of its last 50): the first
      // event holds the trades the frozen clock makes once it moves on from the subscription, exactly
      await eventually(() => (emulator.wsSubscriptions("kraken") >= 1 ? true : undefined))
      const subscribedSecond = Math.floor(now / 1000) * 1000
      const tradesAt = findTime(
        now,
        (t) => emulator.model.trades("kraken", "BTC/USD", subscribedSecond, t, t).length > 0
      )
      emulator.setTime(tradesAt)
      const made = emulator.model.trades("kraken", "BTC/USD", subscribedSecond, tradesAt, tradesAt).map((t) => ({
        trade_id: String(t.id),
        timestamp: t.timestamp,
        price: t.price,
        amount: t.amount,
        side: t.side
      }))
      expect(await client.next(ofType("trades"))).toEqual({
        event_type: "trades",
        channel: "trades",
        exchange: "kraken",
        symbol: "BTC/USD",
        trades: made,
        dropped: 0
      })
      // every data event names its channel, exchange and symbol; acks come before their subscription's data
      for (const m of client.messages) {
        if (["ticker", "trades", "orderbook", "ohlcv"].includes(String(m["event_type"]))) {
          expect(m["channel"]).toBe(m["event_type"])
          expect(typeof m["exchange"]).toBe("string")
          expect(typeof m["symbol"]).toBe("string")
        }
      }
      const firstIndex = (predicate: (m: Json) => boolean) => client.messages.findIndex(predicate)
      expect(firstIndex(ofType("ack", { id: 3 }))).toBeLessThan(firstIndex(ofType("trades")))

      // bad messages: an error event each, and the connection stays up
      const from = client.messages.length
      client.send("not json")
      client.send({ op: "subscribe", channel: "candles", exchange: "binance", symbol: "BTC/USDT" })
      client.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "NOPE/USDT", id: 9 })
      client.send({ op: "unsubscribe", channel: "ticker", exchange: "kraken", symbol: "ETH/USD" })
      client.send({ op: "dance" })
      client.send({ op: "ping", id: "still-there" })
      expect(await client.next(ofType("ack", { op: "ping", id: "still-there" }), { from })).toMatchObject({
        timestamp: expect.any(Number)
      })
      const errors = client.messages.slice(from).filter(ofType("error"))
      expect(errors.map((e) => e["code"])).toEqual([
        "invalid_message",
        "invalid_message",
        "symbol_not_found",
        "not_subscribed",
        "invalid_message"
      ])
      expect(errors[1]?.["message"]).toBe("channel must be one of ticker, trades, orderbook, ohlcv")
      expect(errors[2]).toMatchObject({
        op: "subscribe",
        id: 9,
        channel: "ticker",
        exchange: "binance",
        symbol: "NOPE/USDT"
      })

      // unsubscribe: acked, and that subscription's events stop
      client.send({ op: "unsubscribe", channel: "trades", exchange: "kraken", symbol: "BTC/USD", id: 10 })
      await client.next(ofType("ack", { op: "unsubscribe", id: 10 }))
      const afterUnsubscribe = client.messages.length
      emulator.advance(5000)
      await client.next(ofType("ticker", { timestamp: emulator.now() }), { from: afterUnsubscribe })
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(client.messages.slice(afterUnsubscribe).filter(ofType("trades"))).toEqual([])
      expect(client.socket.readyState).toBe(client.socket.OPEN)
    } finally {
      await client.close()
    }
  })

  it("enforces its limits: subscriptions per connection, frame size (1009) and message rate (1008)", async () => {
    const client = await openWs(`${server.ws}/ws`)
    // four subscriptions; subscribing again to one of them replaces it and does not count
    for (const symbol of ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BTC/USDT"]) {
      client.send({ op: "subscribe", channel: "orderbook", exchange: "binance", symbol, depth: 1 })
    }
    client.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "BTC/USDT" })
    client.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "ETH/USDT" })
    const error = await client.next(ofType("error"))
    expect(error).toMatchObject({ code: "too_many_subscriptions", channel: "ticker", symbol: "ETH/USDT" })
    expect(client.messages.filter(ofType("ack"))).toHaveLength(5)
    await client.close()

    const big = await openWs(`${server.ws}/ws`)
    big.send({ op: "ping", pad: "x".repeat(4096) })
    expect(await big.closed).toMatchObject({ code: 1009 })

    const flood = await openWs(`${server.ws}/ws`)
    for (let i = 0; i < 50; i++) flood.send({ op: "ping", id: i })
    expect(await flood.closed).toEqual({ code: 1008, reason: "over 20 messages per second" })
  })

  it("server pings find dead peers: a client that never answers is dropped", async () => {
    const silent = await openWs(`${server.ws}/ws/ticker?exchange=binance&symbol=BTC/USDT`, { autoPong: false })
    const lively = await openWs(`${server.ws}/ws/ticker?exchange=binance&symbol=BTC/USDT`)
    const { code } = await silent.closed
    expect(code).toBe(1006)
    expect(lively.socket.readyState).toBe(lively.socket.OPEN)
    await lively.close()
  })
})

describe("shared upstreams", () => {
  it("N subscribers over SSE and both WebSocket routes make one exchange subscription, stopped after the grace", async () => {
    const stats = await server.stats()
    await eventually(
      () => (emulator.wsSubscriptions("binance") === 0 ? true : undefined),
      5000,
      () => JSON.stringify(stats)
    )
    const marketLoads = emulator.requestCount("binance", "/api/v3/exchangeInfo")
    const query = "exchange=binance&symbol=ETH/USDT"
    const sse = await Promise.all([1, 2, 3].map(() => openSse(`${server.http}/v1/stream/ticker?${query}`)))
    const single = await Promise.all([
      openWs(`${server.ws}/ws/ticker?${query}`),
      openWs(`${server.ws}/ws/realtime?${query}`)
    ])
    const multi = await openWs(`${server.ws}/ws`)
    multi.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "ETH/USDT" })
    await Promise.all([
      ...sse.map((s) => s.next("ticker")),
      ...single.map((w) => w.next(ofType("ticker"))),
      multi.next(ofType("ticker"))
    ])
    expect(emulator.wsSubscriptions("binance")).toBe(1)
    expect(await server.stats()).toMatchObject({ upstreams: 1, subscribers: 6 })
    // the stream's own ccxt instance reuses the markets the server already loaded: no extra REST request
    expect(emulator.requestCount("binance", "/api/v3/exchangeInfo")).toBe(marketLoads)

    for (const s of sse) s.close()
    await Promise.all([...single, multi].map((w) => w.close()))
    const left = Date.now()
    await eventually(async () => ((await server.stats()).subscribers === 0 ? true : undefined))
    expect(emulator.wsSubscriptions("binance")).toBe(1)
    await eventually(() => (emulator.wsSubscriptions("binance") === 0 ? true : undefined), 5000)
    expect(Date.now() - left).toBeGreaterThanOrEqual(GRACE_MS * 0.9)
    expect((await server.stats()).upstreams).toBe(0)
  })
})
