import { Either } from "effect"
import { describe, expect, it } from "vitest"
import {
  decodeCandles,
  decodeMarkets,
  decodeOrderBook,
  decodeTicker,
  decodeTickers,
  decodeTrades,
  describeClient,
  maxCandlesPerRequest
} from "../../src/Exchange/decode.js"

const right = <A, E>(e: Either.Either<A, E>): A => {
  if (Either.isLeft(e)) throw new Error(`expected Right, got ${JSON.stringify(e.left)}`)
  return e.right
}
const left = <A, E>(e: Either.Either<A, E>): E => {
  if (Either.isRight(e)) throw new Error(`expected Left, got ${JSON.stringify(e.right)}`)
  return e.left
}

/** What ccxt's kraken parseTicker returns: no timestamp, no percentage. */
const krakenTicker = {
  symbol: "BTC/USD",
  timestamp: undefined,
  datetime: undefined,
  high: 67851,
  low: 66350.3,
  bid: 67230,
  bidVolume: 2,
  ask: 67230.1,
  askVolume: 1,
  vwap: 67089.1,
  open: 67320,
  close: 67230.1,
  last: 67230.1,
  previousClose: undefined,
  change: -89.9,
  percentage: undefined,
  average: 67275.05,
  baseVolume: 2412.7,
  quoteVolume: 161864000.5,
  info: { a: ["67230.10000", "1", "1.000"], c: ["67230.10000", "0.1"] }
}

describe("decodeTicker", () => {
  it("reads a kraken-like ticker without timestamp as null fields", () => {
    const t = right(decodeTicker("kraken", "BTC/USD", krakenTicker))
    expect({ ...t }).toEqual({
      exchange: "kraken",
      symbol: "BTC/USD",
      source: "exchange",
      bid: 67230,
      ask: 67230.1,
      last: 67230.1,
      timestamp: null,
      datetime: null,
      high: 67851,
      low: 66350.3,
      open: 67320,
      close: 67230.1,
      baseVolume: 2412.7,
      quoteVolume: 161864000.5,
      change: -89.9,
      percentage: null,
      vwap: 67089.1,
      raw: krakenTicker.info
    })
  })

  it("turns non-finite optional numbers into null", () => {
    const t = right(decodeTicker("okx", "BTC/USD", { ...krakenTicker, bid: Number.NaN, ask: "67230" }))
    expect([t.bid, t.ask]).toEqual([null, null])
  })

  it("rejects the all-undefined ticker ccxt makes of an HTML or truncated body", () => {
    const error = left(
      decodeTicker("kraken", "BTC/USD", { symbol: "BTC/USD", last: undefined, bid: undefined, info: {} })
    )
    expect(error).toMatchObject({
      _tag: "UpstreamBadResponse",
      source: "kraken",
      message: "malformed ticker from kraken: last: Expected number, actual undefined"
    })
  })

  it("rejects another symbol's ticker and a non-positive last price (the integrity gate)", () => {
    expect(left(decodeTicker("binance", "BTC/USDT", { ...krakenTicker, symbol: "ETH/USDT" })).message).toBe(
      "inconsistent ticker from binance: asked for BTC/USDT, got ETH/USDT"
    )
    expect(left(decodeTicker("kraken", "BTC/USD", { ...krakenTicker, last: 0 })).message).toBe(
      "inconsistent ticker from kraken: last price 0 is not positive"
    )
  })

  it("rejects a non-object info and a missing payload", () => {
    expect(left(decodeTicker("kraken", "BTC/USD", { ...krakenTicker, info: "<html>" })).message).toBe(
      'malformed ticker from kraken: info: Expected object, actual "<html>"'
    )
    expect(left(decodeTicker("kraken", "BTC/USD", undefined)).message).toBe(
      "malformed ticker from kraken: expected an object, got undefined"
    )
  })

  it("picks tickers in the requested order", () => {
    const dict = {
      "BTC/USD": krakenTicker,
      "ETH/USD": { ...krakenTicker, symbol: "ETH/USD", last: 3500 }
    }
    const list = right(decodeTickers("kraken", ["ETH/USD", "BTC/USD"], dict))
    expect(list.map((t) => [t.symbol, t.last])).toEqual([
      ["ETH/USD", 3500],
      ["BTC/USD", 67230.1]
    ])
    expect(left(decodeTickers("kraken", ["SOL/USD"], dict)).message).toBe("kraken returned no ticker for SOL/USD")
  })
})

