/** Kraken spot: public REST (/0/public/…, bodies wrapped in {error, result}) and WebSocket v2 (/v2). */

import { diffBooks, truncateBook, type BookEvent, type BookLevels, type Level } from "./book.js"
import { genericFault, withRetryAfter, type FaultSpec, type RawResponse } from "./faults.js"
import { decimal, fixed, isoMicros, padded, rfc1123Short, scaled } from "./format.js"
import { fixedBucket, MINUTE } from "./intervals.js"
import { MARKETS, type MarketSpec } from "./markets.js"
import type { RawCandle, RawTrade, Series } from "./model.js"
import {
  clamp,
  intParam,
  json,
  parseJsonObject,
  stringArray,
  type RestRequest,
  type Venue,
  type VenueContext,
  type WsPeer,
  type WsSession
} from "./protocol.js"
import { CandleCursor, TradeCursor } from "./streams.js"

interface PairInfo {
  readonly altname: string
  readonly wsname: string
  readonly base: string
  readonly quote: string
  readonly ordermin: string
  readonly costmin: string
}

const PAIRS: Readonly<Record<string, PairInfo>> = {
  XXBTZUSD: { altname: "XBTUSD", wsname: "XBT/USD", base: "XXBT", quote: "ZUSD", ordermin: "0.0001", costmin: "0.5" },
  XETHZUSD: { altname: "ETHUSD", wsname: "ETH/USD", base: "XETH", quote: "ZUSD", ordermin: "0.002", costmin: "0.5" },
  SOLUSD: { altname: "SOLUSD", wsname: "SOL/USD", base: "SOL", quote: "ZUSD", ordermin: "0.02", costmin: "0.5" }
}

const ASSETS: Readonly<Record<string, Record<string, unknown>>> = {
  XXBT: {
    aclass: "currency",
    altname: "XBT",
    decimals: 10,
    display_decimals: 5,
    collateral_value: 1,
    status: "enabled"
  },
  XETH: {
    aclass: "currency",
    altname: "ETH",
    decimals: 10,
    display_decimals: 5,
    collateral_value: 1,
    status: "enabled"
  },
  SOL: {
    aclass: "currency",
    altname: "SOL",
    decimals: 10,
    display_decimals: 5,
    collateral_value: 1,
    status: "enabled"
  },
  ZUSD: {
    aclass: "currency",
    altname: "ZUSD",
    decimals: 4,
    display_decimals: 2,
    collateral_value: 1,
    status: "enabled"
  }
}

const INTERVALS = [1, 5, 15, 30, 60, 240, 1440, 10080, 21600]
const BOOK_DEPTHS = [10, 25, 100, 500, 1000]

const FEES = [
  [0, 0.4],
  [10000, 0.35],
  [50000, 0.24],
  [100000, 0.22],
  [250000, 0.2],
  [500000, 0.18],
  [1000000, 0.16],
  [2500000, 0.14],
  [5000000, 0.12],
  [10000000, 0.1]
]
const MAKER_FEES = [
  [0, 0.25],
  [10000, 0.2],
  [50000, 0.14],
  [100000, 0.12],
  [250000, 0.1],
  [500000, 0.08],
  [1000000, 0.06],
  [2500000, 0.04],
  [5000000, 0.02],
  [10000000, 0]
]

const ok = (result: unknown): RawResponse => json(200, { error: [], result })
const fail = (...errors: string[]): RawResponse => json(200, { error: errors })
const unknownPair = (): RawResponse => fail("EQuery:Unknown asset pair")
const invalidArguments = (): RawResponse => fail("EGeneral:Invalid arguments")

const info = (spec: MarketSpec): PairInfo => {
  const pair = PAIRS[spec.id]
  if (pair === undefined) throw new Error(`kraken pair ${spec.id} has no metadata`)
  return pair
}

