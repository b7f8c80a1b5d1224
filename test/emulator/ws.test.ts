import type { Exchange, OrderBook, Trade } from "ccxt"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { startEmulator, type EmulatedExchange, type Emulator } from "../../src/emulator/index.js"
import { EXCHANGES, SYMBOL, T0, eventually, getJson, makeExchange, ohlcvRow } from "./helpers.js"

let emulator: Emulator

beforeAll(async () => {
  emulator = await startEmulator({ clock: "frozen", startTime: T0, wsPushIntervalMs: 40 })
})

afterAll(async () => {
  await emulator.close()
})

const withClient = async <A>(
  id: EmulatedExchange,
  use: (exchange: Exchange) => Promise<A>,
  config: Record<string, unknown> = {},
  target: Emulator = emulator
): Promise<A> => {
  const exchange = await makeExchange(target, id, config)
  try {
    return await use(exchange)
  } finally {
    await exchange.close()
  }
}

const levels = (side: OrderBook["bids"]) => side.map(([price, amount]) => [price, amount])

const currentCandle = (id: EmulatedExchange, symbol: string, timeframe: string): number[] =>
  emulator.model.latestCandles(id, symbol, timeframe, 1).map(ohlcvRow)[0] ?? []

/** Opens a raw WebSocket and collects parsed messages. */
const rawSocket = async (url: string) => {
  const socket = new WebSocket(url)
  const messages: unknown[] = []
  socket.on("message", (data: WebSocket.RawData) => messages.push(JSON.parse(String(data))))
  await new Promise((resolve, reject) => {
    socket.once("open", resolve)
    socket.once("error", reject)
  })
  const next = async (predicate: (message: Record<string, unknown>) => boolean, ms = 2000) => {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      const found = messages.find((m) => typeof m === "object" && m !== null && predicate(m as Record<string, unknown>))
      if (found !== undefined) return found as Record<string, unknown>
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    throw new Error("no matching message")
  }
  return { socket, messages, next, send: (message: unknown) => socket.send(JSON.stringify(message)) }
}

describe("binance streams through ccxt.pro", () => {
  it("watchTicker (miniTicker and full ticker) matches the model", async () => {
    const expected = emulator.model.ticker24h("binance", "ETH/USDT")
    await withClient("binance", async (binance) => {
      const mini = await binance.watchTicker("ETH/USDT")
      expect([mini.last, mini.open, mini.high, mini.low, mini.baseVolume]).toEqual([
        expected.last,
        expected.open,
        expected.high,
        expected.low,
        expected.baseVolume
      ])
      expect(mini.quoteVolume).toBeCloseTo(expected.quoteVolume, 1)
      expect(mini.bid).toBeUndefined()
    })
    await withClient(
      "binance",
      async (binance) => {
        const full = await binance.watchTicker("ETH/USDT")
        expect([full.bid, full.bidVolume, full.ask, full.askVolume, full.last, full.change]).toEqual([
          expected.bid,
          expected.bidQty,
          expected.ask,
          expected.askQty,
          expected.last,
          expected.change
        ])
        expect(full.vwap).toBeCloseTo(expected.vwap, 4)
      },
      { options: { watchTickers: { name: "ticker" } } }
    )
  })

  it("watchTrades, watchOHLCV and watchOrderBook resolve with the model's data", async () => {
    await withClient("binance", async (binance) => {
      const trades = await binance.watchTrades("BTC/USDT")
      const last = emulator.model.recentTrades("binance", "BTC/USDT", 1)[0]
      expect(trades.at(-1)).toMatchObject({
        id: String(last?.id),
        timestamp: last?.timestamp,
        side: last?.side,
        price: last?.price,
        amount: last?.amount
      })
      const candles = await binance.watchOHLCV("BTC/USDT", "1m")
      expect(candles.at(-1)).toEqual(currentCandle("binance", "BTC/USDT", "1m"))
      const fiveMinutes = await binance.watchOHLCV("SOL/USDT", "5m")
      expect(fiveMinutes.at(-1)).toEqual(currentCandle("binance", "SOL/USDT", "5m"))

      const book = await binance.watchOrderBook("BTC/USDT")
      const expected = emulator.model.orderBook("binance", "BTC/USDT", T0, 200)
      expect(levels(book.bids)).toEqual(expected.bids)
      expect(levels(book.asks)).toEqual(expected.asks)
      const nonce = book.nonce ?? 0
      // frozen clock: the stream keeps re-sending the top levels with U = previous u + 1, so ccxt stays in sync
      const next = await binance.watchOrderBook("BTC/USDT")
      expect(next.nonce).toBeGreaterThan(nonce)
      expect(levels(next.bids)).toEqual(expected.bids)
      const rest = (await getJson(`${emulator.apiBase("binance")}/api/v3/depth?symbol=BTCUSDT&limit=5`)).body as {
        lastUpdateId: number
      }
      expect(rest.lastUpdateId).toBeGreaterThanOrEqual(next.nonce ?? 0)

      expect(await eventually(() => emulator.wsSubscriptions("binance"), 4)).toBe(4)
    })
    expect(await eventually(() => emulator.wsSubscriptions("binance"), 0)).toBe(0)
  })

  it("speaks the raw protocol: stream paths, LIST/UNSUBSCRIBE and errors for unknown streams", async () => {
    const raw = await rawSocket(`${emulator.wsBase("binance")}/ws/solusdt@aggTrade`)
    try {
      const last = emulator.model.recentTrades("binance", "SOL/USDT", 1)[0]
      expect(await raw.next((m) => m["e"] === "aggTrade")).toMatchObject({
        s: "SOLUSDT",
        a: last?.id,
        T: last?.timestamp
      })
      raw.send({ method: "SUBSCRIBE", params: ["ethusdt@bookTicker"], id: 1 })
      expect(await raw.next((m) => m["id"] === 1)).toEqual({ result: null, id: 1 })
      const book = emulator.model.orderBook("binance", "ETH/USDT", T0, 1)
      expect(await raw.next((m) => m["s"] === "ETHUSDT" && "B" in m)).toMatchObject({
        b: book.bids[0]?.[0].toFixed(8),
        a: book.asks[0]?.[0].toFixed(8)
      })
      raw.send({ method: "LIST_SUBSCRIPTIONS", id: 2 })
      expect(await raw.next((m) => m["id"] === 2)).toEqual({
        result: ["solusdt@aggTrade", "ethusdt@bookTicker"],
        id: 2
      })
      raw.send({ method: "UNSUBSCRIBE", params: ["solusdt@aggTrade"], id: 3 })
      await raw.next((m) => m["id"] === 3)
      expect(await eventually(() => emulator.wsSubscriptions("binance"), 1)).toBe(1)
      raw.send({ method: "SUBSCRIBE", params: ["dogeusdt@trade"], id: 4 })
      expect(await raw.next((m) => m["id"] === 4)).toMatchObject({ error: { code: 2 } })
    } finally {
      raw.socket.terminate()
    }
  })
})

