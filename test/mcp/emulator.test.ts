import type { Client, Tool } from "@modelcontextprotocol/client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startEmulator, type Emulator } from "../../src/emulator/index.js"
import { clientSuite, toolClient } from "./clientSuite.js"
import {
  connectInMemory,
  emulatorServices,
  expectToolError,
  expectValidResult,
  metaOf,
  ohlcvRows,
  TOOL_NAMES,
  EMULATOR_T0
} from "./support.js"

let emulator: Emulator
let client: Client
let close: () => Promise<void>
let tools: ReadonlyArray<Tool>

const toolNamed = (name: string) => tools.find((t) => t.name === name)
const call = (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args })
const valid = async (name: string, args: Record<string, unknown>) =>
  expectValidResult(toolNamed(name), await call(name, args))

beforeAll(async () => {
  emulator = await startEmulator({ clock: "frozen", startTime: EMULATOR_T0 })
  const connected = await connectInMemory(emulatorServices(emulator.env()))
  client = connected.client
  close = connected.close
  tools = (await client.listTools()).tools
})

afterAll(async () => {
  await close()
  await emulator.close()
})

describe("MCP tools over ccxt and the exchange emulator (in memory)", () => {
  it("every tool's answer matches its outputSchema", async () => {
    const samples: Record<(typeof TOOL_NAMES)[number], Record<string, unknown>> = {
      list_exchanges: {},
      describe_exchange: { exchange: "kraken" },
      search_markets: { exchange: "coinbaseexchange", quote: "USD" },
      get_ticker: { exchange: "kraken", symbol: "BTC/USD" },
      get_tickers: { exchange: "binance", symbols: ["BTC/USDT", "ETH/USDT", "SOL/USDT"] },
      get_orderbook: { exchange: "coinbaseexchange", symbol: "ETH/USD", limit: 10 },
      get_ohlcv: { exchange: "binance", symbol: "SOL/USDT", interval: "15m", limit: 10 },
      get_trades: { exchange: "binance", symbol: "ETH/USDT", limit: 10 },
      compare_prices: { symbol: "SOL/USD", exchanges: ["coinbaseexchange", "binance"] }
    }
    await Promise.all(TOOL_NAMES.map((name) => valid(name, samples[name])))
  })

  it("list_exchanges and describe_exchange describe the enabled exchanges", async () => {
    const list = await valid("list_exchanges", {})
    const exchanges = list["exchanges"] as Array<{ id: string; intervals: Array<string>; capabilities: object }>
    expect(exchanges.map((e) => e.id)).toEqual(["binance", "kraken", "coinbaseexchange"])
    for (const e of exchanges) {
      expect(e.capabilities).toMatchObject({ ticker: true, ohlcv: true, orderbook: true, trades: true })
      expect(e.intervals).toContain("1h")
    }
    const kraken = await valid("describe_exchange", { exchange: "kraken" })
    expect(kraken).toMatchObject({ id: "kraken", name: "Kraken", status: { status: "ready", markets: 3 } })
  })

  it("get_ticker equals the model's 24 h ticker", async () => {
    const expected = emulator.model.ticker24h("binance", "BTC/USDT")
    const ticker = await valid("get_ticker", { exchange: "binance", symbol: "btc-usdt" })
    expect(ticker).toMatchObject({
      exchange: "binance",
      symbol: "BTC/USDT",
      last: expected.last,
      bid: expected.bid,
      ask: expected.ask,
      high: expected.high,
      low: expected.low,
      open: expected.open,
      change: expected.change,
      baseVolume: expected.baseVolume,
      timestamp: EMULATOR_T0,
      source: "exchange"
    })
    expect(ticker).not.toHaveProperty("raw")
  })

  it("get_orderbook equals the model's book, with mid and spread from its best levels", async () => {
    const expected = emulator.model.orderBook("coinbaseexchange", "BTC/USD", EMULATOR_T0, 10)
    const book = await valid("get_orderbook", { exchange: "coinbaseexchange", symbol: "BTC/USD", limit: 10 })
    expect(book["bids"]).toEqual(expected.bids)
    expect(book["asks"]).toEqual(expected.asks)
    const bid = expected.bids[0]?.[0] ?? 0
    const ask = expected.asks[0]?.[0] ?? 0
    expect(book).toMatchObject({
      bestBid: bid,
      bestAsk: ask,
      mid: (bid + ask) / 2,
      spread: ask - bid,
      spread_bps: ((ask - bid) / ((bid + ask) / 2)) * 10_000
    })
    expect(book["spread"]).toBeGreaterThan(0)
  })

  it("get_ohlcv equals the model's candles, latest and paged forward from an ISO 8601 since", async () => {
    const latest = await valid("get_ohlcv", { exchange: "binance", symbol: "BTC/USDT", interval: "1h", limit: 24 })
    expect(latest["rows"]).toEqual(ohlcvRows(emulator.model.latestCandles("binance", "BTC/USDT", "1h", 24)))
    expect(latest["nextSince"]).toBeNull()
    const since = Date.UTC(2023, 11, 30)
    const first = await valid("get_ohlcv", {
      exchange: "binance",
      symbol: "ETH/USDT",
      interval: "4h",
      since: "2023-12-30T00:00:00Z",
      limit: 3
    })
    const model = emulator.model.candles("binance", "ETH/USDT", "4h", since, 6)
    expect(first["rows"]).toEqual(ohlcvRows(model.slice(0, 3)))
    const next = await valid("get_ohlcv", {
      exchange: "binance",
      symbol: "ETH/USDT",
      interval: "4h",
      since: first["nextSince"],
      limit: 3
    })
    expect(next["rows"]).toEqual(ohlcvRows(model.slice(3, 6)))
  })

  it("get_trades equals the model's most recent trades", async () => {
    const expected = emulator.model.recentTrades("coinbaseexchange", "BTC/USD", 25)
    const result = await valid("get_trades", { exchange: "coinbaseexchange", symbol: "BTC/USD", limit: 25 })
    expect(result["trades"]).toEqual(
      expected.map((t) => ({
        trade_id: String(t.id),
        timestamp: t.timestamp,
        price: t.price,
        amount: t.amount,
        side: t.side
      }))
    )
  })

  it("search_markets pages through the exchange's markets", async () => {
    const first = await valid("search_markets", { exchange: "binance", limit: 2 })
    expect(first).toMatchObject({ exchange: "binance", total: 3, offset: 0 })
    const second = await valid("search_markets", { exchange: "binance", limit: 2, cursor: first["nextCursor"] })
    expect(second).toMatchObject({ total: 3, offset: 2, nextCursor: null })
    const symbols = [
      ...(first["markets"] as Array<{ symbol: string }>),
      ...(second["markets"] as Array<{ symbol: string }>)
    ]
    expect(symbols.map((m) => m.symbol).sort()).toEqual(
      emulator.model
        .markets("binance")
        .map((m) => m.symbol)
        .sort()
    )
  })

  it("compare_prices: kraken and coinbase quote BTC/USD, binance reports the symbol it lists instead", async () => {
    const result = await valid("compare_prices", { symbol: "BTC/USD" })
    const kraken = emulator.model.ticker24h("kraken", "BTC/USD")
    const coinbase = emulator.model.ticker24h("coinbaseexchange", "BTC/USD")
    expect(result["quotes"]).toMatchObject([
      { exchange: "kraken", bid: kraken.bid, ask: kraken.ask, last: kraken.last },
      { exchange: "coinbaseexchange", bid: coinbase.bid, ask: coinbase.ask, last: coinbase.last }
    ])
    const bestBid =
      kraken.bid >= coinbase.bid
        ? { exchange: "kraken", price: kraken.bid }
        : { exchange: "coinbaseexchange", price: coinbase.bid }
    const bestAsk =
      kraken.ask <= coinbase.ask
        ? { exchange: "kraken", price: kraken.ask }
        : { exchange: "coinbaseexchange", price: coinbase.ask }
    expect(result).toMatchObject({ bestBid, bestAsk, spread: bestAsk.price - bestBid.price })
    expect(result["failures"]).toMatchObject([{ exchange: "binance", code: "symbol_not_found", retryable: false }])
    expect((result["failures"] as Array<{ hint: string }>)[0]?.hint).toContain("BTC/USDT")
  })

  it("an upstream failure is a retryable tool error; the next call recovers", async () => {
    emulator.inject({ kind: "ban-418", exchange: "binance", endpoint: "/api/v3/depth", retryAfter: 30 })
    try {
      const error = expectToolError(
        await call("get_orderbook", { exchange: "binance", symbol: "ETH/USDT", limit: 7 }),
        "upstream_banned"
      )
      expect(error.retryable).toBe(true)
      expect(error.retryAfter).toBeGreaterThan(0)
    } finally {
      emulator.clearFaults()
    }
    const book = await valid("get_orderbook", { exchange: "binance", symbol: "ETH/USDT", limit: 7 })
    expect(metaOf(book).cached).toBe(false)
  })
})

describe("the client suite with the SDK 2.x client, in memory", () => {
  clientSuite(() => Promise.resolve({ client: toolClient(client), emulator, close: () => Promise.resolve() }))
})
