import { afterAll, beforeAll, expect, it } from "vitest"
import { startEmulator, type Emulator } from "../../src/emulator/index.js"
import {
  EMULATOR_T0,
  emulatorServices,
  expectToolError,
  expectValidResult,
  ohlcvRows,
  type ResultLike,
  startHttp,
  TOOL_NAMES,
  type ToolLike
} from "./support.js"

/** The part of an MCP client the suite uses; both SDK generations' Client fit it through `toolClient`. */
export interface ToolClient {
  readonly listTools: () => Promise<ReadonlyArray<ToolLike>>
  readonly callTool: (name: string, args: Record<string, unknown>) => Promise<ResultLike>
}

interface SdkClient {
  listTools: () => Promise<{ tools: ReadonlyArray<ToolLike> }>
  callTool: (params: { name: string; arguments: Record<string, unknown> }) => Promise<Readonly<Record<string, unknown>>>
}

export const toolClient = (client: SdkClient): ToolClient => ({
  listTools: () => client.listTools().then((listed) => listed.tools),
  callTool: (name, args) => client.callTool({ name, arguments: args })
})

const SINCE = Date.UTC(2023, 11, 30)

/**
 * Invalid calls: each is a tool result with isError and the error JSON in its text, never a protocol error. (An
 * argument named __proto__ never reaches a tool: SDK 1.x clients drop it before sending and the server SDK when
 * parsing; stdio.test.ts sends one as raw JSON-RPC.)
 */
const INVALID: ReadonlyArray<readonly [string, Record<string, unknown>, string, string]> = [
  ["get_ticker", { exchange: "binance" }, "invalid_parameter", 'Missing required argument "symbol"'],
  ["get_ticker", { exchange: "constructor", symbol: "BTC/USDT" }, "unknown_exchange", '"constructor"'],
  ["get_ticker", { exchange: "__proto__", symbol: "BTC/USDT" }, "invalid_parameter", "exchange must be"],
  ["describe_exchange", { exchange: "hasOwnProperty" }, "unknown_exchange", '"hasOwnProperty"'],
  ["get_orderbook", { exchange: "binance", symbol: "__proto__/USDT" }, "invalid_parameter", "symbol must look like"],
  ["get_ticker", { exchange: "kraken", symbol: "constructor" }, "symbol_not_found", '"CONSTRUCTOR" is not listed'],
  [
    "get_ticker",
    { exchange: "binance", symbol: "BTC/USDT", constructor: "x" },
    "invalid_parameter",
    'Unknown argument "constructor"; get_ticker takes: exchange, symbol'
  ],
  ["list_exchanges", { toString: 1 }, "invalid_parameter", 'Unknown argument "toString"; list_exchanges takes no'],
  ["get_ohlcv", { exchange: "binance", symbol: "BTC/USDT", interval: "constructor" }, "invalid_parameter", "interval"],
  ["get_ohlcv", { exchange: "binance", symbol: "BTC/USDT", interval: "7m" }, "unsupported_interval", "7m"],
  ["get_orderbook", { exchange: "binance", symbol: "BTC/USDT", limit: "0" }, "invalid_parameter", "limit must be"],
  ["get_orderbook", { exchange: "binance", symbol: "BTC/USDT", limit: "201" }, "invalid_parameter", "and 200"],
  ["get_trades", { exchange: "binance", symbol: "BTC/USDT", limit: "5.5" }, "invalid_parameter", "limit must be"],
  ["get_trades", { exchange: "binance", symbol: "BTC/USDT", limit: "-1" }, "invalid_parameter", "limit must be"],
  ["get_trades", { exchange: "binance", symbol: "BTC/USDT", limit: "" }, "invalid_parameter", "limit must be"],
  ["get_ohlcv", { exchange: "binance", symbol: "BTC/USDT", since: "tomorrow" }, "invalid_parameter", "since must be"],
  ["get_ohlcv", { exchange: "binance", symbol: "BTC/USDT", since: null }, "invalid_parameter", "since must be"],
  ["search_markets", { exchange: "binance", limit: "1e3" }, "invalid_parameter", "limit must be"],
  ["get_tickers", { exchange: "binance", symbols: "BTC/USDT" }, "invalid_parameter", "symbols must be a list"],
  ["compare_prices", { symbol: "BTC/USD", exchanges: ["__proto__"] }, "invalid_parameter", "exchange must be"]
]

export interface Opened {
  readonly client: ToolClient
  readonly emulator: Emulator
  readonly close: () => Promise<void>
}

/** An emulator and the server over HTTP on loopback, reached through the client `connect` makes. */
export const overHttp =
  (connect: (url: string) => Promise<{ client: ToolClient; close: () => Promise<void> }>) =>
  async (): Promise<Opened> => {
    const emulator = await startEmulator({ clock: "frozen", startTime: EMULATOR_T0 })
    const server = await startHttp(emulatorServices(emulator.env()))
    const connected = await connect(server.url)
    return {
      client: connected.client,
      emulator,
      close: async () => {
        await connected.close()
        await server.close()
        await emulator.close()
      }
    }
  }

