import type { Client, Tool } from "@modelcontextprotocol/client"
import { Effect, Ref } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { MAX_RESULT_CHARS, successResult } from "../../src/Mcp/Result.js"
import { INSTRUCTIONS } from "../../src/Mcp/Server.js"
import { NAME, VERSION } from "../../src/Version.js"
import { T0 } from "../support/mockExchange.js"
import {
  type CallCounts,
  compileBothDrafts,
  connectInMemory,
  expectToolError,
  expectValidResult,
  metaOf,
  mockServices,
  TOOL_NAMES
} from "./support.js"

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true }

/** The tool list is a contract with every MCP host: names, annotations and argument names. */
const PINNED: Record<(typeof TOOL_NAMES)[number], { required: string[]; optional: string[] }> = {
  list_exchanges: { required: [], optional: [] },
  describe_exchange: { required: ["exchange"], optional: [] },
  search_markets: { required: ["exchange"], optional: ["query", "base", "quote", "limit", "cursor"] },
  get_ticker: { required: ["exchange", "symbol"], optional: [] },
  get_tickers: { required: ["exchange", "symbols"], optional: [] },
  get_orderbook: { required: ["exchange", "symbol"], optional: ["limit"] },
  get_ohlcv: { required: ["exchange", "symbol"], optional: ["interval", "since", "limit"] },
  get_trades: { required: ["exchange", "symbol"], optional: ["limit"] },
  compare_prices: { required: ["symbol"], optional: ["exchanges"] }
}

/** One valid call per tool. */
const SAMPLE_CALLS: Record<(typeof TOOL_NAMES)[number], Record<string, unknown>> = {
  list_exchanges: {},
  describe_exchange: { exchange: "binance" },
  search_markets: { exchange: "binance", query: "usdt" },
  get_ticker: { exchange: "binance", symbol: "BTC/USDT" },
  get_tickers: { exchange: "binance", symbols: ["BTC/USDT", "eth-usdt"] },
  get_orderbook: { exchange: "binance", symbol: "BTC/USDT", limit: 5 },
  get_ohlcv: { exchange: "binance", symbol: "BTC/USDT", interval: "1h", limit: 3 },
  get_trades: { exchange: "binance", symbol: "BTC/USDT", limit: 4 },
  compare_prices: { symbol: "BTC/USDT", exchanges: ["binance", "kraken"] }
}

let client: Client
let calls: CallCounts
let close: () => Promise<void>
let tools: ReadonlyArray<Tool>

const toolNamed = (name: string) => tools.find((t) => t.name === name)
const call = (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args })
const callsOf = (method: string) => Effect.runPromise(Ref.get(calls)).then((c) => c[method] ?? 0)

beforeAll(async () => {
  const services = await Effect.runPromise(mockServices())
  calls = services.calls
  const connected = await connectInMemory(services.layer)
  client = connected.client
  close = connected.close
  tools = (await client.listTools()).tools
})

afterAll(() => close())

