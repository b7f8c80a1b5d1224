/** Binance spot: public REST (/api/v3/…) and raw WebSocket streams (/ws/…), with binance's field names and quirks. */

import type { BookEvent, BookLevels, Level } from "./book.js"
import { genericFault, withRetryAfter, type FaultSpec, type RawResponse } from "./faults.js"
import { fixed, padded } from "./format.js"
import { bucketBack, bucketStart, timeframeBucket, type Bucket } from "./intervals.js"
import { MARKETS, type MarketSpec } from "./markets.js"
import { secondOfTradeId, type RawCandle, type RawTrade, type Series } from "./model.js"
import {
  clamp,
  intParam,
  json,
  parseJsonObject,
  type RestRequest,
  type Venue,
  type VenueContext,
  type WsPeer,
  type WsSession
} from "./protocol.js"
import { CandleCursor, TradeCursor } from "./streams.js"

const INTERVALS = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"]
const DIGITS = 8

const error = (status: number, code: number, msg: string): RawResponse => json(status, { code, msg })
const invalidSymbol = (): RawResponse => error(400, -1121, "Invalid symbol.")
const missing = (name: string): RawResponse =>
  error(400, -1102, `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`)

const bySymbolId = (id: string): MarketSpec | undefined => MARKETS.binance.find((m) => m.id === id.toUpperCase())

const price = (spec: MarketSpec, ticks: number): string => padded(ticks, spec.priceDecimals, DIGITS)
const qty = (spec: MarketSpec, units: number): string => padded(units, spec.amountDecimals, DIGITS)
const quote = (spec: MarketSpec, tickUnits: number): string =>
  fixed(tickUnits / 10 ** (spec.priceDecimals + spec.amountDecimals), DIGITS)
const levels = (spec: MarketSpec, side: ReadonlyArray<Level>): Array<[string, string]> =>
  side.map(([p, q]) => [price(spec, p), qty(spec, q)])

const filters = (spec: MarketSpec) => {
  const tick = padded(1, spec.priceDecimals, DIGITS)
  const step = padded(1, spec.amountDecimals, DIGITS)
  return [
    { filterType: "PRICE_FILTER", minPrice: tick, maxPrice: "1000000.00000000", tickSize: tick },
    { filterType: "LOT_SIZE", minQty: step, maxQty: "9000.00000000", stepSize: step },
    { filterType: "ICEBERG_PARTS", limit: 10 },
    { filterType: "MARKET_LOT_SIZE", minQty: "0.00000000", maxQty: "100.00000000", stepSize: "0.00000000" },
    {
      filterType: "TRAILING_DELTA",
      minTrailingAboveDelta: 10,
      maxTrailingAboveDelta: 2000,
      minTrailingBelowDelta: 10,
      maxTrailingBelowDelta: 2000
    },
    {
      filterType: "PERCENT_PRICE_BY_SIDE",
      bidMultiplierUp: "5",
      bidMultiplierDown: "0.2",
      askMultiplierUp: "5",
      askMultiplierDown: "0.2",
      avgPriceMins: 5
    },
    {
      filterType: "NOTIONAL",
      minNotional: "5.00000000",
      applyMinToMarket: true,
      maxNotional: "9000000.00000000",
      applyMaxToMarket: false,
      avgPriceMins: 5
    },
    { filterType: "MAX_NUM_ORDERS", maxNumOrders: 200 },
    { filterType: "MAX_NUM_ALGO_ORDERS", maxNumAlgoOrders: 5 }
  ]
}

const symbolInfo = (spec: MarketSpec) => ({
  symbol: spec.id,
  status: "TRADING",
  baseAsset: spec.base,
  baseAssetPrecision: 8,
  quoteAsset: spec.quote,
  quotePrecision: 8,
  quoteAssetPrecision: 8,
  baseCommissionPrecision: 8,
  quoteCommissionPrecision: 8,
  orderTypes: ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
  icebergAllowed: true,
  ocoAllowed: true,
  otoAllowed: true,
  quoteOrderQtyMarketAllowed: true,
  allowTrailingStop: true,
  cancelReplaceAllowed: true,
  amendAllowed: true,
  isSpotTradingAllowed: true,
  isMarginTradingAllowed: true,
  filters: filters(spec),
  permissions: [],
  permissionSets: [["SPOT", "MARGIN"]],
  defaultSelfTradePreventionMode: "EXPIRE_MAKER",
  allowedSelfTradePreventionModes: ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
})

