import { BadSymbol, type Exchange } from "ccxt"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startEmulator, type EmulatedExchange, type Emulator } from "../../src/emulator/index.js"
import { EXCHANGES, SYMBOL, T0, getJson, makeExchange, ohlcvRow, rejection } from "./helpers.js"

const MINUTE = 60_000
const CURRENT_MINUTE = Math.floor(T0 / MINUTE) * MINUTE

const PRECISION: Readonly<Record<EmulatedExchange, { price: number; amount: number }>> = {
  binance: { price: 0.01, amount: 0.00001 },
  kraken: { price: 0.1, amount: 0.00000001 },
  coinbaseexchange: { price: 0.01, amount: 0.00000001 }
}

let emulator: Emulator
const clients = new Map<EmulatedExchange, Exchange>()
const client = (id: EmulatedExchange): Exchange => {
  const exchange = clients.get(id)
  if (exchange === undefined) throw new Error(`no client for ${id}`)
  return exchange
}

beforeAll(async () => {
  emulator = await startEmulator({ clock: "frozen", startTime: T0 })
  for (const id of EXCHANGES) clients.set(id, await makeExchange(emulator, id))
})

afterAll(async () => {
  for (const exchange of clients.values()) await exchange.close()
  await emulator.close()
})

describe.each(EXCHANGES)("%s REST through ccxt", (id) => {
  const symbol = SYMBOL[id]

  it("loads the markets with their precision", async () => {
    const markets = await client(id).loadMarkets()
    expect(Object.keys(markets).sort()).toEqual(
      emulator.model
        .markets(id)
        .map((m) => m.symbol)
        .sort()
    )
    for (const spec of emulator.model.markets(id)) {
      const market = markets[spec.symbol]
      expect(market?.id).toBe(spec.id)
      expect(market?.spot).toBe(true)
      expect(market?.active).toBe(true)
      expect(market?.precision.price).toBe(Number(`1e-${spec.priceDecimals}`))
      expect(market?.precision.amount).toBe(Number(`1e-${spec.amountDecimals}`))
    }
    expect(markets[symbol]?.precision).toMatchObject(PRECISION[id])
    expect(client(id).priceToPrecision(symbol, 43210.123456)).toBe(id === "kraken" ? "43210.1" : "43210.12")
    // kraken's clock has second resolution
    expect(await client(id).fetchTime()).toBe(id === "kraken" ? Math.floor(T0 / 1000) * 1000 : T0)
  })

  it("fetchTicker matches the model", async () => {
    const expected = emulator.model.ticker24h(id, symbol)
    const ticker = await client(id).fetchTicker(symbol)
    expect(ticker.symbol).toBe(symbol)
    expect(ticker.last).toBe(expected.last)
    expect(ticker.bid).toBe(expected.bid)
    expect(ticker.ask).toBe(expected.ask)
    expect(ticker.baseVolume).toBe(expected.baseVolume)
    if (id === "coinbaseexchange") {
      // the ticker endpoint has no 24 h range; the stats endpoint does
      const stats = await makeExchange(emulator, id, { options: { fetchTickerMethod: "publicGetProductsIdStats" } })
      try {
        const full = await stats.fetchTicker(symbol)
        expect([full.open, full.high, full.low, full.last, full.baseVolume]).toEqual([
          expected.open,
          expected.high,
          expected.low,
          expected.last,
          expected.baseVolume
        ])
      } finally {
        await stats.close()
      }
    } else {
      expect(ticker.high).toBe(expected.high)
      expect(ticker.low).toBe(expected.low)
      expect(ticker.vwap).toBeCloseTo(expected.vwap, 4)
      expect(ticker.quoteVolume).toBeCloseTo(expected.quoteVolume, 1)
    }
    if (id === "binance") {
      expect(ticker.open).toBe(expected.open)
      expect(ticker.change).toBe(expected.change)
      expect(ticker.percentage).toBeCloseTo(expected.percentage, 3)
      expect(ticker.bidVolume).toBe(expected.bidQty)
      expect(ticker.askVolume).toBe(expected.askQty)
      expect(ticker.timestamp).toBe(T0)
    }
    const tickers = await client(id).fetchTickers()
    for (const spec of emulator.model.markets(id)) {
      expect(tickers[spec.symbol]?.last).toBe(emulator.model.price(id, spec.symbol))
    }
  })

  it("fetchOHLCV returns the model candles, including the partial current one", async () => {
    const exchange = client(id)
    const raw = await exchange.fetchOHLCV(symbol, "1m")
    const latest = emulator.model.latestCandles(id, symbol, "1m", id === "kraken" ? 720 : id === "binance" ? 500 : 300)
    // coinbase leaves out buckets without trades
    const expected = (id === "coinbaseexchange" ? latest.filter((c) => c.trades > 0) : latest).map(ohlcvRow)
    expect(raw).toEqual(expected)
    expect(raw.at(-1)?.[0]).toBe(
      id === "coinbaseexchange" && latest.at(-1)?.trades === 0 ? CURRENT_MINUTE - MINUTE : CURRENT_MINUTE
    )
    for (const [, open, high, low, close, volume] of raw as number[][]) {
      expect(high).toBeGreaterThanOrEqual(Math.max(open ?? 0, close ?? 0))
      expect(low).toBeLessThanOrEqual(Math.min(open ?? 0, close ?? 0))
      expect(volume).toBeGreaterThanOrEqual(0)
    }
  })

  it("fetchOHLCV pages forward with `since`", async () => {
    const exchange = client(id)
    const since = CURRENT_MINUTE - 2100 * MINUTE
    const pageSize = id === "binance" ? 1000 : id === "kraken" ? 720 : 300
    const collected: number[][] = []
    let cursor = since
    while (cursor <= CURRENT_MINUTE) {
      const page = (await exchange.fetchOHLCV(symbol, "1m", cursor, pageSize)) as number[][]
      if (page.length === 0) {
        cursor += pageSize * MINUTE
        continue
      }
      expect(page[0]?.[0]).toBeGreaterThanOrEqual(cursor)
      collected.push(...page)
      cursor = (page.at(-1)?.[0] ?? cursor) + MINUTE
    }
    const model = emulator.model.candles(id, symbol, "1m", since, 2101)
    const expected = (id === "coinbaseexchange" ? model.filter((c) => c.trades > 0) : model).map(ohlcvRow)
    expect(collected).toEqual(expected)
    if (id !== "coinbaseexchange") {
      expect(collected).toHaveLength(2101)
      expect(collected[0]?.[0]).toBe(since)
    }
  })

  it("fetchOHLCV serves the coarser timeframes", async () => {
    const timeframe = id === "coinbaseexchange" ? "6h" : "4h"
    const since = Date.UTC(2023, 11, 29)
    const raw = await client(id).fetchOHLCV(symbol, timeframe, since, 6)
    const expected = emulator.model.candles(id, symbol, timeframe, since, 6).map(ohlcvRow)
    expect(raw).toEqual(expected)
  })

  it("fetchOrderBook returns the model book with a nonce", async () => {
    const limit = id === "coinbaseexchange" ? undefined : 50
    const book = await client(id).fetchOrderBook(symbol, limit)
    const expected = emulator.model.orderBook(id, symbol, T0, limit ?? 200)
    expect(book.bids.map(([p, a]) => [p, a])).toEqual(expected.bids)
    expect(book.asks.map(([p, a]) => [p, a])).toEqual(expected.asks)
    expect(book.bids[0]?.[0]).toBeLessThan(book.asks[0]?.[0] ?? 0)
    if (id !== "kraken") expect(book.nonce).toBeGreaterThan(0)
  })

  it("fetchTrades returns the model trades with ids and taker sides (coinbase's maker side inverted by ccxt)", async () => {
    const trades = await client(id).fetchTrades(symbol, undefined, 25)
    const expected = emulator.model.recentTrades(id, symbol, 25)
    expect(trades.map((t) => [t.id, t.timestamp, t.side, t.price, t.amount])).toEqual(
      expected.map((t) => [String(t.id), t.timestamp, t.side, t.price, t.amount])
    )
    expect(new Set(trades.map((t) => t.side))).toEqual(new Set(["buy", "sell"]))
  })
})

