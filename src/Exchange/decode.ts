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
  symbol: OptionalString,
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

/** A decoded payload that contradicts itself or the request (the second half of the integrity gate). */
const inconsistent = (what: string, exchange: string, problem: string) =>
  Either.left(
    new UpstreamBadResponse({ message: `inconsistent ${what} from ${exchange}: ${problem}`, source: exchange })
  )

export const decodeTicker = (
  exchange: string,
  symbol: string,
  raw: unknown
): Either.Either<Ticker, UpstreamBadResponse> =>
  requireObject("ticker", exchange, raw).pipe(
    Either.flatMap((obj) => Either.mapLeft(Schema.decodeUnknownEither(CcxtTicker)(obj), malformed("ticker", exchange))),
    Either.flatMap(({ info, symbol: answered, ...fields }) =>
      answered !== symbol
        ? inconsistent("ticker", exchange, `asked for ${symbol}, got ${answered}`)
        : fields.last <= 0
          ? inconsistent("ticker", exchange, `last price ${fields.last} is not positive`)
          : Either.right(new Ticker({ ...fields, exchange, symbol, source: "exchange", raw: info }))
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
      const entry = Object.hasOwn(dict, symbol)
        ? dict[symbol]
        : Object.values(dict).find((t) => Predicate.isRecord(t) && t["symbol"] === symbol)
      if (entry === undefined) {
        return yield* Either.left(
          new UpstreamBadResponse({ message: `${exchange} returned no ticker for ${symbol}`, source: exchange })
        )
      }
      out.push(yield* decodeTicker(exchange, symbol, entry))
    }
    return out
  })

/** Why a candle is impossible, or undefined: low ≤ open, close ≤ high, volume ≥ 0. */
const candleProblem = (open: number, high: number, low: number, close: number, volume: number): string | undefined =>
  low > Math.min(open, close) || high < Math.max(open, close)
    ? `low ${low} / high ${high} do not enclose open ${open} and close ${close}`
    : volume < 0
      ? `negative volume ${volume}`
      : undefined

export const decodeCandles = (exchange: string, raw: unknown): Either.Either<Array<Candle>, UpstreamBadResponse> =>
  Schema.decodeUnknownEither(CcxtOhlcv)(raw).pipe(
    Either.mapLeft(malformed("candles", exchange)),
    Either.flatMap((rows) => {
      const candles: Array<Candle> = []
      for (const [timestamp, open, high, low, close, volume] of rows) {
        const problem = candleProblem(open, high, low, close, volume)
        if (problem !== undefined) {
          return inconsistent("candles", exchange, `candle at ${new Date(timestamp).toISOString()}: ${problem}`)
        }
        candles.push(new Candle({ timestamp, open, high, low, close, volume }))
      }
      return Either.right(candles)
    })
  )

type Level = readonly [number, number, ...Array<unknown>]

/** Why a book side is impossible, or undefined: best price first, no price twice, positive prices and sizes. */
const sideProblem = (name: string, rows: ReadonlyArray<Level>, descending: boolean): string | undefined => {
  for (let i = 0; i < rows.length; i++) {
    const [price, amount] = rows[i] ?? [0, 0]
    if (!(price > 0) || !(amount > 0)) return `${name}[${i}] has price ${price} and size ${amount}`
    const previous = rows[i - 1]?.[0]
    if (previous !== undefined && (descending ? price >= previous : price <= previous)) {
      return `${name} are not sorted best first (${previous} then ${price})`
    }
  }
  return undefined
}

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
    Either.flatMap((book) => {
      const problem = sideProblem("bids", book.bids, true) ?? sideProblem("asks", book.asks, false)
      if (problem !== undefined) return inconsistent("order book", exchange, problem)
      const bestBid = book.bids[0]?.[0]
      const bestAsk = book.asks[0]?.[0]
      if (bestBid !== undefined && bestAsk !== undefined && bestBid >= bestAsk) {
        return inconsistent("order book", exchange, `crossed: best bid ${bestBid} >= best ask ${bestAsk}`)
      }
      const n = Math.max(0, Math.floor(limit))
      const levels = (rows: ReadonlyArray<Level>) =>
        rows.slice(0, n).map(([price, amount]) => new BookLevel({ price, amount }))
      return Either.right(
        new OrderBook({ exchange, symbol, bids: levels(book.bids), asks: levels(book.asks), timestamp: book.timestamp })
      )
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
    Either.flatMap((rows) => {
      for (const t of rows) {
        if (t.symbol !== null && t.symbol !== symbol) {
          return inconsistent("trades", exchange, `asked for ${symbol}, got a ${t.symbol} trade`)
        }
        if (!(t.price > 0) || !(t.amount > 0)) {
          return inconsistent("trades", exchange, `trade ${t.id ?? "?"} has price ${t.price} and amount ${t.amount}`)
        }
      }
      const trades = rows
        .map(
          (t) => new Trade({ trade_id: t.id, timestamp: t.timestamp, price: t.price, amount: t.amount, side: t.side })
        )
        .sort((a, b) => a.timestamp - b.timestamp)
      const n = Math.max(0, Math.floor(limit))
      return Either.right(new Trades({ exchange, symbol, trades: n === 0 ? [] : trades.slice(-n) }))
    })
  )

/**
 * Every well-formed market of a ccxt markets dictionary, sorted by symbol; malformed entries are skipped. An exchange
 * lists markets, so none at all is a broken answer, not a fact to serve.
 */
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
    ),
    Either.filterOrLeft(
      (list) => list.length > 0,
      () => new UpstreamBadResponse({ message: `${exchange} listed no markets`, source: exchange })
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