const ticker24h = (series: Series, now: number, bookAt: (spec: MarketSpec) => BookLevels) => {
  const spec = series.spec
  const second = Math.floor(now / 1000)
  const stats = series.stats(second - 86_400, second)
  const book = bookAt(spec)
  const bid = book.bids[0]
  const ask = book.asks[0]
  const w = stats.window
  const change = stats.lastPrice - stats.open
  return {
    symbol: spec.id,
    priceChange: price(spec, change),
    priceChangePercent: fixed(stats.open > 0 ? (change / stats.open) * 100 : 0, 3),
    weightedAvgPrice:
      w.volume > 0 ? fixed(w.quote / w.volume / 10 ** spec.priceDecimals, DIGITS) : price(spec, stats.lastPrice),
    prevClosePrice: price(spec, stats.previousClose),
    lastPrice: price(spec, stats.lastPrice),
    lastQty: qty(spec, stats.last?.amount ?? 0),
    bidPrice: price(spec, bid?.[0] ?? 0),
    bidQty: qty(spec, bid?.[1] ?? 0),
    askPrice: price(spec, ask?.[0] ?? 0),
    askQty: qty(spec, ask?.[1] ?? 0),
    openPrice: price(spec, stats.open),
    highPrice: price(spec, stats.high),
    lowPrice: price(spec, stats.low),
    volume: qty(spec, w.volume),
    quoteVolume: quote(spec, w.quote),
    openTime: now - 86_400_000,
    closeTime: now,
    firstId: w.firstId,
    lastId: w.lastId,
    count: w.count
  }
}

const kline = (spec: MarketSpec, c: RawCandle): unknown[] => [
  c.start,
  price(spec, c.open),
  price(spec, c.high),
  price(spec, c.low),
  price(spec, c.close),
  qty(spec, c.agg.volume),
  c.end - 1,
  quote(spec, c.agg.quote),
  c.agg.count,
  qty(spec, c.agg.buyVolume),
  quote(spec, c.agg.buyQuote),
  "0"
]

const aggTrade = (spec: MarketSpec, t: RawTrade) => ({
  a: t.id,
  p: price(spec, t.price),
  q: qty(spec, t.amount),
  f: t.id,
  l: t.id,
  T: t.timestamp,
  m: !t.buy,
  M: true
})

const rawTrade = (spec: MarketSpec, t: RawTrade) => ({
  id: t.id,
  price: price(spec, t.price),
  qty: qty(spec, t.amount),
  quoteQty: quote(spec, t.price * t.amount),
  time: t.timestamp,
  isBuyerMaker: !t.buy,
  isBestMatch: true
})

/** Symbols of `symbol=` / `symbols=[…]`; undefined means all, a RawResponse is an error. */
const requestedSymbols = (params: URLSearchParams): MarketSpec[] | undefined | RawResponse => {
  const single = params.get("symbol")
  if (single !== null) {
    const spec = bySymbolId(single)
    return spec === undefined ? invalidSymbol() : [spec]
  }
  const list = params.get("symbols")
  if (list === null) return undefined
  let ids: unknown
  try {
    ids = JSON.parse(list)
  } catch {
    ids = undefined
  }
  if (!Array.isArray(ids) || !ids.every((id): id is string => typeof id === "string")) {
    return error(
      400,
      -1100,
      "Illegal characters found in parameter 'symbols'; legal range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'."
    )
  }
  const specs: MarketSpec[] = []
  for (const id of ids) {
    const spec = bySymbolId(id)
    if (spec === undefined) return invalidSymbol()
    specs.push(spec)
  }
  return specs
}

const isResponse = (value: unknown): value is RawResponse =>
  typeof value === "object" && value !== null && "status" in value && "body" in value

