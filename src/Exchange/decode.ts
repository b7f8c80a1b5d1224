import { Either, Option, ParseResult, Predicate, Schema } from "effect"
import { UpstreamBadResponse } from "../Domain/Errors.js"
import { BookLevel, Candle, ExchangeInfo, MarketInfo, OrderBook, Ticker, Trade, Trades } from "../Domain/Market.js"

/** Any value, read as a finite number or null: optional statistics must not fail a whole payload. */
const LooseNumber = Schema.transform(Schema.Unknown, Schema.NullOr(Schema.Number), {
  strict: true,
  decode: (u) => (typeof u === "number" && Number.isFinite(u) ? u : null),
  encode: (n) => n
})
const OptionalNumber = Schema.optionalWith(LooseNumber, { default: () => null })

const LooseString = Schema.transform(Schema.Unknown, Schema.NullOr(Schema.String), {
  strict: true,
  decode: (u) => (typeof u === "string" ? u : typeof u === "number" && Number.isFinite(u) ? String(u) : null),
  encode: (s) => s
})
const OptionalString = Schema.optionalWith(LooseString, { default: () => null })

const Side = Schema.transform(Schema.Unknown, Schema.NullOr(Schema.Literal("buy", "sell")), {
  strict: true,
  decode: (u) => (u === "buy" || u === "sell" ? u : null),
  encode: (s) => s
})

const Info = Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({ identifier: "object" })

export const CcxtTicker = Schema.Struct({
  symbol: Schema.String,
  last: Schema.Finite,
  info: Info,
  timestamp: OptionalNumber,
  datetime: OptionalString,
  bid: OptionalNumber,
  ask: OptionalNumber,
  high: OptionalNumber,
  low: OptionalNumber,
  open: OptionalNumber,
  close: OptionalNumber,
  baseVolume: OptionalNumber,
  quoteVolume: OptionalNumber,
  change: OptionalNumber,
  percentage: OptionalNumber,
  vwap: OptionalNumber
})

export const CcxtTickers = Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
  identifier: "ticker dictionary"
})

/** `[timestamp, open, high, low, close, volume]`; ccxt may append extras, which are ignored. */
export const CcxtOhlcvRow = Schema.Tuple(
  [Schema.Finite, Schema.Finite, Schema.Finite, Schema.Finite, Schema.Finite, Schema.Finite],
  Schema.Unknown
)
export const CcxtOhlcv = Schema.Array(CcxtOhlcvRow).annotations({ identifier: "list of OHLCV rows" })

const Level = Schema.Tuple([Schema.Finite, Schema.Finite], Schema.Unknown)
export const CcxtOrderBook = Schema.Struct({
  bids: Schema.Array(Level),
  asks: Schema.Array(Level),
  timestamp: OptionalNumber
})

export const CcxtTrade = Schema.Struct({
  id: OptionalString,
  timestamp: Schema.Finite,
  price: Schema.Finite,
  amount: Schema.Finite,
  side: Schema.optionalWith(Side, { default: () => null })
}).annotations({ identifier: "trade object" })
export const CcxtTrades = Schema.Array(CcxtTrade).annotations({ identifier: "list of trades" })

export const CcxtMarket = Schema.Struct({
  symbol: Schema.String,
  id: Schema.String,
  base: Schema.String,
  quote: Schema.String,
  type: Schema.optionalWith(Schema.String, { default: () => "spot", nullable: true }),
  active: Schema.optionalWith(Schema.NullOr(Schema.Boolean), { default: () => null, nullable: true }),
  precision: Schema.optionalWith(Schema.Struct({ price: OptionalNumber, amount: OptionalNumber }), {
    default: () => ({ price: null, amount: null }),
    nullable: true
  })
})
export const CcxtMarkets = Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
  identifier: "market dictionary"
})

const Features = Schema.Struct({
  spot: Schema.optional(
    Schema.NullOr(
      Schema.Struct({
        fetchOHLCV: Schema.optional(
          Schema.NullOr(Schema.Struct({ limit: Schema.optional(Schema.NullOr(Schema.Number)) }))
        )
      })
    )
  )
})

/** First problem of a parse failure as `path: message`, short enough for an API message. */
export const describeParseError = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "unexpected shape"
  const path = issue.path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("")
  const text = path === "" ? issue.message : `${path}: ${issue.message}`
  // the message echoes upstream values, which may be whole HTML pages
  return text.length > 160 ? `${text.slice(0, 160)}…` : text
}

const malformed = (what: string, exchange: string) => (error: ParseResult.ParseError) =>
  new UpstreamBadResponse({
    message: `malformed ${what} from ${exchange}: ${describeParseError(error)}`,
    source: exchange
  })

/** Struct schemas with transformed fields report a non-object as "Struct (Encoded side)"; say it plainly instead. */
const requireObject = (what: string, exchange: string, raw: unknown): Either.Either<unknown, UpstreamBadResponse> =>
  Predicate.isRecord(raw)
    ? Either.right(raw)
    : Either.left(
        new UpstreamBadResponse({
          message: `malformed ${what} from ${exchange}: expected an object, got ${raw === null ? "null" : Array.isArray(raw) ? "an array" : typeof raw}`,
          source: exchange
        })
      )

export const decodeTicker = (
  exchange: string,
  symbol: string,
  raw: unknown
): Either.Either<Ticker, UpstreamBadResponse> =>
  requireObject("ticker", exchange, raw).pipe(
    Either.flatMap((obj) => Either.mapLeft(Schema.decodeUnknownEither(CcxtTicker)(obj), malformed("ticker", exchange))),
    Either.map(
      ({ info, symbol: _symbol, ...fields }) =>
        new Ticker({ ...fields, exchange, symbol, source: "exchange", raw: info })
    )
  )

