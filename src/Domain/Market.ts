import { Schema } from "effect"

const Num = Schema.Number
const NullableNum = Schema.NullOr(Schema.Number)

export const TickerFields = {
  exchange: Schema.String,
  symbol: Schema.String,
  bid: NullableNum,
  ask: NullableNum,
  last: Num,
  timestamp: NullableNum.annotations({
    description: "Milliseconds since epoch; null when the exchange omits it (kraken)"
  }),
  datetime: Schema.NullOr(Schema.String),
  high: NullableNum,
  low: NullableNum,
  open: NullableNum,
  close: NullableNum,
  baseVolume: NullableNum,
  quoteVolume: NullableNum,
  change: NullableNum,
  percentage: NullableNum,
  vwap: NullableNum
}

export class Ticker extends Schema.Class<Ticker>("Ticker")({
  ...TickerFields,
  source: Schema.Literal("exchange", "coinmarketcap"),
  raw: Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
    description: "The upstream's own payload, unmodified"
  })
}) {}

export class Candle extends Schema.Class<Candle>("Candle")({
  timestamp: Num.annotations({ description: "Candle open time, milliseconds since epoch" }),
  open: Num,
  high: Num,
  low: Num,
  close: Num,
  volume: Num
}) {}

export class Ohlcv extends Schema.Class<Ohlcv>("Ohlcv")({
  exchange: Schema.String,
  symbol: Schema.String,
  interval: Schema.String,
  candles: Schema.Array(Candle)
}) {}

export class BookLevel extends Schema.Class<BookLevel>("BookLevel")({ price: Num, amount: Num }) {}

export class OrderBook extends Schema.Class<OrderBook>("OrderBook")({
  exchange: Schema.String,
  symbol: Schema.String,
  bids: Schema.Array(BookLevel).annotations({ description: "Best (highest) price first" }),
  asks: Schema.Array(BookLevel).annotations({ description: "Best (lowest) price first" }),
  timestamp: NullableNum
}) {}

export class Trade extends Schema.Class<Trade>("Trade")({
  trade_id: Schema.NullOr(Schema.String),
  timestamp: Num,
  price: Num,
  amount: Num,
  side: Schema.NullOr(Schema.Literal("buy", "sell")).annotations({ description: "Taker side" })
}) {}

export class Trades extends Schema.Class<Trades>("Trades")({
  exchange: Schema.String,
  symbol: Schema.String,
  trades: Schema.Array(Trade)
}) {}

export class Tickers extends Schema.Class<Tickers>("Tickers")({
  exchange: Schema.String,
  tickers: Schema.Array(Ticker)
}) {}

export class MarketInfo extends Schema.Class<MarketInfo>("MarketInfo")({
  symbol: Schema.String,
  id: Schema.String,
  base: Schema.String,
  quote: Schema.String,
  type: Schema.String,
  active: Schema.NullOr(Schema.Boolean),
  precision: Schema.Struct({ price: NullableNum, amount: NullableNum })
}) {}

export class MarketList extends Schema.Class<MarketList>("MarketList")({
  exchange: Schema.String,
  total: Num.annotations({ description: "Number of markets matching the filter" }),
  offset: Num,
  limit: Num,
  markets: Schema.Array(MarketInfo)
}) {}

export const Capabilities = Schema.Struct({
  ticker: Schema.Boolean,
  tickers: Schema.Boolean,
  ohlcv: Schema.Boolean,
  orderbook: Schema.Boolean,
  trades: Schema.Boolean,
  websocket: Schema.Boolean
})

export class ExchangeInfo extends Schema.Class<ExchangeInfo>("ExchangeInfo")({
  id: Schema.String,
  name: Schema.String,
  capabilities: Capabilities,
  intervals: Schema.Array(Schema.String),
  maxCandlesPerRequest: Num
}) {}

export class ExchangeList extends Schema.Class<ExchangeList>("ExchangeList")({
  exchanges: Schema.Array(ExchangeInfo)
}) {}