describe("MCP tool list", () => {
  it("pins names, read-only annotations, argument names and an output schema per tool", () => {
    expect(tools.map((t) => t.name)).toEqual([...TOOL_NAMES])
    for (const tool of tools) {
      const pinned = PINNED[tool.name as (typeof TOOL_NAMES)[number]]
      expect(tool.annotations, tool.name).toMatchObject(READ_ONLY)
      expect(tool.description?.length ?? 0, tool.name).toBeGreaterThan(40)
      expect(tool.inputSchema.type).toBe("object")
      expect(Object.keys(tool.inputSchema.properties ?? {}).sort(), tool.name).toEqual(
        [...pinned.required, ...pinned.optional].sort()
      )
      expect([...(tool.inputSchema.required ?? [])].sort(), tool.name).toEqual([...pinned.required].sort())
      expect(tool.outputSchema?.type, tool.name).toBe("object")
      expect(tool.outputSchema?.required, tool.name).toContain("meta")
    }
  })

  it("every input and output schema compiles under strict draft-07 and 2020-12 Ajv, without 2020-12-only keywords", () => {
    for (const tool of tools) {
      for (const schema of [tool.inputSchema, tool.outputSchema ?? {}]) {
        expect(() => compileBothDrafts(schema), tool.name).not.toThrow()
        expect(JSON.stringify(schema), tool.name).not.toMatch(
          /"(prefixItems|\$schema|\$defs|\$ref|\$dynamicRef|unevaluated\w+|dependent\w+)"/
        )
      }
    }
  })

  it("order book levels and candle rows mean the same under both drafts: fixed-length arrays of numbers", () => {
    const both = { "draft-07": "", "2020-12": "" }
    const rejectedByBoth = (errors: Record<string, string>) =>
      expect(Object.values(errors).every((e) => e.length > 0)).toBe(true)
    const meta = { asOf: new Date(T0).toISOString(), cached: false, ageMs: 0, truncated: false }

    const book = compileBothDrafts(toolNamed("get_orderbook")?.outputSchema ?? {})
    const sides = { exchange: "binance", symbol: "BTC/USDT", timestamp: T0, bestBid: 100, bestAsk: 101, meta }
    const derived = { mid: 100.5, spread: 1, spread_bps: 99.5 }
    expect(book({ ...sides, ...derived, bids: [[100, 1]], asks: [[101, 2]] })).toEqual(both)
    for (const level of [[100], [100, 1, 2], ["100", 1], []]) {
      rejectedByBoth(book({ ...sides, ...derived, bids: [level], asks: [] }))
    }

    const ohlcv = compileBothDrafts(toolNamed("get_ohlcv")?.outputSchema ?? {})
    const columns = ["timestamp", "open", "high", "low", "close", "volume"]
    const candles = { exchange: "binance", symbol: "BTC/USDT", interval: "1h", columns, nextSince: null, meta }
    expect(ohlcv({ ...candles, rows: [[T0, 1, 2, 0.5, 1.5, 10]] })).toEqual(both)
    for (const row of [
      [T0, 1, 2, 0.5, 1.5],
      [T0, 1, 2, 0.5, 1.5, 10, 11],
      [T0, 1, 2, 0.5, 1.5, null]
    ]) {
      rejectedByBoth(ohlcv({ ...candles, rows: [row] }))
    }
    rejectedByBoth(ohlcv({ ...candles, columns: columns.slice(1), rows: [] }))
  })

  it("introduces itself with name, version and instructions", () => {
    expect(client.getServerVersion()).toMatchObject({ name: NAME, version: VERSION })
    const instructions = client.getInstructions() ?? ""
    expect(instructions).toBe(INSTRUCTIONS)
    expect(instructions.split("\n").length).toBeLessThanOrEqual(6)
    for (const topic of ["BASE/QUOTE", "search_markets", "cursor", "1h", "nextSince", "meta"]) {
      expect(instructions).toContain(topic)
    }
  })
})

