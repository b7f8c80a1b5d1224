import { ParseResult, Schema } from "effect"
import { Capabilities, TickerFields } from "../Domain/Market.js"
import {
  ExchangeParam,
  FilterParam,
  integerMessage,
  IntervalParam,
  MAX_TIMESTAMP_MS,
  SymbolParam,
  withMessage
} from "../Domain/Params.js"

// ---- inputs: JSON arguments, so numbers are numbers (REST reads them from query strings) ----

/** One message for every way the value can be wrong (override: inner checks would otherwise speak first). */
const withArgMessage = <A, I>(schema: Schema.Schema<A, I>, message: string, description: string) =>
  withMessage(schema, message, { description, override: true })

/** A list whose own message covers its shape and length, while a bad element keeps the element's message. */
const listOf = <A, I>(item: Schema.Schema<A, I>, min: number, max: number, message: string, description: string) =>
  Schema.Array(item)
    .annotations({ message: () => message })
    .pipe(Schema.minItems(min, { message: () => message }), Schema.maxItems(max, { message: () => message }))
    .annotations({ description })

/** Digits only: some hosts and CLIs send every argument as a string, "5" for 5. */
const DigitString = Schema.compose(Schema.String.pipe(Schema.pattern(/^\d{1,16}$/)), Schema.NumberFromString)

/**
 * An integer from a JSON number or a digit string. The listed JSON Schema stays a plain integer: that is what a
 * model should send.
 */
const integerArg = (min: number, max: number, description?: string) =>
  Schema.Union(Schema.Number, DigitString)
    .pipe(Schema.int(), Schema.between(min, max))
    .annotations({
      jsonSchema: { type: "integer", minimum: min, maximum: max, ...(description === undefined ? {} : { description }) }
    })

const boundedInt = (name: string, min: number, max: number, description: string) =>
  withArgMessage(integerArg(min, max, description), integerMessage(name, min, max), description)

const ExchangeArg = ExchangeParam.annotations({
  description: "Exchange id as listed by list_exchanges, e.g. binance, kraken, coinbaseexchange"
})

const SymbolArg = SymbolParam.annotations({
  description: "Unified symbol BASE/QUOTE, e.g. BTC/USDT or ETH/USD (BTC-USDT and lower case are accepted)"
})

const SinceFromIso = Schema.transformOrFail(
  Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/)),
  Schema.Number,
  {
    strict: true,
    decode: (s, _, ast) => {
      const ms = Date.parse(s)
      return Number.isFinite(ms) && ms >= 0
        ? ParseResult.succeed(ms)
        : ParseResult.fail(new ParseResult.Type(ast, s, "not a valid date-time"))
    },
    encode: (ms) => ParseResult.succeed(new Date(ms).toISOString())
  }
)

const Since = withArgMessage(
  Schema.Union(integerArg(0, MAX_TIMESTAMP_MS), SinceFromIso),
  "since must be milliseconds since epoch or an ISO 8601 date-time such as 2024-01-01T00:00:00Z",
  "Start time: milliseconds since epoch or ISO 8601 (2024-01-01T00:00:00Z). Without it the latest candles are returned"
)

/** Absent, never undefined: arguments are JSON, and an explicit null is an error the model should see. */
const optionalArg = <A, I>(schema: Schema.Schema<A, I>) => Schema.optionalWith(schema, { exact: true })

export const NoInput = Schema.Struct({})

export const ExchangeInput = Schema.Struct({ exchange: ExchangeArg })

export const SearchMarketsInput = Schema.Struct({
  exchange: ExchangeArg,
  query: optionalArg(FilterParam("query", "Case-insensitive substring of the symbol, e.g. BTC or SOL/US")),
  base: optionalArg(FilterParam("base", "Only markets with this base currency, e.g. ETH")),
  quote: optionalArg(FilterParam("quote", "Only markets with this quote currency, e.g. USDT")),
  limit: Schema.optionalWith(boundedInt("limit", 1, 200, "Page size (default 50, max 200)"), {
    default: () => 50,
    exact: true
  }),
  cursor: optionalArg(
    withArgMessage(
      Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9_-]{1,40}$/)),
      "cursor must be a nextCursor value returned by search_markets",
      "nextCursor of the previous page; omit for the first page"
    )
  )
})