/** kraken accepts the id (XXBTZUSD), the altname (XBTUSD), the v1 wsname (XBT/USD) and the unified form. */
const findPair = (name: string): MarketSpec | undefined => {
  const upper = name.trim().toUpperCase()
  return MARKETS.kraken.find((spec) => {
    const pair = info(spec)
    return (
      spec.id === upper ||
      pair.altname === upper ||
      pair.wsname === upper ||
      spec.symbol === upper ||
      spec.symbol.replace("/", "") === upper
    )
  })
}

/** v2 WebSocket symbols are the unified BTC/USD form (XBT/USD is accepted as well). */
const findWsSymbol = (name: string): MarketSpec | undefined =>
  MARKETS.kraken.find((spec) => spec.symbol === name || info(spec).wsname === name)

const price = (spec: MarketSpec, ticks: number): string => decimal(ticks, spec.priceDecimals)
const tickerPrice = (spec: MarketSpec, ticks: number): string => padded(ticks, spec.priceDecimals, 5)
const volume = (spec: MarketSpec, units: number): string => padded(units, spec.amountDecimals, 8)
const vwapOf = (spec: MarketSpec, quote: number, units: number, fallbackTicks: number, digits: number): string =>
  units > 0
    ? fixed(quote / units / 10 ** spec.priceDecimals, digits)
    : padded(fallbackTicks, spec.priceDecimals, digits)
const numPrice = (spec: MarketSpec, ticks: number): number => scaled(ticks, spec.priceDecimals)
const numQty = (spec: MarketSpec, units: number): number => scaled(units, spec.amountDecimals)

const assetPairInfo = (spec: MarketSpec) => {
  const pair = info(spec)
  return {
    altname: pair.altname,
    wsname: pair.wsname,
    aclass_base: "currency",
    base: pair.base,
    aclass_quote: "currency",
    quote: pair.quote,
    lot: "unit",
    cost_decimals: 5,
    pair_decimals: spec.priceDecimals,
    lot_decimals: spec.amountDecimals,
    lot_multiplier: 1,
    leverage_buy: [2, 3, 4, 5],
    leverage_sell: [2, 3, 4, 5],
    fees: FEES,
    fees_maker: MAKER_FEES,
    fee_volume_currency: "ZUSD",
    margin_call: 80,
    margin_stop: 40,
    ordermin: pair.ordermin,
    costmin: pair.costmin,
    tick_size: decimal(1, spec.priceDecimals),
    status: "online",
    long_position_limit: 250,
    short_position_limit: 200
  }
}

const checksumTable = (() => {
  const table = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c
  }
  return table
})()

const crc32 = (text: string): number => {
  let crc = -1
  for (let i = 0; i < text.length; i++) crc = (crc >>> 8) ^ (checksumTable[(crc ^ text.charCodeAt(i)) & 0xff] ?? 0)
  return (crc ^ -1) >>> 0
}

/** kraken's book checksum: top 10 asks then top 10 bids, digits only, leading zeros stripped. */
const bookChecksum = (spec: MarketSpec, book: BookLevels): number => {
  const digits = (units: number, decimals: number) => decimal(units, decimals).replace(".", "").replace(/^0+/, "")
  const part = (side: ReadonlyArray<Level>) =>
    side
      .slice(0, 10)
      .map(([p, q]) => digits(p, spec.priceDecimals) + digits(q, spec.amountDecimals))
      .join("")
  return crc32(part(book.asks) + part(book.bids))
}

export class KrakenVenue implements Venue {
  readonly id = "kraken" as const
  readonly marketListPaths: ReadonlySet<string> = new Set(["/0/public/Assets", "/0/public/AssetPairs"])

  constructor(private readonly ctx: VenueContext) {}

  private series(spec: MarketSpec): Series {
    return this.ctx.model.series("kraken", spec.symbol)
  }

