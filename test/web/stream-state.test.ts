import { describe, expect, it } from "vitest"
import {
  dayChange,
  emptyMarket,
  freshness,
  initialState,
  MAX_TRADES,
  mergeTrades,
  reducer,
  STALE_AFTER_MS,
  type Action,
  type StreamState
} from "../../web/src/lib/streamState.js"
import type { ServerEvent, Ticker, Trade } from "../../web/src/lib/types.js"

const kraken = { exchange: "kraken", symbol: "BTC/USD" }
const K = "kraken|BTC/USD"

const run = (actions: ReadonlyArray<Action>, from: StreamState = initialState) => actions.reduce(reducer, from)
const event = (e: ServerEvent, at = 1000): Action => ({ type: "event", event: e, at })
const live: Action = { type: "connection", state: "live", attempt: 0 }

const tickerEvent = (last: number): ServerEvent => ({
  event_type: "ticker",
  channel: "ticker",
  ...kraken,
  bid: last - 1,
  ask: last + 1,
  last,
  timestamp: 5
})

const trade = (id: string, timestamp: number, side: "buy" | "sell" = "buy"): Trade => ({
  trade_id: id,
  timestamp,
  price: 100,
  amount: 1,
  side
})

const restTicker: Ticker = {
  ...kraken,
  bid: 99,
  ask: 101,
  last: 100,
  timestamp: null,
  high: 110,
  low: 90,
  open: 80,
  baseVolume: 12,
  quoteVolume: 1200,
  change: 20,
  percentage: 25
}