describe("exchange-specific REST details", () => {
  it("binance: trades by time range, /api/v3/trades, bookTicker and the unknown symbol error", async () => {
    const binance = client("binance")
    const since = T0 - 10 * MINUTE
    const ranged = await binance.fetchTrades("BTC/USDT", since, 30)
    expect(ranged.map((t) => t.id)).toEqual(
      emulator.model
        .trades("binance", "BTC/USDT", since, T0)
        .slice(0, 30)
        .map((t) => String(t.id))
    )
    const plain = await binance.fetchTrades("BTC/USDT", undefined, 5, { fetchTradesMethod: "publicGetTrades" })
    expect(plain.map((t) => [t.id, t.side, t.price, t.amount])).toEqual(
      emulator.model.recentTrades("binance", "BTC/USDT", 5).map((t) => [String(t.id), t.side, t.price, t.amount])
    )
    const book = emulator.model.orderBook("binance", "ETH/USDT", T0, 1)
    const bidsAsks = await binance.fetchBidsAsks(["ETH/USDT"])
    expect([bidsAsks["ETH/USDT"]?.bid, bidsAsks["ETH/USDT"]?.ask]).toEqual([book.bids[0]?.[0], book.asks[0]?.[0]])
    const selected = await binance.fetchTickers(["ETH/USDT", "SOL/USDT"])
    expect(Object.keys(selected).sort()).toEqual(["ETH/USDT", "SOL/USDT"])

    const unknown = await getJson(`${emulator.apiBase("binance")}/api/v3/ticker/24hr?symbol=FOOBAR`)
    expect(unknown).toMatchObject({ status: 400, body: { code: -1121, msg: "Invalid symbol." } })
    expect(await rejection(binance.publicGetTicker24hr({ symbol: "FOOBAR" }))).toBeInstanceOf(BadSymbol)
    const badInterval = await getJson(`${emulator.apiBase("binance")}/api/v3/klines?symbol=BTCUSDT&interval=7m`)
    expect(badInterval.body).toEqual({ code: -1120, msg: "Invalid interval." })
    const klines = await getJson(`${emulator.apiBase("binance")}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=2`)
    expect((klines.body as unknown[][])[0]).toHaveLength(12)
    expect(typeof (klines.body as unknown[][])[0]?.[1]).toBe("string")
  })

  it("kraken: {error,result} envelopes, OHLC `last`, trade cursors and unknown pairs", async () => {
    const base = `${emulator.apiBase("kraken")}/0/public`
    expect((await getJson(`${base}/Ticker?pair=FOOBAR`)).body).toEqual({ error: ["EQuery:Unknown asset pair"] })
    const ohlc = (await getJson(`${base}/OHLC?pair=XBTUSD&interval=5`)).body as {
      error: unknown[]
      result: Record<string, unknown>
    }
    expect(ohlc.error).toEqual([])
    const rows = ohlc.result["XXBTZUSD"] as unknown[][]
    expect(rows).toHaveLength(720)
    expect(ohlc.result["last"]).toBe(rows.at(-2)?.[0])
    expect((await getJson(`${base}/OHLC?pair=XBTUSD&interval=2`)).body).toEqual({
      error: ["EGeneral:Invalid arguments"]
    })
    const first = (await getJson(`${base}/Trades?pair=SOLUSD&count=3`)).body as { result: Record<string, unknown> }
    expect(first.result["SOLUSD"]).toHaveLength(3)
    const since = T0 - 5 * MINUTE
    const paged = await client("kraken").fetchTrades("SOL/USD", since, 10)
    expect(paged.map((t) => t.id)).toEqual(
      emulator.model
        .trades("kraken", "SOL/USD", since, T0)
        .slice(0, 10)
        .map((t) => String(t.id))
    )
    const status = await client("kraken").fetchStatus()
    expect(status.status).toBe("ok")
  })

  it("coinbaseexchange: newest-first candles and trades, maker side on the wire, 404 for unknown products", async () => {
    const base = `${emulator.apiBase("coinbaseexchange")}/products`
    const candles = (await getJson(`${base}/ETH-USD/candles?granularity=300`)).body as number[][]
    const times = candles.map((c) => c[0] ?? 0)
    expect(times).toEqual([...times].sort((a, b) => b - a))
    expect(candles.length).toBeLessThanOrEqual(300)
    const wide = await getJson(
      `${base}/ETH-USD/candles?granularity=60&start=${new Date(T0 - 600 * MINUTE).toISOString()}&end=${new Date(T0).toISOString()}`
    )
    expect(wide.status).toBe(400)
    const trades = (await getJson(`${base}/BTC-USD/trades?limit=5`)).body as Array<Record<string, unknown>>
    const expected = emulator.model.recentTrades("coinbaseexchange", "BTC/USD", 5).reverse()
    expect(trades.map((t) => [t["trade_id"], t["side"]])).toEqual(
      expected.map((t) => [t.id, t.side === "buy" ? "sell" : "buy"])
    )
    const older = (await getJson(`${base}/BTC-USD/trades?limit=5&after=${expected.at(-1)?.id ?? 0}`)).body as Array<
      Record<string, unknown>
    >
    expect(older.map((t) => t["trade_id"])).toEqual(
      emulator.model
        .recentTrades("coinbaseexchange", "BTC/USD", 10)
        .slice(0, 5)
        .reverse()
        .map((t) => t.id)
    )
    expect(await getJson(`${base}/DOGE-USD/ticker`)).toMatchObject({ status: 404, body: { message: "NotFound" } })
    const sparks = await client("coinbaseexchange").fetchTickers()
    expect(sparks["SOL/USD"]?.last).toBe(emulator.model.price("coinbaseexchange", "SOL/USD"))
  })

  it("counts every request per exchange and endpoint", async () => {
    emulator.resetCounts()
    const binance = client("binance")
    await binance.fetchTicker("BTC/USDT")
    await binance.fetchTicker("ETH/USDT")
    await binance.fetchOrderBook("BTC/USDT", 5)
    await client("kraken").fetchTrades("BTC/USD", undefined, 1)
    expect(emulator.requestCount("binance", "/api/v3/ticker/24hr")).toBe(2)
    expect(emulator.requestCount("binance", "/api/v3/depth")).toBe(1)
    expect(emulator.requestCount("binance")).toBe(3)
    expect(emulator.requestCount("kraken", "/0/public/Trades")).toBe(1)
    expect(emulator.requestCount()).toBe(4)
  })
})