/**
 * The same calls through any client, against ccxt and the exchange emulator: every tool with valid arguments
 * (numbers also as digit strings) answers the model's exact values and matches its outputSchema, and every invalid
 * call is an isError result, not a protocol error. Register it inside a describe; `open` runs before its tests.
 */
export const clientSuite = (open: () => Promise<Opened>) => {
  let opened: Opened | undefined
  beforeAll(async () => {
    opened = await open()
  }, 60_000)
  afterAll(() => opened?.close())
  const context = (): Opened => {
    if (opened === undefined) throw new Error("the client suite did not open")
    return opened
  }
  let tools: ReadonlyArray<ToolLike> = []
  const valid = async (name: string, args: Record<string, unknown>) => {
    const { client } = context()
    if (tools.length === 0) tools = await client.listTools()
    return expectValidResult(
      tools.find((t) => t.name === name),
      await client.callTool(name, args)
    )
  }

  it("lists the nine tools", async () => {
    tools = await context().client.listTools()
    expect(tools.map((t) => t.name)).toEqual([...TOOL_NAMES])
  })

  it("answers every tool with the model's values; numbers may be digit strings", async () => {
    const { model } = context().emulator
    const list = await valid("list_exchanges", {})
    expect((list["exchanges"] as Array<{ id: string }>).map((e) => e.id)).toEqual([
      "binance",
      "kraken",
      "coinbaseexchange"
    ])
    expect(await valid("describe_exchange", { exchange: "kraken" })).toMatchObject({ id: "kraken", name: "Kraken" })
    const markets = await valid("search_markets", { exchange: "binance", limit: "2" })
    expect(markets).toMatchObject({ exchange: "binance", total: 3, offset: 0 })
    expect(markets["markets"]).toHaveLength(2)

    const btc = model.ticker24h("binance", "BTC/USDT")
    expect(await valid("get_ticker", { exchange: "binance", symbol: "BTC/USDT" })).toMatchObject({
      last: btc.last,
      bid: btc.bid,
      ask: btc.ask,
      timestamp: EMULATOR_T0
    })
    const tickers = await valid("get_tickers", { exchange: "binance", symbols: ["ETH/USDT", "BTC/USDT"] })
    expect((tickers["tickers"] as Array<{ last: number }>).map((t) => t.last)).toEqual([
      model.ticker24h("binance", "ETH/USDT").last,
      btc.last
    ])

    const book = model.orderBook("binance", "SOL/USDT", EMULATOR_T0, 3)
    const orderbook = await valid("get_orderbook", { exchange: "binance", symbol: "SOL/USDT", limit: "3" })
    expect(orderbook["bids"]).toEqual(book.bids)
    expect(orderbook["asks"]).toEqual(book.asks)

    const candles = ohlcvRows(model.candles("binance", "ETH/USDT", "4h", SINCE, 3))
    for (const since of [String(SINCE), SINCE, "2023-12-30T00:00:00Z"]) {
      const ohlcv = await valid("get_ohlcv", {
        exchange: "binance",
        symbol: "ETH/USDT",
        interval: "4h",
        since,
        limit: "3"
      })
      expect(ohlcv, String(since)).toMatchObject({
        columns: ["timestamp", "open", "high", "low", "close", "volume"],
        rows: candles,
        nextSince: (candles[2]?.[0] ?? 0) + 1
      })
    }

    const trades = await valid("get_trades", { exchange: "coinbaseexchange", symbol: "BTC/USD", limit: "5" })
    expect(trades["trades"]).toEqual(
      model.recentTrades("coinbaseexchange", "BTC/USD", 5).map((t) => ({
        trade_id: String(t.id),
        timestamp: t.timestamp,
        price: t.price,
        amount: t.amount,
        side: t.side
      }))
    )

    const compared = await valid("compare_prices", { symbol: "BTC/USD", exchanges: ["kraken", "constructor"] })
    const kraken = model.ticker24h("kraken", "BTC/USD")
    expect(compared).toMatchObject({
      quotes: [{ exchange: "kraken", bid: kraken.bid, ask: kraken.ask, last: kraken.last }],
      bestBid: { exchange: "kraken", price: kraken.bid },
      bestAsk: { exchange: "kraken", price: kraken.ask }
    })
    expect(compared["failures"]).toMatchObject([{ exchange: "constructor", code: "unknown_exchange" }])
  })

  it("answers invalid calls, hostile names included, with isError and the error JSON as text", async () => {
    const { client } = context()
    for (const [name, args, code, message] of INVALID) {
      const result = await client.callTool(name, args)
      expect(result.isError, `${name} ${JSON.stringify(args)}: ${JSON.stringify(result)}`).toBe(true)
      const error = expectToolError(result, code)
      expect(error.message, `${name} ${JSON.stringify(args)}`).toContain(message)
    }
  })
}