export const MarketInput = Schema.Struct({ exchange: ExchangeArg, symbol: SymbolArg })

export const TickersInput = Schema.Struct({
  exchange: ExchangeArg,
  symbols: listOf(
    SymbolParam,
    1,
    50,
    'symbols must be a list of 1 to 50 symbols such as ["BTC/USDT", "ETH/USDT"]',
    "1 to 50 unified symbols of that exchange"
  )
})

export const OrderBookInput = Schema.Struct({
  exchange: ExchangeArg,
  symbol: SymbolArg,
  limit: Schema.optionalWith(boundedInt("limit", 1, 200, "Levels per side (default 20, max 200)"), {
    default: () => 20,
    exact: true
  })
})

export const OhlcvInput = Schema.Struct({
  exchange: ExchangeArg,
  symbol: SymbolArg,
  interval: Schema.optionalWith(
    IntervalParam.annotations({
      description: "Candle interval, e.g. 1m, 5m, 15m, 1h, 4h, 1d (default 1h; describe_exchange lists the exchange's)"
    }),
    { default: () => "1h", exact: true }
  ),
  since: optionalArg(Since),
  limit: Schema.optionalWith(boundedInt("limit", 1, 1000, "Number of candles (default 100, max 1000)"), {
    default: () => 100,
    exact: true
  })
})

export const TradesInput = Schema.Struct({
  exchange: ExchangeArg,
  symbol: SymbolArg,
  limit: Schema.optionalWith(boundedInt("limit", 1, 500, "Most recent trades (default 50, max 500)"), {
    default: () => 50,
    exact: true
  })
})

export const ComparePricesInput = Schema.Struct({
  symbol: SymbolArg,
  exchanges: optionalArg(
    listOf(
      ExchangeParam,
      1,
      10,
      'exchanges must be a list of 1 to 10 exchange ids such as ["binance", "kraken"]',
      "Exchanges to compare (1 to 10); default: every enabled exchange"
    )
  )
})

// ---- outputs: every structuredContent is an object carrying meta ----

export const Meta = Schema.Struct({
  asOf: Schema.String.annotations({ description: "When the data was fetched from the exchange (ISO 8601)" }),
  cached: Schema.Boolean.annotations({ description: "true when served from the cache, without a new upstream call" }),
  ageMs: Schema.Number.annotations({ description: "Milliseconds since the data was fetched from the exchange" }),
  truncated: Schema.Boolean.annotations({ description: "true when items were dropped to fit the size limit" }),
  notice: optionalArg(Schema.String.annotations({ description: "What was dropped and how to get the rest" }))
})
export type Meta = typeof Meta.Type

const NullableNumber = Schema.NullOr(Schema.Number)

const ExchangeFields = {
  id: Schema.String,
  name: Schema.String,
  capabilities: Capabilities,
  intervals: Schema.Array(Schema.String).annotations({ description: "Candle intervals get_ohlcv accepts" }),
  maxCandlesPerRequest: Schema.Number
}

export const ExchangeListOutput = Schema.Struct({
  exchanges: Schema.Array(Schema.Struct(ExchangeFields)),
  meta: Meta
})

export const ExchangeOutput = Schema.Struct({
  ...ExchangeFields,
  status: Schema.Struct({
    status: Schema.Literal("idle", "ready", "error").annotations({
      description: "idle: markets not loaded yet; ready: loaded; error: the last load failed"
    }),
    marketsLoadedAt: NullableNumber,
    markets: Schema.Number.annotations({ description: "Number of markets loaded" }),
    lastError: Schema.NullOr(Schema.String)
  }),
  meta: Meta
})

export const MarketsOutput = Schema.Struct({
  exchange: Schema.String,
  total: Schema.Number.annotations({ description: "Markets matching the filter, over all pages" }),
  offset: Schema.Number,
  markets: Schema.Array(
    Schema.Struct({
      symbol: Schema.String,
      id: Schema.String,
      base: Schema.String,
      quote: Schema.String,
      type: Schema.String,
      active: Schema.NullOr(Schema.Boolean)
    })
  ),
  nextCursor: Schema.NullOr(Schema.String).annotations({
    description: "Pass as cursor for the next page; null at the end"
  }),
  meta: Meta
})