export class BinanceVenue implements Venue {
  readonly id = "binance" as const
  readonly marketListPaths: ReadonlySet<string> = new Set(["/api/v3/exchangeInfo"])

  constructor(private readonly ctx: VenueContext) {}

  private series(spec: MarketSpec): Series {
    return this.ctx.model.series("binance", spec.symbol)
  }

  private bookAt = (spec: MarketSpec): BookLevels => this.ctx.book(spec).current(this.ctx.clock.now()).book

  private requireSymbol(params: URLSearchParams): MarketSpec | RawResponse {
    const id = params.get("symbol")
    if (id === null || id === "") return missing("symbol")
    return bySymbolId(id) ?? invalidSymbol()
  }

  rest(request: RestRequest): RawResponse {
    const { params, now } = request
    switch (request.path) {
      case "/api/v3/ping":
        return json(200, {})
      case "/api/v3/time":
        return json(200, { serverTime: now })
      case "/api/v3/exchangeInfo": {
        const specs = requestedSymbols(params)
        if (isResponse(specs)) return specs
        return json(200, {
          timezone: "UTC",
          serverTime: now,
          rateLimits: [
            { rateLimitType: "REQUEST_WEIGHT", interval: "MINUTE", intervalNum: 1, limit: 6000 },
            { rateLimitType: "ORDERS", interval: "SECOND", intervalNum: 10, limit: 100 },
            { rateLimitType: "ORDERS", interval: "DAY", intervalNum: 1, limit: 200000 },
            { rateLimitType: "RAW_REQUESTS", interval: "MINUTE", intervalNum: 5, limit: 61000 }
          ],
          exchangeFilters: [],
          symbols: (specs ?? MARKETS.binance).map(symbolInfo)
        })
      }
      case "/api/v3/ticker/24hr": {
        const specs = requestedSymbols(params)
        if (isResponse(specs)) return specs
        const rows = (specs ?? MARKETS.binance).map((spec) => ticker24h(this.series(spec), now, this.bookAt))
        return json(200, params.has("symbol") ? rows[0] : rows)
      }
      case "/api/v3/ticker/price": {
        const specs = requestedSymbols(params)
        if (isResponse(specs)) return specs
        const rows = (specs ?? MARKETS.binance).map((spec) => ({
          symbol: spec.id,
          price: price(spec, this.series(spec).lastPriceBefore(Math.floor(now / 1000)))
        }))
        return json(200, params.has("symbol") ? rows[0] : rows)
      }
      case "/api/v3/ticker/bookTicker": {
        const specs = requestedSymbols(params)
        if (isResponse(specs)) return specs
        const rows = (specs ?? MARKETS.binance).map((spec) => {
          const book = this.bookAt(spec)
          return {
            symbol: spec.id,
            bidPrice: price(spec, book.bids[0]?.[0] ?? 0),
            bidQty: qty(spec, book.bids[0]?.[1] ?? 0),
            askPrice: price(spec, book.asks[0]?.[0] ?? 0),
            askQty: qty(spec, book.asks[0]?.[1] ?? 0)
          }
        })
        return json(200, params.has("symbol") ? rows[0] : rows)
      }
      case "/api/v3/avgPrice": {
        const spec = this.requireSymbol(params)
        if (isResponse(spec)) return spec
        const second = Math.floor(now / 1000)
        const agg = this.series(spec).aggregate(second - 300, second)
        const avg =
          agg.volume > 0
            ? fixed(agg.quote / agg.volume / 10 ** spec.priceDecimals, DIGITS)
            : price(spec, this.series(spec).lastPriceBefore(second))
        return json(200, { mins: 5, price: avg, closeTime: now })
      }
      case "/api/v3/klines":
      case "/api/v3/uiKlines":
        return this.klines(params, now)
      case "/api/v3/depth": {
        const spec = this.requireSymbol(params)
        if (isResponse(spec)) return spec
        const limit = clamp(intParam(params, "limit") ?? 100, 1, 5000)
        const state = this.ctx.book(spec).current(now)
        return json(200, {
          lastUpdateId: state.id,
          bids: levels(spec, state.book.bids.slice(0, limit)),
          asks: levels(spec, state.book.asks.slice(0, limit))
        })
      }
      case "/api/v3/trades":
      case "/api/v3/historicalTrades": {
        const spec = this.requireSymbol(params)
        if (isResponse(spec)) return spec
        const limit = clamp(intParam(params, "limit") ?? 500, 1, 1000)
        const trades = this.tradesFor(spec, params, limit, now)
        return json(
          200,
          trades.map((t) => rawTrade(spec, t))
        )
      }
      case "/api/v3/aggTrades": {
        const spec = this.requireSymbol(params)
        if (isResponse(spec)) return spec
        const limit = clamp(intParam(params, "limit") ?? 500, 1, 1000)
        const trades = this.tradesFor(spec, params, limit, now)
        return json(
          200,
          trades.map((t) => aggTrade(spec, t))
        )
      }
      default:
        return error(404, -5000, `Path ${request.path}, Method ${request.method} is invalid`)
    }
  }