describe("kraken v2 streams through ccxt.pro", () => {
  it("watchTicker, watchTrades (snapshot), watchOrderBook and watchOHLCV match the model", async () => {
    await withClient("kraken", async (kraken) => {
      const expected = emulator.model.ticker24h("kraken", "BTC/USD")
      const ticker = await kraken.watchTicker("BTC/USD")
      expect([
        ticker.last,
        ticker.bid,
        ticker.bidVolume,
        ticker.ask,
        ticker.high,
        ticker.low,
        ticker.baseVolume
      ]).toEqual([
        expected.last,
        expected.bid,
        expected.bidQty,
        expected.ask,
        expected.high,
        expected.low,
        expected.baseVolume
      ])
      expect(ticker.change).toBe(expected.change)
      expect(ticker.vwap).toBeCloseTo(expected.vwap, 1)

      const trades = await kraken.watchTrades("ETH/USD")
      expect(trades.map((t) => [t.id, t.timestamp, t.side, t.price, t.amount])).toEqual(
        emulator.model
          .recentTrades("kraken", "ETH/USD", 50)
          .map((t) => [String(t.id), t.timestamp, t.side, t.price, t.amount])
      )

      const book = await kraken.watchOrderBook("BTC/USD")
      const expectedBook = emulator.model.orderBook("kraken", "BTC/USD", T0, 10)
      expect(levels(book.bids)).toEqual(expectedBook.bids)
      expect(levels(book.asks)).toEqual(expectedBook.asks)
      const deeper = await kraken.watchOrderBook("SOL/USD", 25)
      expect(levels(deeper.asks)).toEqual(emulator.model.orderBook("kraken", "SOL/USD", T0, 25).asks)
      const again = await kraken.watchOrderBook("BTC/USD")
      expect(levels(again.bids)).toEqual(expectedBook.bids)

      const candles = await kraken.watchOHLCV("BTC/USD", "1m")
      expect(candles).toEqual(emulator.model.latestCandles("kraken", "BTC/USD", "1m", 10).map(ohlcvRow))
      expect(await eventually(() => emulator.wsSubscriptions("kraken"), 5)).toBe(5)
    })
  })

  it("answers the application-level ping and rejects unknown pairs", async () => {
    const raw = await rawSocket(`${emulator.wsBase("kraken")}/v2`)
    try {
      expect(await raw.next((m) => m["channel"] === "status")).toMatchObject({ type: "update" })
      raw.send({ method: "ping", req_id: 7 })
      expect(await raw.next((m) => m["method"] === "pong")).toMatchObject({ method: "pong", req_id: 7 })
      raw.send({ method: "subscribe", params: { channel: "ticker", symbol: ["DOGE/USD"] }, req_id: 8 })
      expect(await raw.next((m) => m["req_id"] === 8)).toMatchObject({ success: false, method: "subscribe" })
      raw.send({ method: "subscribe", params: { channel: "book", symbol: ["ETH/USD"], depth: 10 }, req_id: 9 })
      expect(await raw.next((m) => m["req_id"] === 9)).toMatchObject({
        success: true,
        result: { channel: "book", symbol: "ETH/USD", depth: 10, snapshot: true }
      })
      const snapshot = await raw.next((m) => m["channel"] === "book" && m["type"] === "snapshot")
      const data = (snapshot["data"] as Array<Record<string, unknown>>)[0]
      expect(typeof data?.["checksum"]).toBe("number")
    } finally {
      raw.socket.terminate()
    }
  })
})