  /** pair=a,b → specs; undefined when absent; a response when one is unknown. */
  private pairs(params: URLSearchParams): MarketSpec[] | undefined | RawResponse {
    const raw = params.get("pair")
    if (raw === null || raw.trim() === "") return undefined
    const specs: MarketSpec[] = []
    for (const name of raw.split(",")) {
      const spec = findPair(name)
      if (spec === undefined) return unknownPair()
      specs.push(spec)
    }
    return specs
  }

  private onePair(params: URLSearchParams): MarketSpec | RawResponse {
    const specs = this.pairs(params)
    if (specs === undefined) return invalidArguments()
    if ("status" in specs) return specs
    return specs[0] ?? invalidArguments()
  }

  rest(request: RestRequest): RawResponse {
    const { params, now } = request
    const second = Math.floor(now / 1000)
    switch (request.path) {
      case "/0/public/Time":
        return ok({ unixtime: second, rfc1123: rfc1123Short(now) })
      case "/0/public/SystemStatus":
        return ok({ status: "online", timestamp: new Date(second * 1000).toISOString().replace(".000Z", "Z") })
      case "/0/public/Assets": {
        const wanted = params.get("asset")
        const entries = Object.entries(ASSETS).filter(
          ([id, asset]) => wanted === null || wanted.split(",").some((w) => w === id || w === asset["altname"])
        )
        if (entries.length === 0) return fail("EQuery:Unknown asset")
        return ok(Object.fromEntries(entries))
      }
      case "/0/public/AssetPairs": {
        const specs = this.pairs(params)
        if (specs !== undefined && "status" in specs) return specs
        return ok(Object.fromEntries((specs ?? MARKETS.kraken).map((spec) => [spec.id, assetPairInfo(spec)])))
      }
      case "/0/public/Ticker": {
        const specs = this.pairs(params)
        if (specs !== undefined && "status" in specs) return specs
        return ok(Object.fromEntries((specs ?? MARKETS.kraken).map((spec) => [spec.id, this.ticker(spec, now)])))
      }
      case "/0/public/OHLC":
        return this.ohlc(params, now)
      case "/0/public/Depth": {
        const spec = this.onePair(params)
        if ("status" in spec) return spec
        const count = clamp(intParam(params, "count") ?? 100, 1, 500)
        const book = this.ctx.book(spec).current(now).book
        const side = (levels: ReadonlyArray<Level>) =>
          levels.slice(0, count).map(([p, q]) => [price(spec, p), volume(spec, q), second - 1 - (p % 7)])
        return ok({ [spec.id]: { asks: side(book.asks), bids: side(book.bids) } })
      }
      case "/0/public/Trades":
        return this.trades(params, now)
      default:
        return json(404, { error: ["EGeneral:Unknown method"] })
    }
  }

  private ticker(spec: MarketSpec, now: number) {
    const series = this.series(spec)
    const second = Math.floor(now / 1000)
    const rolling = series.stats(second - 86_400, second)
    const dayStart = Math.floor(second / 86_400) * 86_400
    const today = series.stats(dayStart, second)
    const book = this.ctx.book(spec).current(now).book
    const bid = book.bids[0]
    const ask = book.asks[0]
    const lot = (level: Level | undefined) => [
      tickerPrice(spec, level?.[0] ?? 0),
      String(Math.max(1, Math.ceil(numQty(spec, level?.[1] ?? 0)))),
      volume(spec, level?.[1] ?? 0)
    ]
    return {
      a: lot(ask),
      b: lot(bid),
      c: [tickerPrice(spec, rolling.lastPrice), volume(spec, rolling.last?.amount ?? 0)],
      v: [volume(spec, today.window.volume), volume(spec, rolling.window.volume)],
      p: [
        vwapOf(spec, today.window.quote, today.window.volume, today.lastPrice, 5),
        vwapOf(spec, rolling.window.quote, rolling.window.volume, rolling.lastPrice, 5)
      ],
      t: [today.window.count, rolling.window.count],
      l: [tickerPrice(spec, today.low), tickerPrice(spec, rolling.low)],
      h: [tickerPrice(spec, today.high), tickerPrice(spec, rolling.high)],
      o: tickerPrice(spec, today.open)
    }
  }

