import type { CallToolResult, StandardSchemaWithJSON } from "@modelcontextprotocol/server"
import { Cause, Clock, Effect, Either, ParseResult, Predicate, type Schema } from "effect"
import { type ApiError, InternalError, InvalidParameter } from "../Domain/Errors.js"
import type { ExchangeInfo, Ticker } from "../Domain/Market.js"
import { Exchange } from "../Exchange/Exchange.js"
import { MarketQueries } from "../Markets/Queries.js"
import { describeError, errorResult, freshnessOf, type Shaped, successResult, whole } from "./Result.js"
import {
  ComparePricesInput,
  ComparePricesOutput,
  ExchangeInput,
  ExchangeListOutput,
  ExchangeOutput,
  MarketInput,
  MarketsOutput,
  NoInput,
  OhlcvInput,
  OhlcvOutput,
  OrderBookInput,
  OrderBookOutput,
  SearchMarketsInput,
  TickerOutput,
  TickersInput,
  TickersOutput,
  TradesInput,
  TradesOutput
} from "./Schemas.js"
import { deferredInputSchema, standardSchema } from "./StandardSchema.js"

/** A registered tool, schema types erased: `call` never fails, every outcome is a tool result. */
export interface McpTool {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly inputSchema: StandardSchemaWithJSON<unknown, unknown>
  readonly outputSchema: StandardSchemaWithJSON
  readonly call: (args: unknown) => Effect.Effect<CallToolResult>
}

type Body<O> = Omit<O, "meta">

interface ToolSpec<A, I, O> {
  readonly name: string
  readonly title: string
  readonly description: string
  readonly input: Schema.Schema<A, I> & { readonly fields: Schema.Struct.Fields }
  readonly output: Schema.Schema<O>
  readonly run: (args: A) => Effect.Effect<Shaped<Body<O>>, ApiError>
}