  private tradesFor(spec: MarketSpec, params: URLSearchParams, limit: number, now: number): RawTrade[] {
    const series = this.series(spec)
    const visible = Math.floor(now / 1000)
    const fromId = intParam(params, "fromId")
    const startTime = intParam(params, "startTime")
    const endTime = intParam(params, "endTime")
    if (fromId !== undefined) {
      return series
        .tradesBetween(secondOfTradeId(fromId), visible, limit + 16)
        .filter((t) => t.id >= fromId)
        .slice(0, limit)
    }
    if (startTime !== undefined) {
      const end = endTime ?? startTime + 3_600_000
      return series
        .tradesBetween(Math.floor(startTime / 1000), Math.min(visible, Math.floor(end / 1000) + 1))
        .filter((t) => t.timestamp >= startTime && t.timestamp <= end)
        .slice(0, limit)
    }
    if (endTime !== undefined) {
      return series
        .tradesBefore(Math.min(visible, Math.floor(endTime / 1000) + 1), limit + 16)
        .filter((t) => t.timestamp <= endTime)
        .slice(-limit)
    }
    return series.tradesBefore(visible, limit)
  }

  private klines(params: URLSearchParams, now: number): RawResponse {
    const spec = this.requireSymbol(params)
    if (isResponse(spec)) return spec
    const interval = params.get("interval")
    if (interval === null) return missing("interval")
    const bucket = INTERVALS.includes(interval) ? timeframeBucket(interval) : undefined
    if (bucket === undefined) return error(400, -1120, "Invalid interval.")
    const limit = clamp(intParam(params, "limit") ?? 500, 1, 1000)
    const startTime = intParam(params, "startTime")
    const endTime = intParam(params, "endTime")
    const series = this.series(spec)
    const candles = this.klineRange(series, bucket, limit, now, startTime, endTime)
    return json(
      200,
      candles.map((c) => kline(spec, c))
    )
  }

  private klineRange(
    series: Series,
    bucket: Bucket,
    limit: number,
    now: number,
    startTime: number | undefined,
    endTime: number | undefined
  ): RawCandle[] {
    if (startTime !== undefined) {
      return series.candles(bucket, startTime, limit, now).filter((c) => endTime === undefined || c.start <= endTime)
    }
    if (endTime !== undefined) {
      const last = bucketStart(Math.min(endTime, now), bucket)
      return series.candles(bucket, bucketBack(last, bucket, limit - 1), limit, now).filter((c) => c.start <= endTime)
    }
    return series.latestCandles(bucket, limit, now)
  }

  faultResponse(spec: FaultSpec, request: RestRequest): RawResponse {
    switch (spec.kind) {
      case "rate-limit-429":
        return withRetryAfter(
          error(
            429,
            -1003,
            "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
          ),
          spec
        )
      case "ban-418": {
        const until = spec.bannedUntil ?? request.now + (spec.retryAfter ?? 120) * 1000
        return withRetryAfter(
          error(
            418,
            -1003,
            `Way too much request weight used; IP banned until ${until}. Please use WebSocket Streams for live updates to avoid bans.`
          ),
          spec
        )
      }
      case "error-envelope-200":
        return error(200, -1001, "Internal error; unable to process your request. Please try again.")
      case "error-503-json":
        return withRetryAfter(
          error(503, -1008, "Server is currently overloaded with other requests. Please try again in a few minutes."),
          spec
        )
      default:
        return genericFault(spec, () => this.rest(request))
    }
  }

