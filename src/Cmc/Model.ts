import { Schema } from "effect"

const NullableNumber = Schema.NullOr(Schema.Number)
const OptionalNullableNumber = Schema.optional(NullableNumber)

/** `status` of every CMC v1 answer, success or error. */
export const CmcStatus = Schema.Struct({
  timestamp: Schema.String,
  error_code: Schema.Number,
  error_message: Schema.optional(Schema.NullOr(Schema.String)),
  elapsed: OptionalNullableNumber,
  credit_count: OptionalNullableNumber,
  notice: Schema.optional(Schema.NullOr(Schema.String))
})

/**
 * The success envelope of `/v1/cryptocurrency/quotes/latest`. Coins stay `unknown` here so each one is decoded
 * on its own (a bad coin names itself in the error) and `raw` can keep the object exactly as received.
 */
export const CmcQuotesEnvelope = Schema.Struct({
  status: CmcStatus,
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
export type CmcQuotesEnvelope = typeof CmcQuotesEnvelope.Type

/** What an error answer carries; every field optional because proxies and gateways answer too. */
export const CmcErrorEnvelope = Schema.Struct({
  status: Schema.Struct({
    error_code: Schema.optional(Schema.Union(Schema.Number, Schema.NumberFromString)),
    error_message: Schema.optional(Schema.NullOr(Schema.String))
  })
})

/** `data.<SYMBOL>.quote.<CONVERT>` */
export const CmcConvertQuote = Schema.Struct({
  price: NullableNumber,
  volume_24h: NullableNumber,
  volume_change_24h: OptionalNullableNumber,
  percent_change_1h: NullableNumber,
  percent_change_24h: NullableNumber,
  percent_change_7d: OptionalNullableNumber,
  market_cap: NullableNumber,
  market_cap_dominance: OptionalNullableNumber,
  fully_diluted_market_cap: OptionalNullableNumber,
  last_updated: Schema.Date
})
export type CmcConvertQuote = typeof CmcConvertQuote.Type

/** `data.<SYMBOL>` */
export const CmcCoin = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  symbol: Schema.String,
  slug: Schema.String,
  num_market_pairs: OptionalNullableNumber,
  date_added: Schema.optional(Schema.NullOr(Schema.String)),
  tags: Schema.optional(Schema.NullOr(Schema.Array(Schema.Unknown))),
  max_supply: OptionalNullableNumber,
  circulating_supply: OptionalNullableNumber,
  total_supply: OptionalNullableNumber,
  is_active: OptionalNullableNumber,
  cmc_rank: OptionalNullableNumber,
  is_fiat: OptionalNullableNumber,
  last_updated: Schema.optional(Schema.NullOr(Schema.String)),
  quote: Schema.Record({ key: Schema.String, value: Schema.Unknown })
})
export type CmcCoin = typeof CmcCoin.Type

/** One coin priced in one currency, as the rest of the service sees it. */
export class CmcQuote extends Schema.Class<CmcQuote>("CmcQuote")({
  symbol: Schema.String,
  name: Schema.String,
  convert: Schema.String,
  price: NullableNumber,
  volume24h: NullableNumber,
  percentChange1h: NullableNumber,
  percentChange24h: NullableNumber,
  marketCap: NullableNumber,
  lastUpdated: Schema.Number.annotations({ description: "When CMC last updated this quote, ms since epoch" }),
  raw: Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
    description: "The coin object exactly as CoinMarketCap sent it"
  })
}) {}