describe("MCP tools over the mock exchange", () => {
  it("every tool answers an object matching its outputSchema, mirrored as compact JSON text, with meta", async () => {
    for (const name of TOOL_NAMES) {
      const structured = expectValidResult(toolNamed(name), await call(name, SAMPLE_CALLS[name]))
      const meta = metaOf(structured)
      expect(Number.isNaN(Date.parse(meta.asOf)), name).toBe(false)
      expect(typeof meta.cached, name).toBe("boolean")
      expect(meta.ageMs, name).toBeGreaterThanOrEqual(0)
      expect(meta.truncated, name).toBe(false)
    }
  })

  it("get_ticker: the ticker without the exchange's raw payload; a second call is served from the cache", async () => {
    const first = expectValidResult(
      toolNamed("get_ticker"),
      await call("get_ticker", { exchange: "binance", symbol: "eth/usdt" })
    )
    const { meta, ...ticker } = first
    expect(ticker).toEqual({
      exchange: "binance",
      symbol: "ETH/USDT",
      bid: 2499.5,
      ask: 2500.5,
      last: 2500,
      timestamp: T0,
      datetime: "2024-01-01T00:00:00.000Z",
      high: 2600,
      low: 2400,
      open: 2490,
      close: 2500,
      baseVolume: 12.5,
      quoteVolume: 31250,
      change: 10,
      percentage: (10 / 2490) * 100,
      vwap: 2499,
      source: "exchange"
    })
    expect(metaOf({ meta }).cached).toBe(false)
    const before = await callsOf("ticker")
    const second = expectValidResult(
      toolNamed("get_ticker"),
      await call("get_ticker", { exchange: "binance", symbol: "ETH/USDT" })
    )
    expect(await callsOf("ticker")).toBe(before)
    expect(metaOf(second).cached).toBe(true)
    expect(metaOf(second).asOf).toBe(metaOf(first).asOf)
  })

  it("get_orderbook: [price, amount] levels, best first, with mid, spread and spread in bps", async () => {
    const book = expectValidResult(
      toolNamed("get_orderbook"),
      await call("get_orderbook", { exchange: "binance", symbol: "BTC/USDT", limit: 3 })
    )
    expect(book).toMatchObject({
      bids: [
        [100, 1],
        [99, 2],
        [98, 3]
      ],
      asks: [
        [101, 2],
        [102, 3],
        [103, 4]
      ],
      bestBid: 100,
      bestAsk: 101,
      mid: 100.5,
      spread: 1,
      spread_bps: (1 / 100.5) * 10_000
    })
  })

  it("get_ohlcv: columns and rows, latest by default; with since (ms or ISO 8601) it pages with nextSince", async () => {
    const latest = expectValidResult(
      toolNamed("get_ohlcv"),
      await call("get_ohlcv", { exchange: "binance", symbol: "BTC/USDT", limit: 2 })
    )
    expect(latest).toMatchObject({
      interval: "1h",
      columns: ["timestamp", "open", "high", "low", "close", "volume"],
      rows: [
        [T0, 100, 101, 99, 100.5, 0],
        [T0 + 60_000, 101, 102, 100, 101.5, 1]
      ],
      nextSince: null
    })
    const iso = expectValidResult(
      toolNamed("get_ohlcv"),
      await call("get_ohlcv", {
        exchange: "binance",
        symbol: "BTC/USDT",
        interval: "1m",
        since: "2024-01-02T00:00:00Z",
        limit: 2
      })
    )
    const since = Date.UTC(2024, 0, 2)
    expect(iso["rows"]).toEqual([
      [since, 100, 101, 99, 100.5, 0],
      [since + 60_000, 101, 102, 100, 101.5, 1]
    ])
    expect(iso["nextSince"]).toBe(since + 60_000 + 1)
    const ms = expectValidResult(
      toolNamed("get_ohlcv"),
      await call("get_ohlcv", { exchange: "binance", symbol: "BTC/USDT", interval: "1m", since, limit: 2 })
    )
    expect(ms["rows"]).toEqual(iso["rows"])
    expect(metaOf(ms).cached).toBe(true)
  })

  it("get_trades and get_tickers keep the exchange's order", async () => {
    const trades = expectValidResult(
      toolNamed("get_trades"),
      await call("get_trades", { exchange: "binance", symbol: "BTC/USDT", limit: 2 })
    )
    expect(trades["trades"]).toEqual([
      { trade_id: "1000", timestamp: T0, price: 100, amount: 0.5, side: "buy" },
      { trade_id: "1001", timestamp: T0 + 1, price: 101, amount: 0.5, side: "sell" }
    ])
    const tickers = expectValidResult(
      toolNamed("get_tickers"),
      await call("get_tickers", { exchange: "binance", symbols: ["ETH/USDT", "BTC/USDT"] })
    )
    expect((tickers["tickers"] as Array<{ symbol: string }>).map((t) => t.symbol)).toEqual(["ETH/USDT", "BTC/USDT"])
  })

  it("list_exchanges and describe_exchange: capabilities, intervals and loading status", async () => {
    const list = expectValidResult(toolNamed("list_exchanges"), await call("list_exchanges", {}))
    expect((list["exchanges"] as Array<{ id: string }>).map((e) => e.id)).toEqual(["binance", "kraken"])
    const binance = expectValidResult(
      toolNamed("describe_exchange"),
      await call("describe_exchange", { exchange: "Binance" })
    )
    expect(binance).toMatchObject({
      id: "binance",
      name: "Binance",
      intervals: ["1m", "5m", "1h", "1d"],
      maxCandlesPerRequest: 1000,
      status: { status: "ready", marketsLoadedAt: T0, markets: 3, lastError: null }
    })
  })

  it("search_markets pages with an opaque cursor and never returns more than limit", async () => {
    const seen: Array<string> = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = expectValidResult(
        toolNamed("search_markets"),
        await call("search_markets", { exchange: "binance", limit: 4, ...(cursor === undefined ? {} : { cursor }) })
      )
      const markets = page["markets"] as Array<{ symbol: string }>
      expect(markets.length).toBeLessThanOrEqual(4)
      expect(page["total"]).toBe(9)
      seen.push(...markets.map((m) => m.symbol))
      cursor = (page["nextCursor"] as string | null) ?? undefined
      pages += 1
    } while (cursor !== undefined && pages < 10)
    expect(pages).toBe(3)
    expect(new Set(seen).size).toBe(9)
    const filtered = expectValidResult(
      toolNamed("search_markets"),
      await call("search_markets", { exchange: "kraken", base: "eth" })
    )
    expect(filtered).toMatchObject({
      total: 1,
      markets: [{ symbol: "ETH/USD", base: "ETH", quote: "USD" }],
      nextCursor: null
    })
    expectToolError(await call("search_markets", { exchange: "binance", cursor: "bm9wZQ" }), "invalid_parameter")
  })

  it("compare_prices: best bid and ask across exchanges; failing exchanges are reported, not fatal", async () => {
    const result = expectValidResult(
      toolNamed("compare_prices"),
      await call("compare_prices", { symbol: "btc-usdt", exchanges: ["binance", "kraken", "binanse"] })
    )
    expect(result).toMatchObject({
      symbol: "BTC/USDT",
      quotes: [{ exchange: "binance", symbol: "BTC/USDT", bid: 41999.5, ask: 42000.5, last: 42000 }],
      bestBid: { exchange: "binance", price: 41999.5 },
      bestAsk: { exchange: "binance", price: 42000.5 },
      spread: 1,
      spread_bps: (1 / 42000) * 10_000
    })
    const failures = result["failures"] as Array<{ exchange: string; code: string; retryable: boolean; hint: string }>
    expect(failures.map((f) => [f.exchange, f.code, f.retryable])).toEqual([
      ["kraken", "symbol_not_found", false],
      ["binanse", "unknown_exchange", false]
    ])
    expect(failures[1]?.hint).toContain('"binance"')
    const down = expectValidResult(toolNamed("compare_prices"), await call("compare_prices", { symbol: "DOWN/503" }))
    expect(down).toMatchObject({ quotes: [], bestBid: null, bestAsk: null, spread: null, spread_bps: null })
    expect((down["failures"] as Array<{ code: string }>).map((f) => f.code)).toEqual([
      "upstream_unavailable",
      "symbol_not_found"
    ])
  })
})