describe("determinism across emulators", () => {
  const paths: Readonly<Record<EmulatedExchange, ReadonlyArray<string>>> = {
    binance: [
      "/api/v3/exchangeInfo",
      "/api/v3/ticker/24hr",
      "/api/v3/klines?symbol=ETHUSDT&interval=1m&limit=100",
      "/api/v3/depth?symbol=BTCUSDT&limit=50",
      "/api/v3/aggTrades?symbol=SOLUSDT&limit=50"
    ],
    kraken: [
      "/0/public/AssetPairs",
      "/0/public/Ticker",
      "/0/public/OHLC?pair=XETHZUSD&interval=15",
      "/0/public/Depth?pair=SOLUSD&count=50",
      "/0/public/Trades?pair=XXBTZUSD&count=50"
    ],
    coinbaseexchange: [
      "/products",
      "/products/BTC-USD/stats",
      "/products/ETH-USD/candles?granularity=900",
      "/products/SOL-USD/book?level=2",
      "/products/BTC-USD/trades?limit=50"
    ]
  }

  it("answers byte-identically for the same seed and differently for another seed", async () => {
    const same = await startEmulator({ clock: "frozen", startTime: T0 })
    const other = await startEmulator({ clock: "frozen", startTime: T0, seed: 1234 })
    try {
      for (const id of EXCHANGES) {
        for (const path of paths[id]) {
          const [a, b, c] = await Promise.all(
            [emulator, same, other].map(async (e) => (await getJson(`${e.apiBase(id)}${path}`)).text)
          )
          expect(b, `${id} ${path}`).toBe(a)
          if (
            !path.startsWith("/api/v3/exchangeInfo") &&
            !path.startsWith("/0/public/AssetPairs") &&
            path !== "/products"
          ) {
            expect(c, `${id} ${path}`).not.toBe(a)
          }
        }
        const exchange = await makeExchange(same, id)
        try {
          expect((await exchange.fetchTicker(SYMBOL[id])).last).toBe(emulator.model.price(id, SYMBOL[id]))
        } finally {
          await exchange.close()
        }
      }
    } finally {
      await same.close()
      await other.close()
    }
  })

  it("moves with the clock: advancing one minute closes the partial candle", async () => {
    const moving = await startEmulator({ clock: "frozen", startTime: T0 })
    const exchange = await makeExchange(moving, "binance")
    try {
      const before = await exchange.fetchOHLCV("BTC/USDT", "1m", CURRENT_MINUTE, 1)
      moving.advance(MINUTE)
      const after = await exchange.fetchOHLCV("BTC/USDT", "1m", CURRENT_MINUTE, 2)
      expect(after[0]?.[0]).toBe(CURRENT_MINUTE)
      expect(after[0]).not.toEqual(before[0])
      const closed = moving.model.candles("binance", "BTC/USDT", "1m", CURRENT_MINUTE, 1)
      expect(after.slice(0, 1)).toEqual(closed.map(ohlcvRow))
      expect(closed[0]?.closed).toBe(true)
    } finally {
      await exchange.close()
      await moving.close()
    }
  })
})