const pathText = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((key, i) => (typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`)).join("")

const takes = (tool: string, names: ReadonlyArray<string>) =>
  names.length === 0 ? `${tool} takes no arguments` : `${tool} takes: ${names.join(", ")}`

/** Argument errors phrased for the model, naming the argument; REST phrases the same checks for query strings. */
const invalidArguments = (tool: string, names: ReadonlyArray<string>, error: ParseResult.ParseError) => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const first = issues[0]
  const parameter = first?.path[0] === undefined ? undefined : String(first.path[0])
  const describe = (issue: ParseResult.ArrayFormatterIssue): string => {
    const name = pathText(issue.path)
    if (name === "") return `Arguments must be an object; ${takes(tool, names)}`
    if (issue._tag === "Missing") return `Missing required argument "${name}"`
    if (issue._tag === "Unexpected") return `Unknown argument "${name}"; ${takes(tool, names)}`
    return issue.message.startsWith(`${String(issue.path[0])} `)
      ? issue.message
      : `Invalid argument "${name}": ${issue.message}`
  }
  // one issue per argument: a union reports each of its members, which only repeats the same complaint
  const firstPerArgument = issues.filter(
    (issue, i) => issues.findIndex((other) => pathText(other.path) === pathText(issue.path)) === i
  )
  const message =
    firstPerArgument.length === 0 ? "Invalid arguments" : firstPerArgument.slice(0, 3).map(describe).join("; ")
  return new InvalidParameter(parameter === undefined ? { message } : { message, parameter })
}

const defineTool = <A, I, O extends Record<string, unknown>>(spec: ToolSpec<A, I, O>): McpTool => {
  const decode = ParseResult.decodeUnknown(spec.input, { errors: "all", onExcessProperty: "error" })
  const argumentNames = Object.keys(spec.input.fields)
  const call = (args: unknown): Effect.Effect<CallToolResult> =>
    Effect.gen(function* () {
      // Effect lets any object through an empty struct, so unknown arguments are refused here for every tool
      const unknown = Predicate.isRecord(args)
        ? Object.keys(args).find((key) => !argumentNames.includes(key))
        : undefined
      if (unknown !== undefined) {
        return yield* new InvalidParameter({
          message: `Unknown argument "${unknown}"; ${takes(spec.name, argumentNames)}`,
          parameter: unknown
        })
      }
      const input = yield* decode(args).pipe(
        Effect.mapError((issue) => invalidArguments(spec.name, argumentNames, new ParseResult.ParseError({ issue })))
      )
      const shaped = yield* spec.run(input)
      return successResult<Record<string, unknown>>(shaped, yield* Clock.currentTimeMillis)
    }).pipe(
      Effect.catchAll((error) =>
        Effect.logDebug("tool call failed", { code: error.code, message: error.message }).pipe(
          Effect.zipRight(Clock.currentTimeMillis),
          Effect.map((now) => errorResult(describeError(error), now))
        )
      ),
      Effect.catchAllDefect((defect) =>
        Effect.logError("tool call died", Cause.die(defect)).pipe(
          Effect.zipRight(Clock.currentTimeMillis),
          Effect.map((now) => errorResult(describeError(new InternalError({ message: "Internal server error" })), now))
        )
      ),
      Effect.annotateLogs({ component: "mcp", tool: spec.name })
    )
  return {
    name: spec.name,
    title: spec.title,
    description: spec.description,
    inputSchema: deferredInputSchema(spec.input),
    outputSchema: standardSchema(spec.output),
    call
  }
}

const exchangeView = (info: ExchangeInfo) => ({
  id: info.id,
  name: info.name,
  capabilities: { ...info.capabilities },
  intervals: [...info.intervals],
  maxCandlesPerRequest: info.maxCandlesPerRequest
})

/** The ticker without `raw`, the exchange's own payload: it is large and the model does not need it. */
const tickerView = (t: Ticker) => ({
  exchange: t.exchange,
  symbol: t.symbol,
  bid: t.bid,
  ask: t.ask,
  last: t.last,
  timestamp: t.timestamp,
  datetime: t.datetime,
  high: t.high,
  low: t.low,
  open: t.open,
  close: t.close,
  baseVolume: t.baseVolume,
  quoteVolume: t.quoteVolume,
  change: t.change,
  percentage: t.percentage,
  vwap: t.vwap,
  source: t.source
})

const midAndSpread = (bid: number | null, ask: number | null) => {
  if (bid === null || ask === null) return { mid: null, spread: null, spread_bps: null }
  const mid = (bid + ask) / 2
  const spread = ask - bid
  return { mid, spread, spread_bps: mid === 0 ? null : (spread / mid) * 10_000 }
}

const encodeCursor = (offset: number): string => Buffer.from(`o${offset}`).toString("base64url")

const decodeCursor = (cursor: string): Either.Either<number, InvalidParameter> => {
  const match = /^o(\d{1,9})$/.exec(Buffer.from(cursor, "base64url").toString("latin1"))
  return match?.[1] === undefined
    ? Either.left(
        new InvalidParameter({
          message: "cursor is not a nextCursor value returned by search_markets; omit it for the first page",
          parameter: "cursor"
        })
      )
    : Either.right(Number(match[1]))
}

/** Every MCP tool, over the same queries and cache as the REST routes. */
export const makeMcpTools = Effect.gen(function* () {
  const exchange = yield* Exchange
  const queries = yield* MarketQueries

  const listExchanges = Effect.fn("Mcp.listExchanges")(function* () {
    const cached = yield* queries.exchanges
    const list = yield* cached.value
    return whole([freshnessOf(cached)], { exchanges: list.exchanges.map(exchangeView) })
  })

  const describeExchange = Effect.fn("Mcp.describeExchange")(function* (args: typeof ExchangeInput.Type) {
    const id = yield* exchange.resolveExchange(args.exchange)
    const cached = yield* queries.exchanges
    const listed = (yield* cached.value).exchanges.find((e) => e.id === id)
    const info = listed ?? (yield* exchange.describe(id))
    const status = (yield* exchange.status)[id] ?? {
      status: "idle",
      marketsLoadedAt: null,
      markets: 0,
      lastError: null
    }
    return whole([freshnessOf(cached)], { ...exchangeView(info), status: { ...status } })
  })

  const searchMarkets = Effect.fn("Mcp.searchMarkets")(function* (args: typeof SearchMarketsInput.Type) {
    const offset = args.cursor === undefined ? 0 : yield* decodeCursor(args.cursor)
    const cached = yield* queries.markets({
      exchange: args.exchange,
      q: args.query,
      base: args.base,
      quote: args.quote,
      offset,
      limit: args.limit
    })
    const page = yield* cached.value
    const markets = page.markets.map((m) => ({
      symbol: m.symbol,
      id: m.id,
      base: m.base,
      quote: m.quote,
      type: m.type,
      active: m.active
    }))
    return {
      freshness: [freshnessOf(cached)],
      items: markets.length,
      render: (keep: number) => ({
        exchange: page.exchange,
        total: page.total,
        offset,
        markets: markets.slice(0, keep),
        nextCursor: offset + keep < page.total ? encodeCursor(offset + keep) : null
      }),
      dropped: (kept: number, total: number) =>
        `Only ${kept} of the ${total} markets of this page fit the size limit; nextCursor continues after them`
    } satisfies Shaped<Body<typeof MarketsOutput.Type>>
  })

  const getTicker = Effect.fn("Mcp.getTicker")(function* (args: typeof MarketInput.Type) {
    const cached = yield* queries.ticker(args)
    return whole([freshnessOf(cached)], tickerView(yield* cached.value))
  })

  const getTickers = Effect.fn("Mcp.getTickers")(function* (args: typeof TickersInput.Type) {
    const cached = yield* queries.tickers(args)
    const value = yield* cached.value
    const tickers = value.tickers.map(tickerView)
    return {
      freshness: [freshnessOf(cached)],
      items: tickers.length,
      render: (keep: number) => ({ exchange: value.exchange, tickers: tickers.slice(0, keep) }),
      dropped: (kept: number, total: number) =>
        `Only the first ${kept} of ${total} tickers fit the size limit; ask for the rest in another call`
    } satisfies Shaped<Body<typeof TickersOutput.Type>>
  })

  const getOrderBook = Effect.fn("Mcp.getOrderBook")(function* (args: typeof OrderBookInput.Type) {
    const cached = yield* queries.orderBook(args)
    const book = yield* cached.value
    const bids = book.bids.map((l): readonly [number, number] => [l.price, l.amount])
    const asks = book.asks.map((l): readonly [number, number] => [l.price, l.amount])
    const bestBid = bids[0]?.[0] ?? null
    const bestAsk = asks[0]?.[0] ?? null
    return {
      freshness: [freshnessOf(cached)],
      items: Math.max(bids.length, asks.length),
      render: (keep: number) => ({
        exchange: book.exchange,
        symbol: book.symbol,
        timestamp: book.timestamp,
        bids: bids.slice(0, keep),
        asks: asks.slice(0, keep),
        bestBid,
        bestAsk,
        ...midAndSpread(bestBid, bestAsk)
      }),
      dropped: (kept: number, total: number) =>
        `Only the best ${kept} of ${total} levels per side fit the size limit; ask for a smaller limit`
    } satisfies Shaped<Body<typeof OrderBookOutput.Type>>
  })

  const getOhlcv = Effect.fn("Mcp.getOhlcv")(function* (args: typeof OhlcvInput.Type) {
    const cached = yield* queries.ohlcv(args)
    const ohlcv = yield* cached.value
    const rows = ohlcv.candles.map((c): readonly [number, number, number, number, number, number] => [
      c.timestamp,
      c.open,
      c.high,
      c.low,
      c.close,
      c.volume
    ])
    // paging forward from `since` keeps the oldest candles; the latest candles keep the newest
    const forward = args.since !== undefined
    const keepRows = (keep: number) => (forward ? rows.slice(0, keep) : rows.slice(rows.length - keep))
    return {
      freshness: [freshnessOf(cached)],
      items: rows.length,
      render: (keep: number) => {
        const kept = keepRows(keep)
        const last = kept[kept.length - 1]
        const more = keep < rows.length || rows.length >= args.limit
        return {
          exchange: ohlcv.exchange,
          symbol: ohlcv.symbol,
          interval: ohlcv.interval,
          columns: ["timestamp", "open", "high", "low", "close", "volume"] as const,
          rows: kept,
          nextSince: forward && more && last !== undefined ? last[0] + 1 : null
        }
      },
      dropped: (kept: number, total: number) =>
        forward
          ? `Only the first ${kept} of ${total} candles fit the size limit; continue with since = nextSince`
          : `Only the newest ${kept} of ${total} candles fit the size limit; ask for a smaller limit or use since`
    } satisfies Shaped<Body<typeof OhlcvOutput.Type>>
  })

  const getTrades = Effect.fn("Mcp.getTrades")(function* (args: typeof TradesInput.Type) {
    const cached = yield* queries.trades(args)
    const value = yield* cached.value
    const trades = value.trades.map((t) => ({
      trade_id: t.trade_id,
      timestamp: t.timestamp,
      price: t.price,
      amount: t.amount,
      side: t.side
    }))
    return {
      freshness: [freshnessOf(cached)],
      items: trades.length,
      render: (keep: number) => ({
        exchange: value.exchange,
        symbol: value.symbol,
        trades: trades.slice(trades.length - keep)
      }),
      dropped: (kept: number, total: number) =>
        `Only the newest ${kept} of ${total} trades fit the size limit; ask for a smaller limit`
    } satisfies Shaped<Body<typeof TradesOutput.Type>>
  })

  const comparePrices = Effect.fn("Mcp.comparePrices")(function* (args: typeof ComparePricesInput.Type) {
    const requested = Array.from(new Set((args.exchanges ?? exchange.enabled).map((e) => e.toLowerCase())))
    const outcomes = yield* Effect.forEach(
      requested,
      (id) =>
        queries.ticker({ exchange: id, symbol: args.symbol }).pipe(
          Effect.flatMap((cached) => Effect.map(cached.value, (ticker) => ({ cached, ticker }))),
          Effect.catchAllDefect(() => Effect.fail(new InternalError({ message: "Internal server error" }))),
          Effect.either,
          Effect.map((outcome) => ({ id, outcome }))
        ),
      { concurrency: "unbounded" }
    )
    const now = yield* Clock.currentTimeMillis
    const answered = outcomes.flatMap(({ outcome }) => (Either.isRight(outcome) ? [outcome.right] : []))
    // aliases (coinbasepro, coinbaseexchange) resolve to one exchange, which is quoted once
    const distinct = answered.filter((a, i) => answered.findIndex((b) => b.ticker.exchange === a.ticker.exchange) === i)
    const quotes = distinct.map(({ cached, ticker }) => ({
      exchange: ticker.exchange,
      symbol: ticker.symbol,
      bid: ticker.bid,
      ask: ticker.ask,
      last: ticker.last,
      timestamp: ticker.timestamp,
      cached: cached.response.state === "HIT",
      ageMs: Math.max(0, now - cached.response.storedAt)
    }))
    const failures = outcomes.flatMap(({ id, outcome }) => {
      if (Either.isRight(outcome)) return []
      const { code, message, retryable, hint } = describeError(outcome.left)
      return [{ exchange: id, code, message, retryable, hint }]
    })
    const best = (side: "bid" | "ask") =>
      quotes.reduce<{ exchange: string; price: number } | null>((acc, q) => {
        const price = q[side]
        if (price === null) return acc
        if (acc === null || (side === "bid" ? price > acc.price : price < acc.price)) {
          return { exchange: q.exchange, price }
        }
        return acc
      }, null)
    const bestBid = best("bid")
    const bestAsk = best("ask")
    const { spread, spread_bps } = midAndSpread(bestBid?.price ?? null, bestAsk?.price ?? null)
    const freshness = distinct.map(({ cached }) => freshnessOf(cached))
    const symbol = quotes[0]?.symbol ?? args.symbol.toUpperCase().replace(/[-_]/, "/")
    return whole(freshness, { symbol, quotes, failures, bestBid, bestAsk, spread, spread_bps })
  })

  return [
    defineTool({
      name: "list_exchanges",
      title: "List exchanges",
      description:
        "The exchanges this server is connected to, with what each supports (ticker, tickers, ohlcv, orderbook, " +
        "trades, websocket), its candle intervals and the most candles it returns per request. Call it first to " +
        "learn the exchange ids the other tools take.",
      input: NoInput,
      output: ExchangeListOutput,
      run: () => listExchanges()
    }),
    defineTool({
      name: "describe_exchange",
      title: "Describe one exchange",
      description:
        "One exchange's capabilities, candle intervals and market-loading status (how many markets are loaded, the " +
        "last loading error).",
      input: ExchangeInput,
      output: ExchangeOutput,
      run: describeExchange
    }),
    defineTool({
      name: "search_markets",
      title: "Search markets",
      description:
        "Find the exact symbols an exchange lists, filtered by a substring of the symbol (query), base or quote " +
        "currency. Results are paged: pass nextCursor as cursor to read the next page. Use it when a symbol is not " +
        "found, or to discover which quote currencies (USDT, USD, EUR...) an exchange uses.",
      input: SearchMarketsInput,
      output: MarketsOutput,
      run: searchMarkets
    }),
    defineTool({
      name: "get_ticker",
      title: "Get ticker",
      description:
        "Latest price of one symbol on one exchange: last, bid, ask, 24 h high, low, open, volume, change and " +
        "vwap. Prices are in the symbol's quote currency.",
      input: MarketInput,
      output: TickerOutput,
      run: getTicker
    }),
    defineTool({
      name: "get_tickers",
      title: "Get several tickers",
      description:
        "Latest prices of up to 50 symbols on one exchange in one call, in the order asked. Any unknown symbol " +
        "fails the call with suggestions.",
      input: TickersInput,
      output: TickersOutput,
      run: getTickers
    }),
    defineTool({
      name: "get_orderbook",
      title: "Get order book",
      description:
        "Order book of one symbol: bids (best first) and asks (best first) as [price, amount], with best bid and " +
        "ask, mid price, spread and spread in basis points.",
      input: OrderBookInput,
      output: OrderBookOutput,
      run: getOrderBook
    }),
    defineTool({
      name: "get_ohlcv",
      title: "Get OHLCV candles",
      description:
        "OHLCV candles of one symbol, oldest first, as rows of [timestamp, open, high, low, close, volume] " +
        "(timestamp = candle open time in ms). Without since: the latest candles. With since: candles from that " +
        "time on; continue with since = nextSince.",
      input: OhlcvInput,
      output: OhlcvOutput,
      run: getOhlcv
    }),
    defineTool({
      name: "get_trades",
      title: "Get recent trades",
      description: "The most recent public trades of one symbol, oldest first, with taker side.",
      input: TradesInput,
      output: TradesOutput,
      run: getTrades
    }),
    defineTool({
      name: "compare_prices",
      title: "Compare prices across exchanges",
      description:
        "One symbol on several exchanges at once: each exchange's bid, ask and last, the best bid and best ask " +
        "across them, and the spread between those. Exchanges that fail or do not list the symbol are reported " +
        "in failures without failing the call. The same symbol is used everywhere (BTC/USDT and BTC/USD differ).",
      input: ComparePricesInput,
      output: ComparePricesOutput,
      run: comparePrices
    })
  ] as const
})