const TickerStruct = Schema.Struct({ ...TickerFields, source: Schema.Literal("exchange", "coinmarketcap") })

export const TickerOutput = Schema.Struct({ ...TickerStruct.fields, meta: Meta })

export const TickersOutput = Schema.Struct({
  exchange: Schema.String,
  tickers: Schema.Array(TickerStruct),
  meta: Meta
})

/**
 * A fixed-length array rather than a tuple: the tuple keywords of JSON Schema 2020-12 (prefixItems, items: false)
 * read as "no items allowed" to the draft-07 validators most MCP clients use; minItems/maxItems mean the same in both.
 */
const row = <A, I>(item: Schema.Schema<A, I>, length: number, description: string) =>
  Schema.Array(item).pipe(Schema.itemsCount(length)).annotations({ description })

const Level = row(Schema.Number, 2, "[price, amount]")

export const OrderBookOutput = Schema.Struct({
  exchange: Schema.String,
  symbol: Schema.String,
  timestamp: NullableNumber,
  bids: Schema.Array(Level).annotations({ description: "[price, amount], best (highest) first" }),
  asks: Schema.Array(Level).annotations({ description: "[price, amount], best (lowest) first" }),
  bestBid: NullableNumber,
  bestAsk: NullableNumber,
  mid: NullableNumber.annotations({ description: "(bestBid + bestAsk) / 2" }),
  spread: NullableNumber.annotations({ description: "bestAsk - bestBid" }),
  spread_bps: NullableNumber.annotations({ description: "spread / mid in basis points (1 bp = 0.01%)" }),
  meta: Meta
})

export const OhlcvOutput = Schema.Struct({
  exchange: Schema.String,
  symbol: Schema.String,
  interval: Schema.String,
  columns: row(
    Schema.Literal("timestamp", "open", "high", "low", "close", "volume"),
    6,
    'Names of the values of each row, always ["timestamp", "open", "high", "low", "close", "volume"]; timestamp is ' +
      "the candle open time in ms"
  ),
  rows: Schema.Array(row(Schema.Number, 6, "[timestamp, open, high, low, close, volume]")).annotations({
    description: "Candles, oldest first"
  }),
  nextSince: NullableNumber.annotations({
    description: "With since: pass as since to read the following candles; null when there are no more"
  }),
  meta: Meta
})

export const TradesOutput = Schema.Struct({
  exchange: Schema.String,
  symbol: Schema.String,
  trades: Schema.Array(
    Schema.Struct({
      trade_id: Schema.NullOr(Schema.String),
      timestamp: Schema.Number,
      price: Schema.Number,
      amount: Schema.Number,
      side: Schema.NullOr(Schema.Literal("buy", "sell")).annotations({ description: "Taker side" })
    })
  ).annotations({ description: "Oldest first" }),
  meta: Meta
})

export const ErrorFields = {
  code: Schema.String,
  message: Schema.String,
  retryable: Schema.Boolean,
  hint: Schema.String
}

const PriceAt = Schema.NullOr(Schema.Struct({ exchange: Schema.String, price: Schema.Number }))

export const ComparePricesOutput = Schema.Struct({
  symbol: Schema.String,
  quotes: Schema.Array(
    Schema.Struct({
      exchange: Schema.String,
      symbol: Schema.String,
      bid: NullableNumber,
      ask: NullableNumber,
      last: Schema.Number,
      timestamp: NullableNumber,
      cached: Schema.Boolean,
      ageMs: Schema.Number
    })
  ),
  failures: Schema.Array(Schema.Struct({ exchange: Schema.String, ...ErrorFields })).annotations({
    description: "Exchanges that could not answer, with the reason; the others are still compared"
  }),
  bestBid: PriceAt.annotations({ description: "Highest bid across the exchanges" }),
  bestAsk: PriceAt.annotations({ description: "Lowest ask across the exchanges" }),
  spread: NullableNumber.annotations({ description: "bestAsk - bestBid; negative when the books cross" }),
  spread_bps: NullableNumber.annotations({ description: "spread relative to the mid of bestBid and bestAsk, in bp" }),
  meta: Meta
})
