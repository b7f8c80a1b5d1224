import { Schema } from "effect"

const withMessage = <A, I>(schema: Schema.Schema<A, I>, message: string, description: string): Schema.Schema<A, I> =>
  schema.annotations({ message: () => message, description })

export const ExchangeParam = withMessage(
  Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9]{1,40}$/)),
  "exchange must be a ccxt exchange id such as binance",
  "Exchange id (ccxt id, e.g. binance, kraken, coinbase; coinbasepro is accepted as coinbaseexchange)"
)

export const SymbolParam = withMessage(
  Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9.]{1,20}([/_-][A-Za-z0-9.]{1,20})?(:[A-Za-z0-9.]{1,20})?$/)),
  "symbol must look like BASE/QUOTE, for example BTC/USDT",
  "Unified symbol BASE/QUOTE, e.g. BTC/USDT (BTC-USDT and lower case are accepted)"
)

export const SymbolsParam = withMessage(
  Schema.String.pipe(
    Schema.pattern(
      /^[A-Za-z0-9.]{1,20}([/_-][A-Za-z0-9.]{1,20})?(:[A-Za-z0-9.]{1,20})?(,[A-Za-z0-9.]{1,20}([/_-][A-Za-z0-9.]{1,20})?(:[A-Za-z0-9.]{1,20})?){0,49}$/
    )
  ),
  "symbols must be a comma-separated list of 1 to 50 symbols such as BTC/USDT,ETH/USDT",
  "Comma-separated unified symbols (at most 50)"
)

export const ConvertParam = withMessage(
  Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9]{2,10}$/)),
  "convert must be a currency code such as USD",
  "Quote currency of answers from the CoinMarketCap fallback (default: the symbol's quote currency, USD for USD stablecoins such as USDT); exchange answers are in the symbol's quote currency"
)

export const IntervalParam = withMessage(
  Schema.String.pipe(Schema.pattern(/^[0-9]{1,3}[smhdwMy]$/)),
  "interval must look like 1m, 5m, 1h, 1d",
  "Candle interval, e.g. 1m, 5m, 15m, 1h, 4h, 1d (the exchange's supported set is listed by /v1/exchanges)"
)

const boundedInt = (min: number, max: number, message: string, description: string) =>
  withMessage(
    Schema.NumberFromString.annotations({ message: () => message }).pipe(Schema.int(), Schema.between(min, max)),
    message,
    description
  )

export const intParam = (name: string, min: number, max: number, description: string) =>
  boundedInt(min, max, `${name} must be an integer between ${min} and ${max}`, description)

export const SinceParam = boundedInt(
  0,
  8_640_000_000_000,
  "since must be a timestamp in milliseconds since epoch",
  "Start time, milliseconds since epoch; without it the latest candles are returned"
)

export const FilterParam = (name: string, description: string) =>
  withMessage(
    Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9./:_-]{1,40}$/)),
    `${name} must be 1 to 40 letters, digits or ./:_-`,
    description
  )