  acceptsWsPath(path: string): boolean {
    return path === "/ws" || path.startsWith("/ws/")
  }

  openSession(peer: WsPeer, path: string): WsSession {
    const session = new BinanceSession(peer, this.ctx, this.bookAt)
    const initial = path.startsWith("/ws/") ? path.slice(4) : ""
    if (initial.includes("@")) session.subscribeStreams(initial.split("/"))
    return session
  }
}

type Stream =
  | { readonly kind: "ticker" | "miniTicker" | "bookTicker"; readonly spec: MarketSpec }
  | { readonly kind: "allTickers" | "allMiniTickers" }
  | { readonly kind: "trade" | "aggTrade"; readonly spec: MarketSpec; readonly cursor: TradeCursor }
  | { readonly kind: "kline"; readonly spec: MarketSpec; readonly interval: string; readonly cursor: CandleCursor }
  | { readonly kind: "depth"; readonly spec: MarketSpec; readonly unsubscribe: () => void }
  | { readonly kind: "partialDepth"; readonly spec: MarketSpec; readonly levels: number }

class BinanceSession implements WsSession {
  private readonly streams = new Map<string, Stream>()

  constructor(
    private readonly peer: WsPeer,
    private readonly ctx: VenueContext,
    private readonly bookAt: (spec: MarketSpec) => BookLevels
  ) {}

  get subscriptionCount(): number {
    return this.streams.size
  }

  private series(spec: MarketSpec): Series {
    return this.ctx.model.series("binance", spec.symbol)
  }

  onMessage(text: string): void {
    const message = parseJsonObject(text)
    if (message === undefined) {
      this.peer.reply({ error: { code: 3, msg: "Invalid JSON: expected value at line 1 column 1" } })
      return
    }
    const id = message["id"] ?? null
    const method = message["method"]
    const params = message["params"]
    switch (method) {
      case "SUBSCRIBE":
      case "UNSUBSCRIBE": {
        if (!Array.isArray(params) || !params.every((p): p is string => typeof p === "string")) {
          this.peer.reply({ error: { code: 2, msg: "Invalid request: 'params' must be an array of strings" }, id })
          return
        }
        const invalid = params.find((name) => parseStream(name) === undefined)
        if (invalid !== undefined) {
          this.peer.reply({ error: { code: 2, msg: `Invalid request: unknown stream name ${invalid}` }, id })
          return
        }
        if (method === "UNSUBSCRIBE") {
          for (const name of params) this.unsubscribe(name)
          this.peer.reply({ result: null, id })
          return
        }
        if (!this.peer.subscribing()) return
        this.peer.reply({ result: null, id })
        this.subscribeStreams(params)
        return
      }
      case "LIST_SUBSCRIPTIONS":
        this.peer.reply({ result: [...this.streams.keys()], id })
        return
      case "SET_PROPERTY":
        this.peer.reply({ result: null, id })
        return
      case "GET_PROPERTY":
        this.peer.reply({ result: false, id })
        return
      default:
        this.peer.reply({ error: { code: 2, msg: `Invalid request: unknown method ${String(method)}` }, id })
    }
  }

  subscribeStreams(names: ReadonlyArray<string>): void {
    const now = this.ctx.clock.now()
    for (const name of names) {
      if (this.streams.has(name)) continue
      const parsed = parseStream(name)
      if (parsed === undefined) continue
      const stream = this.createStream(parsed)
      this.streams.set(name, stream)
      this.pushInitial(stream, now)
    }
  }

