import ccxt from "ccxt"
import { describe, expect, it } from "vitest"
import {
  canonicalExchangeId,
  editDistance,
  isPlausibleExchangeId,
  lookupSymbol,
  makeSymbolIndex,
  normalizeSymbol,
  suggestExchanges,
  suggestSymbols,
  unknownExchangeError
} from "../../src/Exchange/symbols.js"

const ENABLED = ["binance", "kraken", "coinbase"]
const KNOWN = ccxt.exchanges

describe("exchange ids", () => {
  it("measures edit distance with transpositions", () => {
    expect(editDistance("binanse", "binance")).toBe(1)
    expect(editDistance("kraekn", "kraken")).toBe(1)
    expect(editDistance("", "okx")).toBe(3)
    expect(editDistance("okx", "okx")).toBe(0)
  })

  it("canonicalizes case, whitespace and the coinbasepro alias", () => {
    expect(canonicalExchangeId("  Binance ")).toBe("binance")
    expect(canonicalExchangeId("CoinbasePro")).toBe("coinbaseexchange")
    expect(isPlausibleExchangeId("binance")).toBe(true)
    expect(isPlausibleExchangeId("bin ance!")).toBe(false)
  })

  it("never resolves a name every object inherits (constructor, __proto__, toString, hasOwnProperty)", () => {
    for (const name of ["constructor", "Constructor", "__proto__", "toString", "hasOwnProperty"]) {
      expect(canonicalExchangeId(name)).toBe(name.toLowerCase())
      expect(unknownExchangeError(name, ENABLED, KNOWN).message).toBe(
        `Unknown exchange "${name}". Enabled exchanges: ${ENABLED.join(", ")}`
      )
    }
  })

  it("suggests the closest ids, enabled ones first", () => {
    expect(suggestExchanges("binanse", ENABLED, KNOWN)).toEqual(["binance"])
    expect(suggestExchanges("krakn", ENABLED, KNOWN)).toEqual(["kraken"])
    expect(suggestExchanges("coinbse", ENABLED, KNOWN)).toEqual(["coinbase", "coinone"])
    // without the ccxt list only the enabled ids are candidates
    expect(suggestExchanges("binanse", ENABLED, [])).toEqual(["binance"])
    expect(suggestExchanges("zzzzzz", ENABLED, KNOWN)).toEqual([])
  })

  it("explains an unknown id with suggestions and the enabled list", () => {
    const error = unknownExchangeError("binanse", ENABLED, KNOWN)
    expect(error).toMatchObject({
      _tag: "UnknownExchange",
      code: "unknown_exchange",
      exchange: "binanse",
      suggestions: ["binance"],
      enabled: ENABLED,
      message: 'Unknown exchange "binanse". Did you mean "binance"? Enabled exchanges: binance, kraken, coinbase'
    })
  })

  it("points coinbasepro at coinbaseexchange", () => {
    const error = unknownExchangeError("coinbasepro", ENABLED, KNOWN)
    expect(error.suggestions).toEqual(["coinbaseexchange", "coinbase"])
    expect(error.message).toBe(
      'Exchange "coinbasepro" is now called "coinbaseexchange", which is not enabled on this server. ' +
        "Add coinbaseexchange to ENABLED_EXCHANGES to use it. Enabled exchanges: binance, kraken, coinbase"
    )
  })

  it("says how to enable a real but disabled ccxt id", () => {
    const error = unknownExchangeError("OKX", ENABLED, KNOWN)
    expect(error.exchange).toBe("OKX")
    expect(error.suggestions).toEqual(["okxus"])
    expect(error.message).toBe(
      'Exchange "okx" is supported but not enabled on this server. ' +
        "Add it to ENABLED_EXCHANGES to use it. Enabled exchanges: binance, kraken, coinbase"
    )
  })

  it("lists several suggestions", () => {
    expect(unknownExchangeError("coinbas", ["binance", "coinbase", "coinbaseexchange"], []).message).toBe(
      'Unknown exchange "coinbas". Did you mean "coinbase" or "coinbaseexchange"? ' +
        "Enabled exchanges: binance, coinbase, coinbaseexchange"
    )
  })
})

describe("symbols", () => {
  it("normalizes user spellings", () => {
    expect(normalizeSymbol(" btc-usdt ")).toBe("BTC/USDT")
    expect(normalizeSymbol("btc_usdt")).toBe("BTC/USDT")
    expect(normalizeSymbol("Btc/Usdt")).toBe("BTC/USDT")
    expect(normalizeSymbol("btc-usdt:usdt")).toBe("BTC/USDT:USDT")
    expect(normalizeSymbol("BTC/USD:BTC-250627")).toBe("BTC/USD:BTC-250627")
    expect(normalizeSymbol("BTC-USDT-SWAP")).toBe("BTC-USDT-SWAP")
    expect(normalizeSymbol("btc / usdt")).toBe("BTC/USDT")
  })

  const index = makeSymbolIndex([
    { symbol: "BTC/USD", id: "XXBTZUSD", base: "BTC", quote: "USD" },
    { symbol: "BTC/EUR", id: "XXBTZEUR", base: "BTC", quote: "EUR" },
    { symbol: "ETH/USD", id: "XETHZUSD", base: "ETH", quote: "USD" },
    { symbol: "ETH/BTC", id: "XETHXXBT", base: "ETH", quote: "BTC" },
    { symbol: "SOL/USD", id: "SOLUSD", base: "SOL", quote: "USD" },
    { symbol: "BTC/USD:USD", id: "PF_XBTUSD", base: "BTC", quote: "USD" },
    { symbol: "stETH/ETH", id: "STETHETH", base: "stETH", quote: "ETH" }
  ])

  it("finds listed symbols by unified symbol, exchange id or compact spelling", () => {
    expect(lookupSymbol(index, "btc-usd")).toBe("BTC/USD")
    expect(lookupSymbol(index, "xxbtzusd")).toBe("BTC/USD")
    expect(lookupSymbol(index, "BTCUSD")).toBe("BTC/USD")
    expect(lookupSymbol(index, "btc/usd:usd")).toBe("BTC/USD:USD")
    expect(lookupSymbol(index, "STETH/ETH")).toBe("stETH/ETH")
    expect(lookupSymbol(index, "DOGE/USD")).toBeUndefined()
  })

  it("suggests symbols sharing the base or quote, closest first", () => {
    expect(suggestSymbols(index, "BTC/USDT")).toEqual(["BTC/USD", "BTC/EUR", "BTC/USD:USD"])
    expect(suggestSymbols(index, "DOGE/USD")).toEqual(["SOL/USD", "BTC/USD", "ETH/USD", "BTC/USD:USD"])
    expect(suggestSymbols(index, "BTCUSDT")).toEqual(["BTC/USD", "BTC/USD:USD"])
    expect(suggestSymbols(index, "XYZ/QQQ")).toEqual([])
  })
})