describe("decodeCandles", () => {
  it("maps rows to candles and accepts an empty list", () => {
    expect(right(decodeCandles("binance", [[60000, 1, 2, 0.5, 1.5, 10]])).map((c) => ({ ...c }))).toEqual([
      { timestamp: 60000, open: 1, high: 2, low: 0.5, close: 1.5, volume: 10 }
    ])
    expect(right(decodeCandles("binance", []))).toEqual([])
  })

  it("rejects impossible candles (the integrity gate)", () => {
    const at = (row: Array<number>) => left(decodeCandles("kraken", [[0, 10, 12, 9, 11, 1], row])).message
    expect(at([60_000, 10, 9.5, 9, 11, 1])).toBe(
      "inconsistent candles from kraken: candle at 1970-01-01T00:01:00.000Z: low 9 / high 9.5 do not enclose open 10 and close 11"
    )
    expect(at([60_000, 10, 12, 10.5, 11, 1])).toBe(
      "inconsistent candles from kraken: candle at 1970-01-01T00:01:00.000Z: low 10.5 / high 12 do not enclose open 10 and close 11"
    )
    expect(at([60_000, 10, 12, 9, 11, -1])).toBe(
      "inconsistent candles from kraken: candle at 1970-01-01T00:01:00.000Z: negative volume -1"
    )
  })

  it("rejects a row with an undefined value and a missing payload", () => {
    expect(
      left(
        decodeCandles("binance", [
          [60000, 1, 2, 0.5, 1.5, 10],
          [120000, 1, 2, 0.5, 1.5, undefined]
        ])
      )
    ).toMatchObject({
      _tag: "UpstreamBadResponse",
      message: "malformed candles from binance: [1][5]: Expected number, actual undefined"
    })
    expect(left(decodeCandles("binance", undefined)).message).toBe(
      "malformed candles from binance: Expected list of OHLCV rows, actual undefined"
    )
  })
})

describe("decodeOrderBook", () => {
  it("keeps the best `limit` levels of a sorted book", () => {
    const book = right(
      decodeOrderBook("binance", "BTC/USDT", 2, {
        bids: [
          [101, 2],
          [100, 3],
          [99, 1]
        ],
        asks: [
          [102, 2, 7],
          [103, 3],
          [104, 1]
        ],
        timestamp: undefined,
        nonce: 5
      })
    )
    expect(book.bids.map((l) => [l.price, l.amount])).toEqual([
      [101, 2],
      [100, 3]
    ])
    expect(book.asks.map((l) => [l.price, l.amount])).toEqual([
      [102, 2],
      [103, 3]
    ])
    expect(book.timestamp).toBeNull()
  })

  it("rejects unsorted, repeated, crossed and non-positive levels (the integrity gate)", () => {
    const problem = (bids: Array<[number, number]>, asks: Array<[number, number]>) =>
      left(decodeOrderBook("kraken", "BTC/USD", 5, { bids, asks })).message
    expect(
      problem(
        [
          [99, 1],
          [101, 2]
        ],
        [[102, 1]]
      )
    ).toBe("inconsistent order book from kraken: bids are not sorted best first (99 then 101)")
    expect(
      problem(
        [[101, 1]],
        [
          [103, 1],
          [102, 2]
        ]
      )
    ).toBe("inconsistent order book from kraken: asks are not sorted best first (103 then 102)")
    expect(
      problem(
        [
          [101, 1],
          [101, 2]
        ],
        [[102, 1]]
      )
    ).toBe("inconsistent order book from kraken: bids are not sorted best first (101 then 101)")
    expect(problem([[102, 1]], [[101, 1]])).toBe(
      "inconsistent order book from kraken: crossed: best bid 102 >= best ask 101"
    )
    expect(problem([[101, 0]], [[102, 1]])).toBe(
      "inconsistent order book from kraken: bids[0] has price 101 and size 0"
    )
    expect(problem([[101, 1]], [[-102, 1]])).toBe(
      "inconsistent order book from kraken: asks[0] has price -102 and size 1"
    )
    expect(right(decodeOrderBook("kraken", "BTC/USD", 5, { bids: [], asks: [] })).bids).toEqual([])
  })

  it("rejects a level that is not a pair of numbers", () => {
    expect(left(decodeOrderBook("okx", "BTC/USDT", 5, { bids: [["1", 2]], asks: [] })).message).toBe(
      'malformed order book from okx: bids[0][0]: Expected number, actual "1"'
    )
  })
})