  private createStream(parsed: ParsedStream): Stream {
    switch (parsed.kind) {
      case "trade":
      case "aggTrade":
        return { kind: parsed.kind, spec: parsed.spec, cursor: new TradeCursor(this.series(parsed.spec)) }
      case "kline":
        return {
          kind: "kline",
          spec: parsed.spec,
          interval: parsed.interval,
          cursor: new CandleCursor(this.series(parsed.spec), parsed.bucket)
        }
      case "depth": {
        const spec = parsed.spec
        const unsubscribe = this.ctx.book(spec).subscribe((event) => this.sendDepth(spec, event))
        return { kind: "depth", spec, unsubscribe }
      }
      case "partialDepth":
        return { kind: "partialDepth", spec: parsed.spec, levels: parsed.levels }
      case "allTickers":
      case "allMiniTickers":
        return { kind: parsed.kind }
      default:
        return { kind: parsed.kind, spec: parsed.spec }
    }
  }

  private unsubscribe(name: string): void {
    const stream = this.streams.get(name)
    if (stream === undefined) return
    if (stream.kind === "depth") stream.unsubscribe()
    this.streams.delete(name)
  }

  private pushInitial(stream: Stream, now: number): void {
    switch (stream.kind) {
      case "trade":
      case "aggTrade":
        for (const trade of stream.cursor.snapshot(now, 1)) this.peer.send(this.tradeEvent(stream, trade, now))
        return
      case "depth":
        return
      default:
        this.push(stream, now)
    }
  }

  tick(now: number): void {
    for (const stream of this.streams.values()) this.push(stream, now)
  }

  private push(stream: Stream, now: number): void {
    switch (stream.kind) {
      case "ticker":
        this.peer.send(this.tickerEvent(stream.spec, now))
        return
      case "miniTicker":
        this.peer.send(this.miniTickerEvent(stream.spec, now))
        return
      case "allTickers":
        this.peer.send(MARKETS.binance.map((spec) => this.tickerEvent(spec, now)))
        return
      case "allMiniTickers":
        this.peer.send(MARKETS.binance.map((spec) => this.miniTickerEvent(spec, now)))
        return
      case "bookTicker": {
        const spec = stream.spec
        const state = this.ctx.book(spec).current(now)
        this.peer.send({
          u: state.id,
          s: spec.id,
          b: price(spec, state.book.bids[0]?.[0] ?? 0),
          B: qty(spec, state.book.bids[0]?.[1] ?? 0),
          a: price(spec, state.book.asks[0]?.[0] ?? 0),
          A: qty(spec, state.book.asks[0]?.[1] ?? 0)
        })
        return
      }
      case "trade":
      case "aggTrade":
        for (const trade of stream.cursor.poll(now, this.ctx.clock.frozen)) {
          this.peer.send(this.tradeEvent(stream, trade, now))
        }
        return
      case "kline":
        for (const candle of stream.cursor.poll(now)) this.peer.send(this.klineEvent(stream, candle, now))
        return
      case "partialDepth": {
        const spec = stream.spec
        const state = this.ctx.book(spec).current(now)
        this.peer.send({
          lastUpdateId: state.id,
          bids: levels(spec, state.book.bids.slice(0, stream.levels)),
          asks: levels(spec, state.book.asks.slice(0, stream.levels))
        })
        return
      }
      case "depth":
        return
    }
  }

  private tickerEvent(spec: MarketSpec, now: number) {
    const t = ticker24h(this.series(spec), now, this.bookAt)
    return {
      e: "24hrTicker",
      E: now,
      s: spec.id,
      p: t.priceChange,
      P: t.priceChangePercent,
      w: t.weightedAvgPrice,
      x: t.prevClosePrice,
      c: t.lastPrice,
      Q: t.lastQty,
      b: t.bidPrice,
      B: t.bidQty,
      a: t.askPrice,
      A: t.askQty,
      o: t.openPrice,
      h: t.highPrice,
      l: t.lowPrice,
      v: t.volume,
      q: t.quoteVolume,
      O: t.openTime,
      C: t.closeTime,
      F: t.firstId,
      L: t.lastId,
      n: t.count
    }
  }