  private ohlc(params: URLSearchParams, now: number): RawResponse {
    const spec = this.onePair(params)
    if ("status" in spec) return spec
    const interval = intParam(params, "interval") ?? 1
    if (!INTERVALS.includes(interval)) return invalidArguments()
    const bucket = fixedBucket(interval * MINUTE)
    const series = this.series(spec)
    const since = intParam(params, "since")
    // kraken serves at most 720 entries; `since` is exclusive
    const candles =
      since === undefined
        ? series.latestCandles(bucket, 720, now)
        : series.candles(bucket, (since + 1) * 1000, 720, now)
    const rows = candles.map((c) => [
      c.start / 1000,
      price(spec, c.open),
      price(spec, c.high),
      price(spec, c.low),
      price(spec, c.close),
      vwapOf(spec, c.agg.quote, c.agg.volume, c.close, spec.priceDecimals + 1),
      volume(spec, c.agg.volume),
      c.agg.count
    ])
    const committed = [...candles].reverse().find((c) => c.closed)
    const last = committed === undefined ? (since ?? 0) : committed.start / 1000
    return ok({ [spec.id]: rows, last })
  }

  private trades(params: URLSearchParams, now: number): RawResponse {
    const spec = this.onePair(params)
    if ("status" in spec) return spec
    const count = clamp(intParam(params, "count") ?? 1000, 1, 1000)
    const series = this.series(spec)
    const visible = Math.floor(now / 1000)
    const sinceRaw = params.get("since")
    let trades: RawTrade[]
    if (sinceRaw === null || sinceRaw === "") {
      trades = series.tradesBefore(visible, count)
    } else {
      const since = Number(sinceRaw)
      if (!Number.isFinite(since)) return invalidArguments()
      // `since` is seconds, or the nanosecond cursor returned as `last`
      const fromMs = since > 1e12 ? Math.floor(since / 1e6) + 1 : since * 1000
      trades = series
        .tradesBetween(Math.floor(fromMs / 1000), visible, count + 16)
        .filter((t) => t.timestamp >= fromMs)
        .slice(0, count)
    }
    const rows = trades.map((t) => [
      price(spec, t.price),
      volume(spec, t.amount),
      t.timestamp / 1000,
      t.buy ? "b" : "s",
      t.id % 3 === 0 ? "l" : "m",
      "",
      t.id
    ])
    const lastTrade = trades.at(-1)
    const last = lastTrade === undefined ? (sinceRaw ?? `${visible}000000000`) : `${lastTrade.timestamp}000000`
    return ok({ [spec.id]: rows, last })
  }

  faultResponse(spec: FaultSpec, request: RestRequest): RawResponse {
    switch (spec.kind) {
      case "rate-limit-429":
        // Cloudflare answers before kraken's own rate limiter (which would say EAPI:Rate limit exceeded with a 200)
        return withRetryAfter(
          {
            status: 429,
            contentType: "text/html; charset=UTF-8",
            body: "<!DOCTYPE html><html><head><title>Access denied | api.kraken.com used Cloudflare to restrict access</title></head><body><h1>Error 1015</h1><p>You are being rate limited</p></body></html>"
          },
          spec
        )
      case "error-503-json":
        return withRetryAfter(json(503, { error: ["EService:Unavailable"] }), spec)
      case "error-envelope-200":
        // kraken reports its errors in a 200 envelope; ccxt maps the text (EService:Unavailable would be a 503)
        return json(200, { error: ["EGeneral:Invalid arguments"] })
      default:
        return genericFault(spec, () => this.rest(request))
    }
  }

  acceptsWsPath(path: string): boolean {
    return path === "/v2" || path === "/v2/"
  }