describe("coinbaseexchange ws-feed through ccxt.pro", () => {
  it("watchTicker, watchTrades and watchOrderBook (level2) match the model", async () => {
    await withClient("coinbaseexchange", async (coinbase) => {
      const expected = emulator.model.ticker24h("coinbaseexchange", "ETH/USD")
      const ticker = await coinbase.watchTicker("ETH/USD")
      expect([ticker.last, ticker.bid, ticker.ask, ticker.open, ticker.high, ticker.low, ticker.baseVolume]).toEqual([
        expected.last,
        expected.bid,
        expected.ask,
        expected.open,
        expected.high,
        expected.low,
        expected.baseVolume
      ])
      const last = emulator.model.recentTrades("coinbaseexchange", "ETH/USD", 1)[0]
      expect(ticker.timestamp).toBe(last?.timestamp)

      const trades = await coinbase.watchTrades("ETH/USD")
      expect(trades.at(-1)).toMatchObject({
        id: String(last?.id),
        side: last?.side,
        price: last?.price,
        amount: last?.amount,
        timestamp: last?.timestamp
      })

      const book = await coinbase.watchOrderBook("BTC/USD")
      const expectedBook = emulator.model.orderBook("coinbaseexchange", "BTC/USD", T0, 200)
      expect(levels(book.bids)).toEqual(expectedBook.bids)
      expect(levels(book.asks)).toEqual(expectedBook.asks)
      const again = await coinbase.watchOrderBook("BTC/USD")
      expect(levels(again.asks)).toEqual(expectedBook.asks)
      expect(await eventually(() => emulator.wsSubscriptions("coinbaseexchange"), 3)).toBe(3)
    })
  })

  it("acknowledges with a subscriptions message and reports invalid products", async () => {
    const raw = await rawSocket(emulator.wsBase("coinbaseexchange"))
    try {
      raw.send({ type: "subscribe", product_ids: ["SOL-USD"], channels: ["heartbeat", { name: "matches" }] })
      expect(await raw.next((m) => m["type"] === "subscriptions")).toEqual({
        type: "subscriptions",
        channels: [
          { name: "heartbeat", product_ids: ["SOL-USD"], account_ids: null },
          { name: "matches", product_ids: ["SOL-USD"], account_ids: null }
        ]
      })
      const last = emulator.model.recentTrades("coinbaseexchange", "SOL/USD", 1)[0]
      expect(await raw.next((m) => m["type"] === "last_match")).toMatchObject({
        trade_id: last?.id,
        side: last?.side === "buy" ? "sell" : "buy"
      })
      expect(await raw.next((m) => m["type"] === "heartbeat")).toMatchObject({
        product_id: "SOL-USD",
        last_trade_id: last?.id
      })
      raw.send({ type: "subscribe", product_ids: ["DOGE-USD"], channels: ["ticker"] })
      expect(await raw.next((m) => m["type"] === "error")).toEqual({
        type: "error",
        message: "Failed to subscribe",
        reason: "DOGE-USD is not a valid product"
      })
    } finally {
      raw.socket.terminate()
    }
  })
})

describe("live clock", () => {
  it("keeps ccxt's books in sync through diffs and streams every trade once", async () => {
    const live = await startEmulator({ startTime: T0, wsPushIntervalMs: 100 })
    try {
      await Promise.all(
        EXCHANGES.map((id) =>
          withClient(
            id,
            async (exchange) => {
              const symbol = SYMBOL[id]
              await exchange.watchTrades(symbol)
              let book = await exchange.watchOrderBook(symbol)
              const deadline = Date.now() + 2100
              let updates = 0
              while (Date.now() < deadline) {
                book = await exchange.watchOrderBook(symbol)
                updates += 1
              }
              expect(updates).toBeGreaterThanOrEqual(2)
              const at = book.timestamp ?? 0
              const depth = book.bids.length
              const expected = live.model.orderBook(id, symbol, at, depth)
              expect(levels(book.bids), id).toEqual(expected.bids)
              expect(levels(book.asks), id).toEqual(expected.asks)

              // everything streamed since the first watchTrades, as cached by ccxt
              const trades = [...(exchange.trades[symbol] ?? [])] as Trade[]
              const first = trades[0]
              const lastSeen = trades.at(-1)
              expect(trades.length, id).toBeGreaterThan(1)
              const streamed = live.model.trades(
                id,
                symbol,
                first?.timestamp ?? 0,
                (lastSeen?.timestamp ?? 0) + 1,
                at + 2000
              )
              expect(
                trades.map((t) => t.id),
                id
              ).toEqual(streamed.map((t) => String(t.id)))
            },
            {},
            live
          )
        )
      )
    } finally {
      await live.close()
    }
  })
})