describe("MCP tool errors", () => {
  it("unknown exchange and unknown symbol: code, message, retryable, hint and suggestions, also in the text", async () => {
    const exchange = expectToolError(
      await call("get_ticker", { exchange: "binanse", symbol: "BTC/USDT" }),
      "unknown_exchange"
    )
    expect(exchange).toMatchObject({ retryable: false, suggestions: ["binance"] })
    expect(exchange.hint).toContain("list_exchanges")
    const symbol = expectToolError(
      await call("get_orderbook", { exchange: "binance", symbol: "BTC/EUR" }),
      "symbol_not_found"
    )
    expect(symbol.suggestions).toEqual(["BTC/USDT"])
    expect(symbol.hint).toContain("search_markets")
    const interval = expectToolError(
      await call("get_ohlcv", { exchange: "binance", symbol: "BTC/USDT", interval: "7m" }),
      "unsupported_interval"
    )
    expect(interval.suggestions).toEqual(["1m", "5m", "1h", "1d"])
  })

  it("upstream failures say whether and when to retry; a defect reveals nothing", async () => {
    expect(
      expectToolError(await call("get_ticker", { exchange: "binance", symbol: "DOWN/503" }), "upstream_unavailable")
    ).toMatchObject({
      retryable: true,
      retryAfter: 7
    })
    expect(
      expectToolError(await call("get_trades", { exchange: "binance", symbol: "HOT/429" }), "upstream_rate_limited")
    ).toMatchObject({
      retryable: true,
      retryAfter: 3
    })
    expect(
      expectToolError(await call("get_ticker", { exchange: "binance", symbol: "SLOW/504" }), "upstream_timeout")
        .retryable
    ).toBe(true)
    expect(
      expectToolError(await call("get_ticker", { exchange: "binance", symbol: "BAD/502" }), "bad_upstream_response")
        .retryable
    ).toBe(true)
    expect(
      expectToolError(await call("get_trades", { exchange: "binance", symbol: "NOPE/501" }), "not_supported").retryable
    ).toBe(false)
    const defect = await call("get_ticker", { exchange: "binance", symbol: "BOOM/DEFECT" })
    expect(expectToolError(defect, "internal_error").retryable).toBe(false)
    expect(JSON.stringify(defect)).not.toContain("secret")
  })

  it("invalid arguments are tool errors the model can correct, never protocol errors", async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["get_ticker", { exchange: "binance" }, 'Missing required argument "symbol"'],
      [
        "get_ticker",
        { exchange: "binance", symbol: "BTC/USDT", timeframe: "1h" },
        'Unknown argument "timeframe"; get_ticker takes: exchange, symbol'
      ],
      [
        "get_ticker",
        { exchange: "binance", symbol: "BTC USDT" },
        "symbol must look like BASE/QUOTE, for example BTC/USDT"
      ],
      [
        "get_orderbook",
        { exchange: "binance", symbol: "BTC/USDT", limit: 0 },
        "limit must be an integer between 1 and 200"
      ],
      [
        "get_ohlcv",
        { exchange: "binance", symbol: "BTC/USDT", limit: "ten" },
        "limit must be an integer between 1 and 1000"
      ],
      [
        "get_ohlcv",
        { exchange: "binance", symbol: "BTC/USDT", since: "yesterday" },
        "since must be milliseconds since epoch or an ISO 8601 date-time"
      ],
      [
        "get_tickers",
        { exchange: "binance", symbols: "BTC/USDT,ETH/USDT" },
        "symbols must be a list of 1 to 50 symbols"
      ],
      ["get_tickers", { exchange: "binance", symbols: [] }, "symbols must be a list of 1 to 50 symbols"],
      [
        "get_tickers",
        { exchange: "binance", symbols: ["BTC/USDT", "x y"] },
        'Invalid argument "symbols[1]": symbol must look like BASE/QUOTE'
      ],
      [
        "compare_prices",
        { symbol: "BTC/USDT", exchanges: ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"] },
        "exchanges must be a list of 1 to 10"
      ],
      ["list_exchanges", { verbose: true }, 'Unknown argument "verbose"; list_exchanges takes no arguments']
    ]
    for (const [name, args, message] of cases) {
      const error = expectToolError(await call(name, args), "invalid_parameter")
      expect(error.message, JSON.stringify(args)).toContain(message)
      expect(error.retryable).toBe(false)
    }
  })

  it("an unknown tool is a protocol error (the tool list is authoritative)", async () => {
    await expect(call("get_price", {})).rejects.toThrow(/get_price/)
  })
})