  openSession(peer: WsPeer): WsSession {
    return new KrakenSession(peer, this.ctx)
  }
}

type Subscription =
  | { readonly channel: "ticker"; readonly spec: MarketSpec }
  | { readonly channel: "trade"; readonly spec: MarketSpec; readonly cursor: TradeCursor }
  | {
      readonly channel: "ohlc"
      readonly spec: MarketSpec
      readonly interval: number
      readonly cursor: CandleCursor
    }
  | {
      readonly channel: "book"
      readonly spec: MarketSpec
      readonly depth: number
      sent: BookLevels
      readonly unsubscribe: () => void
    }

let nextConnectionId = 1_000_000_000

class KrakenSession implements WsSession {
  private readonly subscriptions = new Map<string, Subscription>()
  private lastHeartbeat = Date.now()

  constructor(
    private readonly peer: WsPeer,
    private readonly ctx: VenueContext
  ) {
    nextConnectionId += 1
    peer.reply({
      channel: "status",
      type: "update",
      data: [{ version: "2.0.10", system: "online", api_version: "v2", connection_id: nextConnectionId }]
    })
  }

  get subscriptionCount(): number {
    return this.subscriptions.size
  }

  private series(spec: MarketSpec): Series {
    return this.ctx.model.series("kraken", spec.symbol)
  }

  private times() {
    const now = isoMicros(Date.now())
    return { time_in: now, time_out: now }
  }

  onMessage(text: string): void {
    const message = parseJsonObject(text)
    if (message === undefined) {
      this.peer.reply({ error: "Malformed request", success: false, ...this.times() })
      return
    }
    const method = message["method"]
    const reqId = message["req_id"]
    const idPart = typeof reqId === "number" ? { req_id: reqId } : {}
    if (method === "ping") {
      this.peer.reply({ method: "pong", ...idPart, ...this.times() })
      return
    }
    if (method !== "subscribe" && method !== "unsubscribe") {
      this.peer.reply({ error: "Method not found", method, success: false, ...idPart, ...this.times() })
      return
    }
    const params = message["params"]
    const record = typeof params === "object" && params !== null ? (params as Record<string, unknown>) : {}
    const channel = record["channel"]
    const symbols = stringArray(record["symbol"])
    if (typeof channel !== "string" || !["ticker", "trade", "book", "ohlc"].includes(channel)) {
      this.peer.reply({ error: "Channel not supported", method, success: false, ...idPart, ...this.times() })
      return
    }
    if (symbols === undefined || symbols.length === 0) {
      this.peer.reply({ error: "Missing symbol", method, success: false, ...idPart, ...this.times() })
      return
    }
    if (method === "subscribe" && !this.peer.subscribing()) return
    for (const symbol of symbols) {
      const spec = findWsSymbol(symbol)
      if (spec === undefined) {
        this.peer.reply({
          error: `Currency pair not supported ${symbol}`,
          method,
          success: false,
          symbol,
          ...idPart,
          ...this.times()
        })
        continue
      }
      if (method === "unsubscribe") this.unsubscribe(channel, spec, record, idPart)
      else this.subscribe(channel, spec, record, idPart)
    }
  }

