import { Option, Schema, SchemaAST } from "effect"

/**
 * The request parameters clients send (REST query strings, MCP tool arguments, stream subscriptions), each defined
 * once. Transports that differ in bounds or defaults build theirs from these pieces with their own numbers.
 */

/**
 * The message and description of a parameter. With `override`, the message also replaces those of inner checks (a
 * JSON argument may be the wrong type altogether); without, it is the message of the outermost check.
 */
export const withMessage = <A, I>(
  schema: Schema.Schema<A, I>,
  message: string,
  options: { readonly description?: string; readonly override?: boolean } = {}
): Schema.Schema<A, I> =>
  schema.annotations({
    message: options.override === true ? () => ({ message, override: true }) : () => message,
    ...(options.description === undefined ? {} : { description: options.description })
  })

/** The message of every bounded integer parameter. */
export const integerMessage = (name: string, min: number, max: number): string =>
  `${name} must be an integer between ${min} and ${max}`

/** The largest timestamp a Date holds, in milliseconds since epoch: the bound of every start and end time. */
export const MAX_TIMESTAMP_MS = 8_640_000_000_000

/** Milliseconds since the epoch, up to the largest Date. */
export const SINCE_BOUNDS = { minimum: 0, maximum: MAX_TIMESTAMP_MS } as const

export const ExchangeParam = withMessage(
  Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9]{1,40}$/)),
  "exchange must be a ccxt exchange id such as binance",
  {
    description: "Exchange id (ccxt id, e.g. binance, kraken, coinbase; coinbasepro is accepted as coinbaseexchange)"
  }
)

const CODE = "[A-Za-z0-9.]{1,20}"
const SYMBOL = `${CODE}([/_-]${CODE})?(:${CODE})?`

export const SymbolParam = withMessage(
  Schema.String.pipe(Schema.pattern(new RegExp(`^${SYMBOL}$`))),
  "symbol must look like BASE/QUOTE, for example BTC/USDT",
  { description: "Unified symbol BASE/QUOTE, e.g. BTC/USDT (BTC-USDT and lower case are accepted)" }
)

export const SymbolsParam = withMessage(
  Schema.String.pipe(Schema.pattern(new RegExp(`^${SYMBOL}(,${SYMBOL}){0,49}$`))),
  "symbols must be a comma-separated list of 1 to 50 symbols such as BTC/USDT,ETH/USDT",
  { description: "Comma-separated unified symbols (at most 50)" }
)

export const ConvertParam = withMessage(
  Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9]{2,10}$/)),
  "convert must be a currency code such as USD",
  {
    description:
      "Quote currency of answers from the CoinMarketCap fallback (default: the symbol's quote currency, USD for USD stablecoins such as USDT); exchange answers are in the symbol's quote currency"
  }
)

export const IntervalParam = withMessage(
  Schema.String.pipe(Schema.pattern(/^[0-9]{1,3}[smhdwMy]$/)),
  "interval must look like 1m, 5m, 1h, 1d",
  {
    description:
      "Candle interval, e.g. 1m, 5m, 15m, 1h, 4h, 1d (the exchange's supported set is listed by /v1/exchanges)"
  }
)

export const FilterParam = (name: string, description: string) =>
  withMessage(
    Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9./:_-]{1,40}$/)),
    `${name} must be 1 to 40 letters, digits or ./:_-`,
    {
      description
    }
  )

/** A fraction of the price (0.002 = 0.2%) a ticker must move before it is sent again. */
export const ThresholdParam = withMessage(
  Schema.Number.pipe(Schema.finite(), Schema.between(0, 1)),
  "threshold must be a number between 0 and 1 (a fraction: 0.002 = 0.2%)",
  { override: true }
)

/** Order book levels per side, up to the deepest book the transport keeps. */
export const depthParam = (max: number) =>
  withMessage(Schema.Number.pipe(Schema.int(), Schema.between(1, max)), integerMessage("depth", 1, max), {
    override: true
  })

// ---- query strings: every value arrives as a string ----

const boundedInt = (min: number, max: number, message: string, description: string) =>
  withMessage(
    Schema.NumberFromString.annotations({ message: () => message }).pipe(Schema.int(), Schema.between(min, max)),
    message,
    { description }
  )

export const intParam = (name: string, min: number, max: number, description: string) =>
  boundedInt(min, max, integerMessage(name, min, max), description)

export const SinceParam = boundedInt(
  SINCE_BOUNDS.minimum,
  SINCE_BOUNDS.maximum,
  "since must be a timestamp in milliseconds since epoch",
  "Start time, milliseconds since epoch; without it the latest candles are returned"
)

/**
 * Integer query parameters travel as strings, so the generated schema would say "string"; the spec documents the
 * integer they must be, with its bounds (and default), and the description the parameter has at this point.
 */
export const documentedInteger = <A, I>(
  schema: Schema.Schema<A, I>,
  bounds: { readonly minimum: number; readonly maximum: number; readonly default?: number }
) =>
  schema.annotations({
    jsonSchema: {
      type: "integer",
      ...bounds,
      ...Option.match(SchemaAST.getDescriptionAnnotation(schema.ast), {
        onNone: () => ({}),
        onSome: (description) => ({ description })
      })
    }
  })

/** A time query parameter, documented as the integer it is; `description` replaces SinceParam's. */
export const timestampParam = (description?: string) =>
  documentedInteger(description === undefined ? SinceParam : SinceParam.annotations({ description }), SINCE_BOUNDS)

/** An optional bounded integer query parameter with its default. */
export const optionalIntParam = (
  name: string,
  minimum: number,
  maximum: number,
  defaultValue: number,
  description: string
) =>
  Schema.optionalWith(
    documentedInteger(intParam(name, minimum, maximum, description), { minimum, maximum, default: defaultValue }),
    { default: () => defaultValue }
  )