  private miniTickerEvent(spec: MarketSpec, now: number) {
    const t = ticker24h(this.series(spec), now, this.bookAt)
    return {
      e: "24hrMiniTicker",
      E: now,
      s: spec.id,
      c: t.lastPrice,
      o: t.openPrice,
      h: t.highPrice,
      l: t.lowPrice,
      v: t.volume,
      q: t.quoteVolume
    }
  }

  private tradeEvent(
    stream: { readonly kind: "trade" | "aggTrade"; readonly spec: MarketSpec },
    t: RawTrade,
    now: number
  ) {
    const spec = stream.spec
    const common = { p: price(spec, t.price), q: qty(spec, t.amount), T: t.timestamp, m: !t.buy, M: true }
    return stream.kind === "trade"
      ? { e: "trade", E: now, s: spec.id, t: t.id, ...common }
      : { e: "aggTrade", E: now, s: spec.id, a: t.id, ...common, f: t.id, l: t.id }
  }

  private klineEvent(stream: { readonly spec: MarketSpec; readonly interval: string }, c: RawCandle, now: number) {
    const spec = stream.spec
    return {
      e: "kline",
      E: now,
      s: spec.id,
      k: {
        t: c.start,
        T: c.end - 1,
        s: spec.id,
        i: stream.interval,
        f: c.agg.firstId,
        L: c.agg.lastId,
        o: price(spec, c.open),
        c: price(spec, c.close),
        h: price(spec, c.high),
        l: price(spec, c.low),
        v: qty(spec, c.agg.volume),
        n: c.agg.count,
        x: c.closed,
        q: quote(spec, c.agg.quote),
        V: qty(spec, c.agg.buyVolume),
        Q: quote(spec, c.agg.buyQuote),
        B: "0"
      }
    }
  }

  private sendDepth(spec: MarketSpec, event: BookEvent): void {
    this.peer.send({
      e: "depthUpdate",
      E: event.time,
      s: spec.id,
      U: event.previousId + 1,
      u: event.id,
      b: levels(spec, event.changes.bids),
      a: levels(spec, event.changes.asks)
    })
  }

  dispose(): void {
    for (const name of [...this.streams.keys()]) this.unsubscribe(name)
  }
}

type ParsedStream =
  | { readonly kind: "ticker" | "miniTicker" | "bookTicker" | "trade" | "aggTrade"; readonly spec: MarketSpec }
  | { readonly kind: "allTickers" | "allMiniTickers" }
  | { readonly kind: "kline"; readonly spec: MarketSpec; readonly interval: string; readonly bucket: Bucket }
  | { readonly kind: "depth"; readonly spec: MarketSpec }
  | { readonly kind: "partialDepth"; readonly spec: MarketSpec; readonly levels: number }

const parseStream = (name: string): ParsedStream | undefined => {
  if (name === "!ticker@arr") return { kind: "allTickers" }
  if (name === "!miniTicker@arr") return { kind: "allMiniTickers" }
  const [symbolPart, channel, rate] = name.split("@")
  const spec = MARKETS.binance.find((m) => m.id.toLowerCase() === symbolPart)
  if (spec === undefined || channel === undefined) return undefined
  if (rate !== undefined && rate !== "100ms" && rate !== "1000ms") return undefined
  if (channel === "ticker" || channel === "miniTicker" || channel === "bookTicker" || channel === "trade") {
    return rate === undefined ? { kind: channel, spec } : undefined
  }
  if (channel === "aggTrade") return rate === undefined ? { kind: "aggTrade", spec } : undefined
  if (channel === "depth") return { kind: "depth", spec }
  const partial = /^depth(5|10|20)$/.exec(channel)
  if (partial !== null) return { kind: "partialDepth", spec, levels: Number(partial[1]) }
  const klineMatch = /^kline_(\w+)$/.exec(channel)
  if (klineMatch !== null && rate === undefined) {
    const interval = klineMatch[1] ?? ""
    const bucket = INTERVALS.includes(interval) ? timeframeBucket(interval) : undefined
    return bucket === undefined ? undefined : { kind: "kline", spec, interval, bucket }
  }
  return undefined
}