  private subscribe(channel: string, spec: MarketSpec, params: Record<string, unknown>, idPart: object): void {
    const now = this.ctx.clock.now()
    const key = `${channel}:${spec.symbol}`
    const snapshot = params["snapshot"] !== false
    const fail = (error: string) =>
      this.peer.reply({ error, method: "subscribe", success: false, symbol: spec.symbol, ...idPart, ...this.times() })
    if (this.subscriptions.has(key)) {
      fail("Already subscribed")
      return
    }
    const ack = (extra: object) =>
      this.peer.reply({
        method: "subscribe",
        result: { channel, symbol: spec.symbol, snapshot, ...extra },
        success: true,
        ...idPart,
        ...this.times()
      })
    switch (channel) {
      case "ticker": {
        this.subscriptions.set(key, { channel: "ticker", spec })
        ack({ event_trigger: params["event_trigger"] === "bbo" ? "bbo" : "trades" })
        this.peer.send({ channel: "ticker", type: "snapshot", data: [this.tickerData(spec, now)] })
        return
      }
      case "trade": {
        const cursor = new TradeCursor(this.series(spec))
        this.subscriptions.set(key, { channel: "trade", spec, cursor })
        ack({})
        const trades = cursor.snapshot(now, snapshot ? 50 : 0)
        if (trades.length > 0)
          this.peer.send({ channel: "trade", type: "snapshot", data: trades.map((t) => this.tradeData(spec, t)) })
        return
      }
      case "ohlc": {
        const interval = typeof params["interval"] === "number" ? params["interval"] : 1
        if (!INTERVALS.includes(interval)) {
          fail("Invalid interval")
          return
        }
        const cursor = new CandleCursor(this.series(spec), fixedBucket(interval * MINUTE))
        this.subscriptions.set(key, { channel: "ohlc", spec, interval, cursor })
        ack({ interval, warnings: [] })
        const candles = cursor.recent(now, snapshot ? 10 : 1)
        this.sendOhlc(spec, interval, candles, "snapshot", now)
        return
      }
      case "book": {
        const depth = typeof params["depth"] === "number" ? params["depth"] : 10
        if (!BOOK_DEPTHS.includes(depth)) {
          fail("Invalid depth")
          return
        }
        const feed = this.ctx.book(spec)
        const book = truncateBook(feed.current(now).book, depth)
        const unsubscribe = feed.subscribe((event) => this.onBook(key, event))
        this.subscriptions.set(key, { channel: "book", spec, depth, sent: book, unsubscribe })
        ack({ depth })
        this.peer.send({
          channel: "book",
          type: "snapshot",
          data: [
            {
              symbol: spec.symbol,
              bids: book.bids.map(([p, q]) => ({ price: numPrice(spec, p), qty: numQty(spec, q) })),
              asks: book.asks.map(([p, q]) => ({ price: numPrice(spec, p), qty: numQty(spec, q) })),
              checksum: bookChecksum(spec, book)
            }
          ]
        })
        return
      }
    }
  }

  private unsubscribe(channel: string, spec: MarketSpec, params: Record<string, unknown>, idPart: object): void {
    const key = `${channel}:${spec.symbol}`
    const existing = this.subscriptions.get(key)
    if (existing === undefined) {
      this.peer.reply({
        error: "Subscription Not Found",
        method: "unsubscribe",
        success: false,
        symbol: spec.symbol,
        ...idPart,
        ...this.times()
      })
      return
    }
    if (existing.channel === "book") existing.unsubscribe()
    this.subscriptions.delete(key)
    const extra: Record<string, unknown> = {}
    if (existing.channel === "book") extra["depth"] = existing.depth
    if (existing.channel === "ohlc") extra["interval"] = params["interval"] ?? existing.interval
    this.peer.reply({
      method: "unsubscribe",
      result: { channel, symbol: spec.symbol, ...extra },
      success: true,
      ...idPart,
      ...this.times()
    })
  }

  private onBook(key: string, event: BookEvent): void {
    const current = this.subscriptions.get(key)
    if (current === undefined || current.channel !== "book") return
    const spec = current.spec
    const book = truncateBook(event.book, current.depth)
    const changes = diffBooks(current.sent, book)
    let bids = changes.bids
    let asks = changes.asks
    if (bids.length === 0 && asks.length === 0) {
      if (!event.heartbeat) return
      bids = book.bids.slice(0, 1)
      asks = book.asks.slice(0, 1)
    }
    const delivered = this.peer.send({
      channel: "book",
      type: "update",
      data: [
        {
          symbol: spec.symbol,
          bids: bids.map(([p, q]) => ({ price: numPrice(spec, p), qty: numQty(spec, q) })),
          asks: asks.map(([p, q]) => ({ price: numPrice(spec, p), qty: numQty(spec, q) })),
          checksum: bookChecksum(spec, book),
          timestamp: isoMicros(event.time)
        }
      ]
    })
    if (delivered) current.sent = book
  }

