import * as http from "node:http"
import type { AddressInfo } from "node:net"

/** A tiny binance spot REST emulator on loopback (ccxt-offline.md §5 bodies), with per-path overrides and counters. */

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void

export const PREFIX = "/prefix"

export const TICKER_NOW = Date.UTC(2024, 5, 10, 6, 13, 20)

const market = (symbol: string, base: string, quote: string) => ({
  symbol,
  status: "TRADING",
  baseAsset: base,
  baseAssetPrecision: 8,
  quoteAsset: quote,
  quotePrecision: 8,
  quoteAssetPrecision: 8,
  isSpotTradingAllowed: true,
  isMarginTradingAllowed: true,
  permissions: [],
  permissionSets: [["SPOT"]],
  filters: [
    { filterType: "PRICE_FILTER", minPrice: "0.01000000", maxPrice: "1000000.00000000", tickSize: "0.01000000" },
    { filterType: "LOT_SIZE", minQty: "0.00001000", maxQty: "9000.00000000", stepSize: "0.00001000" }
  ]
})

export const EXCHANGE_INFO = {
  timezone: "UTC",
  serverTime: TICKER_NOW,
  rateLimits: [],
  exchangeFilters: [],
  symbols: [market("BTCUSDT", "BTC", "USDT"), market("ETHUSDT", "ETH", "USDT")]
}

export const BTC_TICKER = {
  symbol: "BTCUSDT",
  priceChange: "-95.00000000",
  priceChangePercent: "-0.141",
  weightedAvgPrice: "67105.63119200",
  prevClosePrice: "67320.00000000",
  lastPrice: "67225.00000000",
  lastQty: "0.00130000",
  bidPrice: "67224.99000000",
  bidQty: "1.75326000",
  askPrice: "67225.00000000",
  askQty: "3.69101000",
  openPrice: "67320.00000000",
  highPrice: "67850.00000000",
  lowPrice: "66350.01000000",
  volume: "21532.30108000",
  quoteVolume: "1444954282.20413090",
  openTime: TICKER_NOW - 86400000,
  closeTime: TICKER_NOW,
  firstId: 3623005101,
  lastId: 3624335063,
  count: 1329963
}

const ETH_TICKER = { ...BTC_TICKER, symbol: "ETHUSDT", lastPrice: "3500.50000000", bidPrice: "3500.40000000" }

const INTERVAL_MS: Record<string, number> = { "1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000 }

/** Klines for every interval step up to now, like binance: from startTime when given, else the latest `limit`. */
const klines = (url: URL): Array<Array<unknown>> => {
  const tf = INTERVAL_MS[url.searchParams.get("interval") ?? ""] ?? 60_000
  const limit = Math.min(1000, Number(url.searchParams.get("limit") ?? "500"))
  const newest = Math.floor(Date.now() / tf) * tf
  const start = url.searchParams.get("startTime")
  const first = start === null ? newest - (limit - 1) * tf : Math.ceil(Number(start) / tf) * tf
  const rows: Array<Array<unknown>> = []
  for (let t = first; t <= newest && rows.length < limit; t += tf) {
    const p = (t / tf) % 1000
    rows.push([
      t,
      `${100 + p}`,
      `${101 + p}`,
      `${99 + p}`,
      `${100.5 + p}`,
      "2.5",
      t + tf - 1,
      "250",
      10,
      "1",
      "100",
      "0"
    ])
  }
  return rows
}

const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "Content-Type": "application/json", ...headers })
  res.end(JSON.stringify(body))
}

const defaults: Record<string, Handler> = {
  "/api/v3/exchangeInfo": (_req, res) => json(res, 200, EXCHANGE_INFO),
  "/api/v3/time": (_req, res) => json(res, 200, { serverTime: Date.now() }),
  "/api/v3/ticker/24hr": (_req, res, url) => {
    const symbols = url.searchParams.get("symbols")
    if (symbols !== null) {
      const wanted: Array<string> = JSON.parse(symbols)
      return json(
        res,
        200,
        [BTC_TICKER, ETH_TICKER].filter((t) => wanted.includes(t.symbol))
      )
    }
    const symbol = url.searchParams.get("symbol")
    if (symbol === "BTCUSDT") return json(res, 200, BTC_TICKER)
    if (symbol === "ETHUSDT") return json(res, 200, ETH_TICKER)
    return json(res, 400, { code: -1121, msg: "Invalid symbol." })
  },
  "/api/v3/klines": (_req, res, url) => json(res, 200, klines(url)),
  "/api/v3/depth": (_req, res) =>
    json(res, 200, {
      lastUpdateId: 51262389551,
      bids: [
        ["67220.00000000", "0.50000000"],
        ["67224.99000000", "1.75326000"],
        ["67210.00000000", "2.00000000"]
      ],
      asks: [
        ["67230.00000000", "1.00000000"],
        ["67225.00000000", "3.69101000"],
        ["67240.00000000", "0.25000000"]
      ]
    }),
  "/api/v3/aggTrades": (_req, res) =>
    json(res, 200, [
      { a: 3108000003, p: "67226.00000000", q: "0.01000000", f: 5, l: 5, T: TICKER_NOW - 500, m: true, M: true },
      { a: 3108000002, p: "67225.00000000", q: "0.02000000", f: 3, l: 4, T: TICKER_NOW - 1000, m: false, M: true }
    ])
}

export interface FakeBinance {
  readonly port: number
  /** The EXCHANGE_API_BASE_BINANCE value: loopback plus a path prefix. */
  readonly base: string
  /** Requests served, by path without the prefix (e.g. `/api/v3/exchangeInfo`). */
  readonly count: (path: string) => number
  readonly override: (path: string, handler: Handler) => void
  readonly reset: () => void
  readonly close: () => Promise<void>
}

export const startFakeBinance = async (): Promise<FakeBinance> => {
  const counts = new Map<string, number>()
  const overrides = new Map<string, Handler>()
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1")
    const path = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) : url.pathname
    counts.set(path, (counts.get(path) ?? 0) + 1)
    const handler = overrides.get(path) ?? defaults[path]
    if (handler === undefined || !url.pathname.startsWith(PREFIX)) return json(res, 404, { code: -1, msg: "no route" })
    handler(req, res, url)
  })
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))
  const { port } = server.address() as AddressInfo
  return {
    port,
    base: `http://127.0.0.1:${port}${PREFIX}`,
    count: (path) => counts.get(path) ?? 0,
    override: (path, handler) => void overrides.set(path, handler),
    reset: () => {
      counts.clear()
      overrides.clear()
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections()
        server.close(() => ok())
      })
  }
}

/** A loopback port nothing listens on. */
export const closedPort = async (): Promise<number> => {
  const server = http.createServer()
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((ok) => server.close(() => ok()))
  return port
}