describe("stream reducer", () => {
  it("takes the live quote from ticker events and remembers which way it moved", () => {
    const state = run([live, event(tickerEvent(100)), event(tickerEvent(101), 2000)])
    expect(state.markets[K]?.ticker).toEqual({ bid: 100, ask: 102, last: 101, timestamp: 5 })
    expect(state.markets[K]?.tick).toBe("up")
    expect(state.markets[K]?.updatedAt).toBe(2000)
    const down = run([event(tickerEvent(99))], state)
    expect(down.markets[K]?.tick).toBe("down")
    // an unchanged last keeps the last direction
    expect(run([event(tickerEvent(99))], down).markets[K]?.tick).toBe("down")
  })

  it("replaces the order book, never merges it", () => {
    const book = (price: number): ServerEvent => ({
      event_type: "orderbook",
      channel: "orderbook",
      ...kraken,
      bids: [{ price, amount: 1 }],
      asks: [{ price: price + 1, amount: 2 }],
      timestamp: null
    })
    const state = run([event(book(100)), event(book(200))])
    expect(state.markets[K]?.book).toEqual({ bids: [{ price: 200, amount: 1 }], asks: [{ price: 201, amount: 2 }] })
  })

  it("keeps trades newest first, once each, at most MAX_TRADES", () => {
    const batch = (trades: ReadonlyArray<Trade>): ServerEvent => ({
      event_type: "trades",
      channel: "trades",
      ...kraken,
      trades,
      dropped: 0
    })
    const state = run([
      { type: "trades-snapshot", market: kraken, trades: [trade("1", 1), trade("2", 2)] },
      event(batch([trade("2", 2), trade("3", 3, "sell"), trade("4", 4)]))
    ])
    expect(state.markets[K]?.trades.map((t) => t.trade_id)).toEqual(["4", "3", "2", "1"])
    // the REST history answering after the stream's first trades goes below them
    const late = run([
      event(batch([trade("3", 3), trade("4", 4)])),
      { type: "trades-snapshot", market: kraken, trades: [trade("1", 1), trade("2", 2), trade("3", 3)] }
    ])
    expect(late.markets[K]?.trades.map((t) => t.trade_id)).toEqual(["4", "3", "2", "1"])
    const many = Array.from({ length: 100 }, (_, i) => trade(`m${i}`, 100 + i))
    const capped = mergeTrades([], many)
    expect(capped).toHaveLength(MAX_TRADES)
    expect(capped[0]?.trade_id).toBe("m99")
  })

  it("merges candle events into the series of their interval", () => {
    const ohlcv = (minute: number, close: number): ServerEvent => ({
      event_type: "ohlcv",
      channel: "ohlcv",
      ...kraken,
      interval: "1m",
      timestamp: minute * 60_000,
      open: 100,
      high: 110,
      low: 90,
      close,
      volume: 3
    })
    const history = [1, 2].map((m) => ({ timestamp: m * 60_000, open: 1, high: 1, low: 1, close: 1, volume: 1 }))
    const state = run([
      event(ohlcv(2, 105)),
      { type: "candles", market: kraken, interval: "1m", candles: history },
      event(ohlcv(2, 106)),
      event(ohlcv(3, 107))
    ])
    expect(state.series["kraken|BTC/USD|1m"]?.map((c) => [c.timestamp / 60_000, c.close])).toEqual([
      [1, 1],
      [2, 106],
      [3, 107]
    ])
    expect(state.series["kraken|BTC/USD|5m"]).toBeUndefined()
  })

  it("tracks upstream status per subscription: reconnecting while any is, live when all recovered", () => {
    const status = (channel: "ticker" | "trades", s: "reconnecting" | "live"): ServerEvent => ({
      event_type: "status",
      status: s,
      channel,
      ...kraken,
      reason: s === "live" ? "recovered" : "stall",
      attempt: s === "live" ? 0 : 1
    })
    const down = run([live, event(status("ticker", "reconnecting")), event(status("trades", "reconnecting"))])
    expect(down.markets[K]?.upstream).toBe("reconnecting")
    expect(down.markets[K]?.upstreamReason).toBe("stall")
    const half = run([event(status("ticker", "live"))], down)
    expect(half.markets[K]?.upstream).toBe("reconnecting")
    const up = run([event(status("trades", "live"))], half)
    expect(up.markets[K]?.upstream).toBe("live")
    expect(up.markets[K]?.upstreamReason).toBeNull()
  })

  it("forgets upstream trouble on a new connection (the server reports it again)", () => {
    const down = run([
      live,
      event({ event_type: "status", status: "reconnecting", channel: "ticker", ...kraken }),
      { type: "connection", state: "reconnecting", attempt: 1 }
    ])
    expect(down.connection).toBe("reconnecting")
    expect(down.attempt).toBe(1)
    const again = run([live], down)
    expect(again.connection).toBe("live")
    expect(again.attempt).toBe(0)
    expect(again.markets[K]?.upstream).toBe("live")
  })

  it("records a refused subscription's error on its market", () => {
    const state = run([
      event({
        event_type: "error",
        code: "symbol_not_found",
        message: "no such symbol",
        channel: "ticker",
        ...kraken
      })
    ])
    expect(state.markets[K]?.error).toBe("no such symbol")
    expect(run([event({ event_type: "heartbeat", timestamp: 1 })], state)).toBe(state)
  })

  it("keeps the REST ticker's 24 h statistics and prefers the stream's quote", () => {
    const state = run([event(tickerEvent(120)), { type: "ticker-snapshot", ticker: restTicker, at: 3000 }])
    expect(state.markets[K]?.ticker?.last).toBe(120)
    expect(state.markets[K]?.stats?.high).toBe(110)
    // 24 h change follows the live last against the 24 h open
    const change = dayChange(state.markets[K] ?? emptyMarket)
    expect(change.change).toBe(40)
    expect(change.percentage).toBe(50)
    const restOnly = run([{ type: "ticker-snapshot", ticker: { ...restTicker, open: null }, at: 3000 }])
    expect(dayChange(restOnly.markets[K] ?? emptyMarket)).toEqual({ change: 20, percentage: 25 })
  })
})

describe("freshness", () => {
  const state = run([live, event(tickerEvent(100), 1000)])
  const market = state.markets[K]

  it("is live while data flows", () => {
    expect(freshness(state, market, 1000 + STALE_AFTER_MS)).toBe("live")
  })

  it("marks data stale after a silence", () => {
    expect(freshness(state, market, 1001 + STALE_AFTER_MS)).toBe("stale")
  })

  it("says what the connection is doing first", () => {
    expect(freshness({ ...state, connection: "reconnecting" }, market, 1000)).toBe("reconnecting")
    expect(freshness({ ...state, connection: "offline" }, market, 1000)).toBe("offline")
    expect(freshness(initialState, undefined, 1000)).toBe("connecting")
    expect(freshness(state, market === undefined ? undefined : { ...market, upstream: "reconnecting" }, 1000)).toBe(
      "reconnecting"
    )
  })
})