/** Tickers for `symbols`, in that order, from a ccxt `fetchTickers` dictionary. */
export const decodeTickers = (
  exchange: string,
  symbols: ReadonlyArray<string>,
  raw: unknown
): Either.Either<ReadonlyArray<Ticker>, UpstreamBadResponse> =>
  Either.gen(function* () {
    const dict = yield* Schema.decodeUnknownEither(CcxtTickers)(raw).pipe(
      Either.mapLeft(malformed("tickers", exchange))
    )
    const out: Array<Ticker> = []
    for (const symbol of symbols) {
      const entry =
        dict[symbol] ??
        Object.values(dict).find((t) => typeof t === "object" && t !== null && "symbol" in t && t.symbol === symbol)
      if (entry === undefined) {
        return yield* Either.left(
          new UpstreamBadResponse({ message: `${exchange} returned no ticker for ${symbol}`, source: exchange })
        )
      }
      out.push(yield* decodeTicker(exchange, symbol, entry))
    }
    return out
  })

export const decodeCandles = (exchange: string, raw: unknown): Either.Either<Array<Candle>, UpstreamBadResponse> =>
  Schema.decodeUnknownEither(CcxtOhlcv)(raw).pipe(
    Either.mapLeft(malformed("candles", exchange)),
    Either.map((rows) =>
      rows.map(
        ([timestamp, open, high, low, close, volume]) => new Candle({ timestamp, open, high, low, close, volume })
      )
    )
  )

export const decodeOrderBook = (
  exchange: string,
  symbol: string,
  limit: number,
  raw: unknown
): Either.Either<OrderBook, UpstreamBadResponse> =>
  requireObject("order book", exchange, raw).pipe(
    Either.flatMap((obj) =>
      Either.mapLeft(Schema.decodeUnknownEither(CcxtOrderBook)(obj), malformed("order book", exchange))
    ),
    Either.map((book) => {
      const levels = (rows: ReadonlyArray<readonly [number, number, ...Array<unknown>]>) =>
        rows.map(([price, amount]) => new BookLevel({ price, amount }))
      const n = Math.max(0, Math.floor(limit))
      return new OrderBook({
        exchange,
        symbol,
        bids: levels(book.bids)
          .sort((a, b) => b.price - a.price)
          .slice(0, n),
        asks: levels(book.asks)
          .sort((a, b) => a.price - b.price)
          .slice(0, n),
        timestamp: book.timestamp
      })
    })
  )

/** The last `limit` trades, oldest first. */
export const decodeTrades = (
  exchange: string,
  symbol: string,
  limit: number,
  raw: unknown
): Either.Either<Trades, UpstreamBadResponse> =>
  Schema.decodeUnknownEither(CcxtTrades)(raw).pipe(
    Either.mapLeft(malformed("trades", exchange)),
    Either.map((rows) => {
      const trades = rows
        .map(
          (t) => new Trade({ trade_id: t.id, timestamp: t.timestamp, price: t.price, amount: t.amount, side: t.side })
        )
        .sort((a, b) => a.timestamp - b.timestamp)
      const n = Math.max(0, Math.floor(limit))
      return new Trades({ exchange, symbol, trades: n === 0 ? [] : trades.slice(-n) })
    })
  )

/** Every well-formed market of a ccxt markets dictionary, sorted by symbol; malformed entries are skipped. */
export const decodeMarkets = (
  exchange: string,
  raw: unknown
): Either.Either<ReadonlyArray<MarketInfo>, UpstreamBadResponse> =>
  Schema.decodeUnknownEither(CcxtMarkets)(raw).pipe(
    Either.mapLeft(malformed("markets", exchange)),
    Either.map((dict) =>
      Object.values(dict)
        .flatMap((entry) =>
          Option.match(Schema.decodeUnknownOption(CcxtMarket)(entry), {
            onNone: () => [],
            onSome: (m) => [new MarketInfo(m)]
          })
        )
        .sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0))
    )
  )

export const DEFAULT_MAX_CANDLES_PER_REQUEST = 500

/** `features.spot.fetchOHLCV.limit` of a ccxt instance, the most candles one request returns. */
export const maxCandlesPerRequest = (features: unknown): number => {
  const limit = Schema.decodeUnknownOption(Features)(features).pipe(
    Option.flatMap((f) => Option.fromNullable(f.spot?.fetchOHLCV?.limit)),
    Option.filter((n) => Number.isInteger(n) && n > 0)
  )
  return Option.getOrElse(limit, () => DEFAULT_MAX_CANDLES_PER_REQUEST)
}

/** A `has` flag counts when ccxt implements the method natively or emulates it. */
export const hasCapability = (has: Readonly<Record<string, unknown>>, method: string): boolean =>
  has[method] === true || has[method] === "emulated"

export interface DescribableClient {
  readonly id: string
  readonly name?: string | undefined
  readonly has: Readonly<Record<string, unknown>>
  readonly timeframes?: Readonly<Record<string, unknown>> | undefined
  readonly features?: unknown
}

export const describeClient = (exchange: string, client: DescribableClient): ExchangeInfo =>
  new ExchangeInfo({
    id: exchange,
    name: typeof client.name === "string" && client.name !== "" ? client.name : exchange,
    capabilities: {
      ticker: hasCapability(client.has, "fetchTicker"),
      tickers: hasCapability(client.has, "fetchTickers"),
      ohlcv: hasCapability(client.has, "fetchOHLCV"),
      orderbook: hasCapability(client.has, "fetchOrderBook"),
      trades: hasCapability(client.has, "fetchTrades"),
      websocket: hasCapability(client.has, "watchTicker")
    },
    intervals: Object.keys(client.timeframes ?? {}),
    maxCandlesPerRequest: maxCandlesPerRequest(client.features)
  })
