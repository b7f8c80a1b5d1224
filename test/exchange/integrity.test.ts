import { describe, expect, it } from "vitest"
import { assertIntegrity, IntegrityViolation, violationOf } from "../../src/Exchange/integrity.js"

const BINANCE = "http://127.0.0.1:1/binance/api/v3"
const KRAKEN = "http://127.0.0.1:1/kraken/0/public"
const COINBASE = "http://127.0.0.1:1/coinbaseexchange"

/** ccxt's parse of a body: objects and lists only, anything else undefined. */
const parsed = (body: string): unknown => {
  try {
    const value: unknown = JSON.parse(body)
    return typeof value === "object" && value !== null ? value : undefined
  } catch {
    return undefined
  }
}
const check = (exchange: string, url: string, body: string) => violationOf(exchange, url, body, parsed(body))

describe("violationOf: the body every exchange must send", () => {
  it("names empty, HTML, truncated and scalar bodies", () => {
    expect(check("okx", "http://x/api/v5/market/ticker", "  ")).toBe("an empty body")
    expect(check("okx", "http://x/api/v5/market/ticker", "<!DOCTYPE html><p>down</p>")).toBe(
      "an HTML page instead of JSON"
    )
    expect(check("okx", "http://x/api/v5/market/ticker", '{"code":"0","da')).toBe(
      "a body that is not valid JSON (15 bytes, truncated?)"
    )
    expect(check("okx", "http://x/api/v5/market/ticker", "null")).toBe("JSON null instead of an object or a list")
    expect(check("okx", "http://x/api/v5/market/ticker", "42")).toBe("JSON number instead of an object or a list")
    // no documented shape for okx: any object or list passes
    expect(check("okx", "http://x/api/v5/market/ticker", "{}")).toBeUndefined()
  })
})

describe("violationOf: documented shapes", () => {
  it("binance: ticker, tickers asked by symbols, klines, depth, aggTrades, exchangeInfo", () => {
    expect(check("binance", `${BINANCE}/ticker/24hr?symbol=BTCUSDT`, '{"symbol":"BTCUSDT","lastPrice":"1.5"}')).toBe(
      undefined
    )
    expect(check("binance", `${BINANCE}/ticker/24hr?symbol=BTCUSDT`, "[]")).toBe(
      "unexpected shape: expected an object, got a list"
    )
    expect(check("binance", `${BINANCE}/ticker/24hr?symbol=BTCUSDT`, '{"symbol":"BTCUSDT","lastPrice":true}')).toBe(
      "unexpected shape: lastPrice: expected a number, got boolean"
    )
    const asked = `${BINANCE}/ticker/24hr?symbols=${encodeURIComponent('["BTCUSDT","ETHUSDT"]')}`
    expect(check("binance", asked, '[{"symbol":"ETHUSDT","lastPrice":"2"}]')).toBe(
      "unexpected shape: no ticker for BTCUSDT"
    )
    expect(check("binance", `${BINANCE}/klines?symbol=BTCUSDT`, "[]")).toBeUndefined()
    expect(check("binance", `${BINANCE}/klines?symbol=BTCUSDT`, '[[1,"1","2","0.5","1.5","3",2]]')).toBeUndefined()
    expect(check("binance", `${BINANCE}/klines?symbol=BTCUSDT`, '[[1,"1","2"]]')).toBe(
      "unexpected shape: [0]: expected at least 6 entries, got 3"
    )
    expect(check("binance", `${BINANCE}/depth?symbol=BTCUSDT`, '{"bids":[],"asks":[]}')).toBe(
      "unexpected shape: lastUpdateId: missing"
    )
    expect(check("binance", `${BINANCE}/aggTrades?symbol=BTCUSDT`, "{}")).toBe(
      "unexpected shape: expected a list, got an object"
    )
    expect(check("binance", `${BINANCE}/exchangeInfo`, '{"symbols":[]}')).toBe(
      "unexpected shape: symbols: an empty list"
    )
    expect(check("binance", `${BINANCE}/depth?symbol=BTCUSDT`, '{"code":-1001,"msg":"Internal error"}')).toBe(
      "an error envelope instead of data (lastUpdateId: missing)"
    )
  })

  it("kraken: the answer is keyed by every pair asked for; its own error envelope is left to ccxt", () => {
    const ticker = '{"a":["2","1","1"],"b":["1","1","1"],"c":["1.5","0.1"]}'
    expect(check("kraken", `${KRAKEN}/Ticker?pair=XXBTZUSD`, `{"error":[],"result":{"XXBTZUSD":${ticker}}}`)).toBe(
      undefined
    )
    expect(check("kraken", `${KRAKEN}/Ticker?pair=XXBTZUSD`, `{"error":[],"result":{"XETHZUSD":${ticker}}}`)).toBe(
      "unexpected shape: result: XXBTZUSD: missing"
    )
    expect(check("kraken", `${KRAKEN}/OHLC?pair=XXBTZUSD`, '{"error":[],"result":{"XXBTZUSD":[],"last":1}}')).toBe(
      undefined
    )
    expect(check("kraken", `${KRAKEN}/AssetPairs`, '{"error":[],"result":{}}')).toBe(
      "unexpected shape: result: an empty object"
    )
    expect(check("kraken", `${KRAKEN}/Depth?pair=XXBTZUSD`, '{"error":["EService:Unavailable"]}')).toBeUndefined()
  })

  it("coinbaseexchange: product paths", () => {
    expect(check("coinbaseexchange", `${COINBASE}/products`, "[]")).toBe("unexpected shape: an empty list")
    expect(check("coinbaseexchange", `${COINBASE}/products/BTC-USD/trades?limit=5`, "[]")).toBeUndefined()
    expect(check("coinbaseexchange", `${COINBASE}/products/BTC-USD/book?level=2`, '{"message":"oops"}')).toBe(
      "an error envelope instead of data (bids: missing)"
    )
    expect(check("coinbaseexchange", `${COINBASE}/products/BTC-USD/ticker`, '{"price":"1","time":7}')).toBe(
      "unexpected shape: time: expected a string, got number"
    )
  })
})

describe("assertIntegrity", () => {
  it("throws for a broken 2xx body only; error statuses are ccxt's to map", () => {
    expect(() => assertIntegrity("binance", 200, `${BINANCE}/depth?symbol=BTCUSDT`, "", undefined)).toThrow(
      new IntegrityViolation("binance", "/binance/api/v3/depth", "an empty body")
    )
    expect(() => assertIntegrity("binance", 503, `${BINANCE}/depth?symbol=BTCUSDT`, "", undefined)).not.toThrow()
  })
})
