import type { CcxtClient } from "../../src/Exchange/ccxtClient.js"

/** An in-memory stand-in for a ccxt instance: scripted results, call counters. */
export interface FakeClient extends CcxtClient {
  readonly calls: Record<string, number>
  closed: number
  loadMarketsImpl: () => Promise<unknown>
  fetchTickerImpl: (symbol: string) => Promise<unknown>
  fetchTickersImpl: (symbols: Array<string> | undefined) => Promise<unknown>
  fetchOHLCVImpl: (symbol: string, timeframe: string | undefined, since?: number, limit?: number) => Promise<unknown>
}

export const MARKETS = {
  "BTC/USD": { symbol: "BTC/USD", id: "XXBTZUSD", base: "BTC", quote: "USD", type: "spot", active: true },
  "ETH/USD": { symbol: "ETH/USD", id: "XETHZUSD", base: "ETH", quote: "USD", type: "spot", active: true }
}

export const tickerFor = (symbol: string, last: number) => ({
  symbol,
  timestamp: undefined,
  datetime: undefined,
  last,
  bid: last - 1,
  ask: last + 1,
  info: { pair: symbol }
})

export const makeFakeClient = (id: string, overrides: Partial<Pick<CcxtClient, "has" | "timeframes">> = {}) => {
  const calls: Record<string, number> = {}
  const count = (name: string) => {
    calls[name] = (calls[name] ?? 0) + 1
  }
  const client: FakeClient = {
    id,
    name: id.toUpperCase(),
    has: {
      fetchTicker: true,
      fetchTickers: true,
      fetchOHLCV: true,
      fetchOrderBook: true,
      fetchTrades: true,
      watchTicker: true,
      ...overrides.has
    },
    timeframes: overrides.timeframes ?? { "1m": "1", "1h": "60" },
    features: { spot: { fetchOHLCV: { limit: 3 } } },
    markets: undefined,
    marketsLoading: undefined,
    calls,
    closed: 0,
    loadMarketsImpl: async () => MARKETS,
    fetchTickerImpl: async (symbol) => tickerFor(symbol, 100),
    fetchTickersImpl: async (symbols) => Object.fromEntries((symbols ?? []).map((s, i) => [s, tickerFor(s, 200 + i)])),
    fetchOHLCVImpl: async () => [],
    loadMarkets(reload) {
      count(`loadMarkets(${String(reload)})`)
      const promise = client.loadMarketsImpl().then((markets) => {
        client.markets = markets
        return markets
      })
      client.marketsLoading = promise
      return promise
    },
    fetchTicker(symbol) {
      count("fetchTicker")
      return client.fetchTickerImpl(symbol)
    },
    fetchTickers(symbols) {
      count("fetchTickers")
      return client.fetchTickersImpl(symbols)
    },
    fetchOHLCV(symbol, timeframe, since, limit) {
      count("fetchOHLCV")
      return client.fetchOHLCVImpl(symbol, timeframe, since, limit)
    },
    fetchOrderBook() {
      count("fetchOrderBook")
      return Promise.resolve({ bids: [], asks: [] })
    },
    fetchTrades() {
      count("fetchTrades")
      return Promise.resolve([])
    },
    close() {
      client.closed++
      return Promise.resolve()
    }
  }
  return client
}
