import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { CmcQuote } from "../../src/Cmc/Model.js"
import { fallbackConvert, splitSymbol, tickerFromCmc } from "../../src/Cmc/Ticker.js"
import { Ticker } from "../../src/Domain/Market.js"

const quote = (price: number | null) =>
  new CmcQuote({
    symbol: "BTC",
    name: "Bitcoin",
    convert: "EUR",
    price,
    volume24h: 21_000_000_000,
    percentChange1h: 0.1,
    percentChange24h: -1.25,
    marketCap: 1_100_000_000_000,
    lastUpdated: 1714566840000,
    raw: { id: 1, symbol: "BTC" }
  })

describe("CoinMarketCap → ticker mapping", () => {
  it("splits the symbol spellings clients send into an upper-case base and quote", () => {
    expect(splitSymbol("BTC/USDT")).toEqual(Option.some({ base: "BTC", quote: "USDT" }))
    expect(splitSymbol(" btc-usdt ")).toEqual(Option.some({ base: "BTC", quote: "USDT" }))
    expect(splitSymbol("eth_eur")).toEqual(Option.some({ base: "ETH", quote: "EUR" }))
    expect(splitSymbol("BTC/USDT:USDT")).toEqual(Option.some({ base: "BTC", quote: "USDT" }))
    expect(splitSymbol("BTC")).toEqual(Option.none())
    expect(splitSymbol("BTC/USDT/EUR")).toEqual(Option.none())
  })

  it("prices in convert when given, else in the quote, USD for a USD stablecoin", () => {
    expect(fallbackConvert({ base: "BTC", quote: "USDT" }, " eur ")).toBe("EUR")
    expect(fallbackConvert({ base: "BTC", quote: "USDT" }, undefined)).toBe("USD")
    expect(fallbackConvert({ base: "BTC", quote: "FDUSD" }, "")).toBe("USD")
    expect(fallbackConvert({ base: "ETH", quote: "BTC" }, undefined)).toBe("BTC")
  })

  it("a quote becomes a ticker of the pair priced, with only the fields CMC has", () => {
    expect(tickerFromCmc(quote(60512.34))).toEqual(
      Option.some(
        new Ticker({
          exchange: "coinmarketcap",
          symbol: "BTC/EUR",
          bid: null,
          ask: null,
          last: 60512.34,
          timestamp: 1714566840000,
          datetime: "2024-05-01T12:34:00.000Z",
          high: null,
          low: null,
          open: null,
          close: 60512.34,
          baseVolume: null,
          quoteVolume: 21_000_000_000,
          change: null,
          percentage: -1.25,
          vwap: null,
          source: "coinmarketcap",
          raw: { id: 1, symbol: "BTC" }
        })
      )
    )
  })

  it("no price, no ticker", () => {
    expect(tickerFromCmc(quote(null))).toEqual(Option.none())
  })
})
