import { Option } from "effect"
import { Ticker } from "../Domain/Market.js"
import type { CmcQuote } from "./Model.js"

/** USD-pegged quote currencies: without `convert`, a fallback for BTC/USDT is priced in USD. */
export const USD_STABLECOINS: ReadonlySet<string> = new Set(["USDT", "USDC", "BUSD", "FDUSD", "TUSD", "DAI", "USDP"])

export interface Pair {
  readonly base: string
  readonly quote: string
}

/** Base and quote of a symbol as clients write it: BTC/USDT, btc-usdt, BTC_USDT, BTC/USDT:USDT. */
export const splitSymbol = (symbol: string): Option.Option<Pair> => {
  const match = /^([A-Za-z0-9.]{1,20})[/_-]([A-Za-z0-9.]{1,20})(:[A-Za-z0-9.]{1,20})?$/.exec(symbol.trim())
  const base = match?.[1]
  const quote = match?.[2]
  return base === undefined || quote === undefined
    ? Option.none()
    : Option.some({ base: base.toUpperCase(), quote: quote.toUpperCase() })
}

/** The currency CoinMarketCap prices the base in: `convert` when given, else the quote (USD for USD stablecoins). */
export const fallbackConvert = (pair: Pair, convert: string | undefined): string => {
  const asked = convert?.trim().toUpperCase()
  if (asked !== undefined && asked.length > 0) return asked
  return USD_STABLECOINS.has(pair.quote) ? "USD" : pair.quote
}

/**
 * A ticker from a CoinMarketCap quote. CMC aggregates many venues, so there is no bid, ask, 24 h range or base volume;
 * `exchange` says where the number comes from, `symbol` is the pair actually priced (BASE/CONVERT), and `raw` is the
 * coin object as CMC sent it. None when CMC has no price.
 */
export const tickerFromCmc = (quote: CmcQuote): Option.Option<Ticker> => {
  if (quote.price === null) return Option.none()
  const last = quote.price
  return Option.some(
    new Ticker({
      exchange: "coinmarketcap",
      symbol: `${quote.symbol}/${quote.convert}`,
      bid: null,
      ask: null,
      last,
      timestamp: quote.lastUpdated,
      datetime: new Date(quote.lastUpdated).toISOString(),
      high: null,
      low: null,
      open: null,
      close: last,
      baseVolume: null,
      quoteVolume: quote.volume24h,
      change: null,
      percentage: quote.percentChange24h,
      vwap: null,
      source: "coinmarketcap",
      raw: quote.raw
    })
  )
}