describe("size guard", () => {
  const rows = Array.from({ length: 5000 }, (_, i) => [i, "x".repeat(40)] as const)
  const shaped = {
    freshness: [{ storedAt: 1_000, cached: true }],
    items: rows.length,
    render: (keep: number) => ({ rows: rows.slice(0, keep) }),
    dropped: (kept: number, total: number) => `kept ${kept} of ${total}`
  }

  it("drops list items until the result fits about 80k characters, and says so in meta", () => {
    const result = successResult(shaped, 3_000)
    const text = result.content[0]?.type === "text" ? result.content[0].text : ""
    expect(text.length).toBeLessThanOrEqual(MAX_RESULT_CHARS)
    expect(text.length).toBeGreaterThan(MAX_RESULT_CHARS - 100)
    const structured = result.structuredContent as { rows: Array<unknown>; meta: Record<string, unknown> }
    expect(JSON.parse(text)).toEqual(structured)
    expect(structured.meta).toEqual({
      asOf: new Date(1_000).toISOString(),
      cached: true,
      ageMs: 2_000,
      truncated: true,
      notice: `kept ${structured.rows.length} of 5000`
    })
    expect(structured.rows[0]).toEqual([0, "x".repeat(40)])
  })

  it("leaves results that fit untouched", () => {
    const result = successResult(
      { ...shaped, items: 10, render: (keep: number) => ({ rows: rows.slice(0, keep) }) },
      1_000
    )
    expect(result.structuredContent).toMatchObject({ meta: { truncated: false, cached: true, ageMs: 0 } })
    expect((result.structuredContent as { rows: Array<unknown> }).rows).toHaveLength(10)
  })
})