  private tickerData(spec: MarketSpec, now: number) {
    const series = this.series(spec)
    const second = Math.floor(now / 1000)
    const stats = series.stats(second - 86_400, second)
    const book = this.ctx.book(spec).current(now).book
    const w = stats.window
    const change = stats.lastPrice - stats.open
    return {
      symbol: spec.symbol,
      bid: numPrice(spec, book.bids[0]?.[0] ?? 0),
      bid_qty: numQty(spec, book.bids[0]?.[1] ?? 0),
      ask: numPrice(spec, book.asks[0]?.[0] ?? 0),
      ask_qty: numQty(spec, book.asks[0]?.[1] ?? 0),
      last: numPrice(spec, stats.lastPrice),
      volume: numQty(spec, w.volume),
      vwap: Number(vwapOf(spec, w.quote, w.volume, stats.lastPrice, spec.priceDecimals + 1)),
      low: numPrice(spec, stats.low),
      high: numPrice(spec, stats.high),
      change: numPrice(spec, change),
      change_pct: Number(fixed(stats.open > 0 ? (change / stats.open) * 100 : 0, 2)),
      timestamp: isoMicros(now)
    }
  }

  private tradeData(spec: MarketSpec, t: RawTrade) {
    return {
      symbol: spec.symbol,
      side: t.buy ? "buy" : "sell",
      price: numPrice(spec, t.price),
      qty: numQty(spec, t.amount),
      ord_type: t.id % 3 === 0 ? "limit" : "market",
      trade_id: t.id,
      timestamp: isoMicros(t.timestamp)
    }
  }

  private sendOhlc(spec: MarketSpec, interval: number, candles: RawCandle[], type: string, now: number): void {
    if (candles.length === 0) return
    this.peer.send({
      channel: "ohlc",
      type,
      timestamp: isoMicros(now),
      data: candles.map((c) => ({
        symbol: spec.symbol,
        open: numPrice(spec, c.open),
        high: numPrice(spec, c.high),
        low: numPrice(spec, c.low),
        close: numPrice(spec, c.close),
        trades: c.agg.count,
        volume: numQty(spec, c.agg.volume),
        vwap: Number(vwapOf(spec, c.agg.quote, c.agg.volume, c.close, spec.priceDecimals + 1)),
        interval_begin: isoMicros(c.start).replace(/\.\d+Z$/, ".000000000Z"),
        interval,
        timestamp: isoMicros(now)
      }))
    })
  }

  tick(now: number): void {
    for (const subscription of this.subscriptions.values()) {
      switch (subscription.channel) {
        case "ticker":
          this.peer.send({ channel: "ticker", type: "update", data: [this.tickerData(subscription.spec, now)] })
          break
        case "trade": {
          const trades = subscription.cursor.poll(now, this.ctx.clock.frozen)
          if (trades.length > 0) {
            this.peer.send({
              channel: "trade",
              type: "update",
              data: trades.map((t) => this.tradeData(subscription.spec, t))
            })
          }
          break
        }
        case "ohlc":
          this.sendOhlc(subscription.spec, subscription.interval, subscription.cursor.poll(now), "update", now)
          break
        case "book":
          break
      }
    }
    const wall = Date.now()
    if (this.subscriptions.size > 0 && wall - this.lastHeartbeat >= 1000) {
      this.lastHeartbeat = wall
      this.peer.send({ channel: "heartbeat" })
    }
  }

  dispose(): void {
    for (const subscription of this.subscriptions.values()) {
      if (subscription.channel === "book") subscription.unsubscribe()
    }
    this.subscriptions.clear()
  }
}