describe("decodeTrades", () => {
  it("sorts ascending, keeps the last `limit` and normalizes id and side", () => {
    const trades = right(
      decodeTrades("coinbase", "BTC/USD", 2, [
        { id: "c", timestamp: 3000, price: 3, amount: 0.3, side: "sell" },
        { id: 1, timestamp: 1000, price: 1, amount: 0.1, side: "buy" },
        { timestamp: 2000, price: 2, amount: 0.2, side: "unknown" }
      ])
    )
    expect(trades.trades.map((t) => ({ ...t }))).toEqual([
      { trade_id: null, timestamp: 2000, price: 2, amount: 0.2, side: null },
      { trade_id: "c", timestamp: 3000, price: 3, amount: 0.3, side: "sell" }
    ])
  })

  it("rejects another symbol's trades and non-positive prices or amounts (the integrity gate)", () => {
    const trade = { id: "1", timestamp: 1000, price: 10, amount: 1, symbol: "BTC/USD" }
    expect(left(decodeTrades("kraken", "BTC/USD", 5, [{ ...trade, symbol: "ETH/USD" }])).message).toBe(
      "inconsistent trades from kraken: asked for BTC/USD, got a ETH/USD trade"
    )
    expect(left(decodeTrades("kraken", "BTC/USD", 5, [{ ...trade, price: 0 }])).message).toBe(
      "inconsistent trades from kraken: trade 1 has price 0 and amount 1"
    )
    expect(left(decodeTrades("kraken", "BTC/USD", 5, [{ ...trade, amount: -1 }])).message).toBe(
      "inconsistent trades from kraken: trade 1 has price 10 and amount -1"
    )
    expect(right(decodeTrades("kraken", "BTC/USD", 5, [])).trades).toEqual([])
  })

  it("requires a timestamp", () => {
    expect(left(decodeTrades("kraken", "BTC/USD", 5, [{ id: "1", price: 1, amount: 1 }])).message).toBe(
      "malformed trades from kraken: [0].timestamp: is missing"
    )
  })
})

describe("markets and capabilities", () => {
  it("decodes markets sorted by symbol and skips malformed entries", () => {
    const list = right(
      decodeMarkets("kraken", {
        "ETH/USD": { symbol: "ETH/USD", id: "XETHZUSD", base: "ETH", quote: "USD", type: "spot", active: true },
        "BTC/USD": {
          symbol: "BTC/USD",
          id: "XXBTZUSD",
          base: "BTC",
          quote: "USD",
          type: "spot",
          active: undefined,
          precision: { price: 0.1, amount: 1e-8 }
        },
        broken: { symbol: 42 }
      })
    )
    expect(list.map((m) => ({ ...m }))).toEqual([
      {
        symbol: "BTC/USD",
        id: "XXBTZUSD",
        base: "BTC",
        quote: "USD",
        type: "spot",
        active: null,
        precision: { price: 0.1, amount: 1e-8 }
      },
      {
        symbol: "ETH/USD",
        id: "XETHZUSD",
        base: "ETH",
        quote: "USD",
        type: "spot",
        active: true,
        precision: { price: null, amount: null }
      }
    ])
    expect(left(decodeMarkets("kraken", undefined))._tag).toBe("UpstreamBadResponse")
  })

  it("rejects a market list with no (well-formed) market: never zero markets", () => {
    expect(left(decodeMarkets("binance", {})).message).toBe("binance listed no markets")
    expect(left(decodeMarkets("binance", { broken: { symbol: 42 } })).message).toBe("binance listed no markets")
  })

  it("reads the per-request candle maximum with a fallback", () => {
    expect(maxCandlesPerRequest({ spot: { fetchOHLCV: { limit: 720 } } })).toBe(720)
    expect(maxCandlesPerRequest({ spot: { fetchOHLCV: null } })).toBe(500)
    expect(maxCandlesPerRequest(undefined)).toBe(500)
  })

  it("describes a client", () => {
    const info = describeClient("coinbase", {
      id: "coinbase",
      name: "Coinbase Advanced",
      has: { fetchTicker: true, fetchTickers: "emulated", fetchOHLCV: true, fetchTrades: false, watchTicker: true },
      timeframes: { "1m": "ONE_MINUTE", "1h": "ONE_HOUR" },
      features: { spot: { fetchOHLCV: { limit: 300 } } }
    })
    expect({ ...info }).toEqual({
      id: "coinbase",
      name: "Coinbase Advanced",
      capabilities: { ticker: true, tickers: true, ohlcv: true, orderbook: false, trades: false, websocket: true },
      intervals: ["1m", "1h"],
      maxCandlesPerRequest: 300
    })
  })
})
