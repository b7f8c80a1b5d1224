/**
 * The deterministic simulated market.
 *
 * Prices follow a geometric Brownian motion sampled every second. It is generated top-down so that any
 * second can be reached without simulating from the origin: a daily log-price walk (weakly mean-reverting,
 * pinned near the asset's anchor on 2024-01-01) shared by all venues, a per-day Brownian bridge at minute
 * resolution (also shared), and a per-venue Brownian bridge at second resolution. Trades are drawn per second
 * from the walk; candles, tickers and books are aggregates of those trades. A trade of second s becomes
 * visible once the model clock has reached s + 1 s, so every answer is a function of floor(t / 1000).
 *
 * The markets open at `historyStart` (by default one year before the emulator's start time): no trades,
 * candles or statistics exist before it. Values never depend on it, only how far back history reaches, which
 * bounds the work behind full-history requests (kraken always serves 720 entries, 720 weeks would be 14 years).
 */

import { BOOK_LEVELS, generateBook, type BookLevels } from "./book.js"
import { pow10, scaled } from "./format.js"
import { bucketBack, bucketEnd, bucketStart, fixedBucket, timeframeBucket, type Bucket } from "./intervals.js"
import {
  ASSETS,
  MARKETS,
  findMarketById,
  findMarketBySymbol,
  type AssetSpec,
  type EmulatedExchange,
  type MarketSpec
} from "./markets.js"
import { Rng, drawFromThresholds, hash, normalFromHash, poissonThresholds } from "./random.js"

const PIN_DAY = 19_723 // 2024-01-01
const MINUTES_PER_DAY = 1440
const SECONDS_PER_DAY = 86_400
const MEAN_REVERSION_PER_DAY = 1 / 365
const ID_EPOCH_SECOND = 1_000_000_000
const MAX_TRADES_PER_SECOND = 15
/** How far back the "last trade" search goes before falling back to the walk price. */
const LAST_TRADE_LOOKBACK_MINUTES = 7 * MINUTES_PER_DAY
export const DEFAULT_HISTORY_MS = 365 * SECONDS_PER_DAY * 1000
const NO_TRADES: ReadonlyArray<RawTrade> = []

/** Trade ids encode their second, so a trade can be located from its id alone. */
export const tradeId = (second: number, index: number): number => (second - ID_EPOCH_SECOND) * 16 + index
export const secondOfTradeId = (id: number): number => Math.floor(id / 16) + ID_EPOCH_SECOND

export interface RawTrade {
  readonly id: number
  readonly timestamp: number
  /** ticks */
  readonly price: number
  /** lot units */
  readonly amount: number
  readonly buy: boolean
}

/** Aggregate of a set of trades; prices in ticks, volumes in lot units, quote sums in ticks × units. */
export interface Agg {
  count: number
  open: number
  high: number
  low: number
  close: number
  volume: number
  quote: number
  buyVolume: number
  buyQuote: number
  firstId: number
  lastId: number
}

const emptyAgg = (): Agg => ({
  count: 0,
  open: -1,
  high: -1,
  low: -1,
  close: -1,
  volume: 0,
  quote: 0,
  buyVolume: 0,
  buyQuote: 0,
  firstId: -1,
  lastId: -1
})

const mergeAgg = (into: Agg, from: Agg): void => {
  if (from.count === 0) return
  if (into.count === 0) {
    into.open = from.open
    into.high = from.high
    into.low = from.low
    into.firstId = from.firstId
  } else {
    if (from.high > into.high) into.high = from.high
    if (from.low < into.low) into.low = from.low
  }
  into.close = from.close
  into.lastId = from.lastId
  into.count += from.count
  into.volume += from.volume
  into.quote += from.quote
  into.buyVolume += from.buyVolume
  into.buyQuote += from.buyQuote
}

const addTrade = (into: Agg, trade: RawTrade): void => {
  if (into.count === 0) {
    into.open = trade.price
    into.high = trade.price
    into.low = trade.price
    into.firstId = trade.id
  } else {
    if (trade.price > into.high) into.high = trade.price
    if (trade.price < into.low) into.low = trade.price
  }
  into.close = trade.price
  into.lastId = trade.id
  into.count += 1
  into.volume += trade.amount
  into.quote += trade.price * trade.amount
  if (trade.buy) {
    into.buyVolume += trade.amount
    into.buyQuote += trade.price * trade.amount
  }
}

/** Bounded insertion-order cache. */
class Cache<V> {
  private readonly map = new Map<number, V>()
  constructor(private readonly capacity: number) {}
  get(key: number): V | undefined {
    return this.map.get(key)
  }
  set(key: number, value: V): void {
    if (this.map.size >= this.capacity) {
      const oldest = this.map.keys().next()
      if (oldest.done !== true) this.map.delete(oldest.value)
    }
    this.map.set(key, value)
  }
}

/** Daily and minute log-price path of one asset, shared by every venue listing it. */
class AssetPath {
  private readonly forward: number[] = []
  private readonly backward: number[] = []
  private readonly key: number
  private readonly mean: number
  private readonly dailySigma: number
  private readonly minuteSigma: number
  private readonly bridges = new Cache<Float64Array>(32)

  constructor(seed: number, asset: AssetSpec) {
    this.key = hash(seed, asset.index, 0xa55e7)
    this.mean = Math.log(asset.anchor)
    this.dailySigma = asset.annualVolatility / Math.sqrt(365)
    this.minuteSigma = this.dailySigma / Math.sqrt(MINUTES_PER_DAY)
    const pin = this.mean + 0.06 * normalFromHash(hash(this.key, 1))
    this.forward.push(pin)
    this.backward.push(pin)
  }

  get secondSigma(): number {
    return this.minuteSigma / Math.sqrt(60)
  }

  /** Log price at 00:00 UTC of `day` (days since epoch). */
  dayLog(day: number): number {
    const offset = day - PIN_DAY
    const path = offset >= 0 ? this.forward : this.backward
    const index = Math.abs(offset)
    const direction = offset >= 0 ? 2 : 3
    while (path.length <= index) {
      const k = path.length - 1
      const previous = path[k] ?? this.mean
      const z = normalFromHash(hash(this.key, direction, k))
      path.push(previous + MEAN_REVERSION_PER_DAY * (this.mean - previous) + this.dailySigma * z)
    }
    return path[index] ?? this.mean
  }

  /** Log price at the start of `minute` (minutes since epoch). */
  minuteLog(minute: number): number {
    const day = Math.floor(minute / MINUTES_PER_DAY)
    return this.bridge(day)[minute - day * MINUTES_PER_DAY] ?? this.dayLog(day)
  }

  private bridge(day: number): Float64Array {
    const cached = this.bridges.get(day)
    if (cached !== undefined) return cached
    const start = this.dayLog(day)
    const end = this.dayLog(day + 1)
    const rng = new Rng(hash(this.key, 4, day))
    const path = new Float64Array(MINUTES_PER_DAY + 1)
    for (let i = 1; i <= MINUTES_PER_DAY; i++) path[i] = (path[i - 1] ?? 0) + this.minuteSigma * rng.increment()
    const drift = end - start - (path[MINUTES_PER_DAY] ?? 0)
    for (let i = 0; i <= MINUTES_PER_DAY; i++) path[i] = start + (path[i] ?? 0) + (i / MINUTES_PER_DAY) * drift
    this.bridges.set(day, path)
    return path
  }
}

/** Candle in exact integer units; `open`…`close` are -1 only before any trade was ever found. */
export interface RawCandle {
  readonly start: number
  readonly end: number
  readonly agg: Agg
  readonly open: number
  readonly high: number
  readonly low: number
  readonly close: number
  readonly closed: boolean
}

export interface RawTicker {
  readonly second: number
  readonly window: Agg
  readonly last: RawTrade | undefined
  readonly lastPrice: number
  readonly open: number
  readonly high: number
  readonly low: number
  readonly previousClose: number
}

/** One market on one venue: its trades and every aggregate derived from them. */
export class Series {
  readonly key: number
  private readonly scratch = new Float64Array(61)
  private readonly tradeCounts: ReadonlyArray<number>
  private readonly meanUnits: number
  private readonly tickScale: number
  private readonly minuteSummaries = new Cache<Agg>(50_000)
  private readonly daySummaries = new Map<number, Agg>()
  private readonly minuteTradeCache = new Cache<ReadonlyArray<RawTrade>>(16)
  private readonly aggregateMemo = new Map<string, Agg>()

  private readonly firstMinute: number

  constructor(
    readonly spec: MarketSpec,
    seed: number,
    private readonly path: AssetPath,
    /** ms epoch at which the market opens */
    readonly historyStart: number
  ) {
    this.firstMinute = Math.ceil(historyStart / 60_000)
    this.key = hash(seed, spec.exchangeIndex, spec.asset.index, 0x5e71e5)
    this.tradeCounts = poissonThresholds(spec.tradesPerSecond, MAX_TRADES_PER_SECOND)
    this.meanUnits = (spec.meanTradeSize / spec.tradesPerSecond) * pow10(spec.amountDecimals)
    this.tickScale = pow10(spec.priceDecimals)
  }

  /** The walk itself (no trade needed), in ticks; a fallback where no trade exists. */
  walkTicks(second: number): number {
    const minute = Math.floor(second / 60)
    const log = this.path.minuteLog(minute) + Math.log1p(this.spec.basis)
    return Math.max(1, Math.round(Math.exp(log) * this.tickScale))
  }

  /**
   * Simulates one minute. The summary is computed from per-second draws only; individual trades (timestamps,
   * split sizes) come from a second stream, so asking for the trades never changes the summary.
   */
  private simulateMinute(minute: number, out: RawTrade[] | undefined): Agg {
    const spec = this.spec
    const open = this.path.minuteLog(minute)
    const close = this.path.minuteLog(minute + 1)
    const rng = new Rng(hash(this.key, minute, 1))
    const quiet = rng.next() < spec.quietMinuteProbability
    const w = this.scratch
    const sigma = this.path.secondSigma
    w[0] = 0
    for (let j = 1; j <= 60; j++) w[j] = (w[j - 1] ?? 0) + sigma * rng.increment()
    const drift = close - open - (w[60] ?? 0)
    const agg = emptyAgg()
    if (quiet) return agg
    const detail = out === undefined ? undefined : new Rng(hash(this.key, minute, 2))
    const base = Math.exp(open + Math.log1p(spec.basis)) * this.tickScale
    let previousTicks = Math.round(base)
    for (let j = 0; j < 60; j++) {
      const count = drawFromThresholds(rng.nextUint32(), this.tradeCounts)
      if (count === 0) continue
      // |x| stays far below 1e-2 within a minute, where this cubic is exact to ~1e-12 of the price
      const x = (w[j + 1] ?? 0) + ((j + 1) / 60) * drift
      const ticks = Math.max(1, Math.round(base * (1 + x * (1 + x * (0.5 + x / 6)))))
      // one draw, split by bits: 16 for the size (3u², mean 1), 6 for the side, 4 + 6 for rare large trades
      const r = rng.nextUint32()
      const u = (r >>> 16) / 65536
      let units = Math.round(count * this.meanUnits * 3 * u * u)
      if ((r & 63) === 0) units *= 5 + ((r >>> 6) & 15)
      units = Math.max(count, units)
      const buyShare = ticks > previousTicks ? 45 : ticks < previousTicks ? 19 : 32
      const buy = ((r >>> 10) & 63) < buyShare
      previousTicks = ticks
      const second = minute * 60 + j
      if (agg.count === 0) {
        agg.open = ticks
        agg.high = ticks
        agg.low = ticks
        agg.firstId = tradeId(second, 0)
      } else {
        if (ticks > agg.high) agg.high = ticks
        if (ticks < agg.low) agg.low = ticks
      }
      agg.close = ticks
      agg.lastId = tradeId(second, count - 1)
      agg.count += count
      agg.volume += units
      agg.quote += ticks * units
      if (buy) {
        agg.buyVolume += units
        agg.buyQuote += ticks * units
      }
      if (out !== undefined && detail !== undefined) this.split(second, count, ticks, units, buy, detail, out)
    }
    return agg
  }

  private split(
    second: number,
    count: number,
    ticks: number,
    units: number,
    buy: boolean,
    rng: Rng,
    out: RawTrade[]
  ): void {
    const offsets: number[] = []
    const cumulative: number[] = []
    let total = 0
    for (let i = 0; i < count; i++) {
      offsets.push(Math.floor(rng.next() * 1000))
      total += 0.05 + rng.next()
      cumulative.push(total)
    }
    offsets.sort((a, b) => a - b)
    // cut points on the cumulative weights: the shares are >= 0 and add up to exactly `spare`
    const spare = units - count
    let previousCut = 0
    for (let i = 0; i < count; i++) {
      const cut = i === count - 1 ? spare : Math.floor((spare * (cumulative[i] ?? total)) / total)
      const share = Math.max(0, cut - previousCut)
      previousCut = Math.max(previousCut, cut)
      out.push({
        id: tradeId(second, i),
        timestamp: second * 1000 + (offsets[i] ?? 0),
        amount: 1 + share,
        price: ticks,
        buy
      })
    }
  }

  minuteSummary(minute: number): Agg {
    if (minute < this.firstMinute) return emptyAgg()
    const cached = this.minuteSummaries.get(minute)
    if (cached !== undefined) return cached
    const agg = this.simulateMinute(minute, undefined)
    this.minuteSummaries.set(minute, agg)
    return agg
  }

  minuteTrades(minute: number): ReadonlyArray<RawTrade> {
    if (minute < this.firstMinute) return NO_TRADES
    const cached = this.minuteTradeCache.get(minute)
    if (cached !== undefined) return cached
    const trades: RawTrade[] = []
    this.simulateMinute(minute, trades)
    this.minuteTradeCache.set(minute, trades)
    return trades
  }

  private daySummary(day: number): Agg {
    const cached = this.daySummaries.get(day)
    if (cached !== undefined) return cached
    const agg = emptyAgg()
    const first = day * MINUTES_PER_DAY
    for (let m = first; m < first + MINUTES_PER_DAY; m++) {
      if (m >= this.firstMinute) mergeAgg(agg, this.minuteSummaries.get(m) ?? this.simulateMinute(m, undefined))
    }
    this.daySummaries.set(day, agg)
    return agg
  }

  /** Aggregate of the trades of seconds [from, to); streams ask for the same windows on every push. */
  aggregate(from: number, to: number): Agg {
    const key = `${from}:${to}`
    const memo = this.aggregateMemo.get(key)
    if (memo !== undefined) return memo
    const agg = this.computeAggregate(from, to)
    if (this.aggregateMemo.size >= 64) this.aggregateMemo.clear()
    this.aggregateMemo.set(key, agg)
    return agg
  }

  private computeAggregate(from: number, to: number): Agg {
    const agg = emptyAgg()
    let s = from
    while (s < to) {
      if (s % SECONDS_PER_DAY === 0 && s + SECONDS_PER_DAY <= to) {
        mergeAgg(agg, this.daySummary(s / SECONDS_PER_DAY))
        s += SECONDS_PER_DAY
      } else if (s % 60 === 0 && s + 60 <= to) {
        mergeAgg(agg, this.minuteSummary(s / 60))
        s += 60
      } else {
        const minute = Math.floor(s / 60)
        const end = Math.min(to, (minute + 1) * 60)
        if (this.minuteSummary(minute).count > 0) {
          for (const trade of this.minuteTrades(minute)) {
            const second = Math.floor(trade.timestamp / 1000)
            if (second >= s && second < end) addTrade(agg, trade)
          }
        }
        s = end
      }
    }
    return agg
  }

  /** Trades of seconds [from, to), ascending, at most `limit`. */
  tradesBetween(from: number, to: number, limit = Number.POSITIVE_INFINITY): RawTrade[] {
    const out: RawTrade[] = []
    for (
      let minute = Math.max(Math.floor(from / 60), this.firstMinute);
      minute * 60 < to && out.length < limit;
      minute++
    ) {
      if (this.minuteSummary(minute).count === 0) continue
      for (const trade of this.minuteTrades(minute)) {
        const second = Math.floor(trade.timestamp / 1000)
        if (second >= from && second < to) out.push(trade)
        if (out.length >= limit) break
      }
    }
    return out
  }

  /** The last `count` trades of seconds before `before`, ascending; the search stops after `lookbackSeconds`. */
  tradesBefore(before: number, count: number, lookbackSeconds = SECONDS_PER_DAY): RawTrade[] {
    const collected: RawTrade[] = []
    const stop = Math.max(Math.floor((before - lookbackSeconds) / 60), this.firstMinute)
    for (let minute = Math.floor((before - 1) / 60); minute >= stop && collected.length < count; minute--) {
      if (this.minuteSummary(minute).count === 0) continue
      const trades = this.minuteTrades(minute)
      for (let i = trades.length - 1; i >= 0 && collected.length < count; i--) {
        const trade = trades[i]
        if (trade !== undefined && Math.floor(trade.timestamp / 1000) < before) collected.push(trade)
      }
    }
    return collected.reverse()
  }

  lastTradeBefore(before: number): RawTrade | undefined {
    return this.tradesBefore(before, 1, LAST_TRADE_LOOKBACK_MINUTES * 60)[0]
  }

  lastPriceBefore(before: number): number {
    return this.lastTradeBefore(before)?.price ?? this.walkTicks(before)
  }

  /** Candles of the buckets starting at or after `fromMs`; the last one may be partial, none starts after `asOf`. */
  candles(bucket: Bucket, fromMs: number, count: number, asOf: number): RawCandle[] {
    const visible = Math.floor(asOf / 1000)
    let start = bucketStart(fromMs, bucket)
    if (start < fromMs) start = bucketEnd(start, bucket)
    // no candle ends before the market opened; the first one may be partial
    start = Math.max(start, bucketStart(this.historyStart, bucket))
    const out: RawCandle[] = []
    let previousClose: number | undefined
    while (out.length < count && start <= asOf) {
      const end = bucketEnd(start, bucket)
      const from = Math.ceil(start / 1000)
      const to = Math.min(Math.ceil(end / 1000), visible)
      const agg = to > from ? this.aggregate(from, to) : emptyAgg()
      let candle: RawCandle
      if (agg.count > 0) {
        candle = {
          start,
          end,
          agg,
          open: agg.open,
          high: agg.high,
          low: agg.low,
          close: agg.close,
          closed: end <= asOf
        }
      } else {
        const flat = previousClose ?? this.lastPriceBefore(from)
        candle = { start, end, agg, open: flat, high: flat, low: flat, close: flat, closed: end <= asOf }
      }
      out.push(candle)
      previousClose = candle.close
      start = end
    }
    return out
  }

  /** The last `count` candles, ending with the one that contains `asOf`. */
  latestCandles(bucket: Bucket, count: number, asOf: number): RawCandle[] {
    if (count <= 0) return []
    const first = bucketBack(bucketStart(asOf, bucket), bucket, count - 1)
    return this.candles(bucket, first, count, asOf)
  }

  /** Rolling statistics of the trades of seconds [from, to). */
  stats(from: number, to: number): RawTicker {
    const window = this.aggregate(from, to)
    const last = this.lastTradeBefore(to)
    const lastPrice = last?.price ?? this.walkTicks(to)
    const previousClose = this.lastPriceBefore(from)
    const hasTrades = window.count > 0
    return {
      second: to,
      window,
      last,
      lastPrice,
      open: hasTrades ? window.open : lastPrice,
      high: hasTrades ? window.high : lastPrice,
      low: hasTrades ? window.low : lastPrice,
      previousClose
    }
  }

  book(second: number, levels = BOOK_LEVELS): BookLevels {
    return generateBook(this.spec, this.key, this.lastPriceBefore(second), second, levels)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Public, unit-converted view used by tests and tools.

export interface ModelTrade {
  readonly id: number
  readonly timestamp: number
  readonly price: number
  readonly amount: number
  readonly cost: number
  /** The taker side. */
  readonly side: "buy" | "sell"
}

export interface Candle {
  readonly timestamp: number
  readonly closeTime: number
  readonly open: number
  readonly high: number
  readonly low: number
  readonly close: number
  readonly volume: number
  readonly quoteVolume: number
  /** quoteVolume / volume, or the close when nothing traded */
  readonly vwap: number
  readonly trades: number
  readonly takerBuyVolume: number
  readonly takerBuyQuoteVolume: number
  /** -1 when the candle has no trades */
  readonly firstTradeId: number
  readonly lastTradeId: number
  readonly closed: boolean
}

export interface Ticker24h {
  readonly symbol: string
  readonly timestamp: number
  readonly openTime: number
  readonly open: number
  readonly high: number
  readonly low: number
  readonly last: number
  readonly lastQty: number
  readonly previousClose: number
  readonly bid: number
  readonly bidQty: number
  readonly ask: number
  readonly askQty: number
  readonly baseVolume: number
  readonly quoteVolume: number
  readonly vwap: number
  readonly change: number
  readonly percentage: number
  readonly count: number
  readonly firstTradeId: number
  readonly lastTradeId: number
}

export interface OrderBookSnapshot {
  readonly timestamp: number
  readonly bids: ReadonlyArray<readonly [number, number]>
  readonly asks: ReadonlyArray<readonly [number, number]>
}

/** A candle interval: milliseconds (buckets aligned to the epoch) or a timeframe such as "1m", "1w" (Mondays), "1M". */
export type IntervalSpec = number | string

/**
 * Read access to the deterministic state. `symbol` is the unified ccxt symbol (the exchange id is accepted too);
 * `t` defaults to the emulator clock and only trades of seconds before floor(t / 1000) are visible.
 */
export interface MarketModel {
  readonly seed: number
  /** ms epoch at which the simulated markets open: nothing trades before it. */
  readonly historyStart: number
  now(): number
  markets(exchange: EmulatedExchange): ReadonlyArray<MarketSpec>
  market(exchange: EmulatedExchange, symbol: string): MarketSpec
  /** Last traded price visible at t. */
  price(exchange: EmulatedExchange, symbol: string, t?: number): number
  /** Trades with fromMs <= timestamp < toMs (and visible at t), ascending. */
  trades(exchange: EmulatedExchange, symbol: string, fromMs: number, toMs: number, t?: number): ModelTrade[]
  /** The last `count` trades visible at t, ascending. */
  recentTrades(exchange: EmulatedExchange, symbol: string, count: number, t?: number): ModelTrade[]
  /** `count` candles whose open time is >= fromMs (none opening after t). */
  candles(
    exchange: EmulatedExchange,
    symbol: string,
    interval: IntervalSpec,
    fromMs: number,
    count: number,
    t?: number
  ): Candle[]
  /** The last `count` candles, the newest being the (possibly partial) one containing t. */
  latestCandles(exchange: EmulatedExchange, symbol: string, interval: IntervalSpec, count: number, t?: number): Candle[]
  /** The book at t; every venue serves the same 200 levels per side (depth is capped there). */
  orderBook(exchange: EmulatedExchange, symbol: string, t?: number, depth?: number): OrderBookSnapshot
  /** Rolling 24 h statistics at t, with the best bid/ask of the book at t. */
  ticker24h(exchange: EmulatedExchange, symbol: string, t?: number): Ticker24h
}

export const toBucket = (interval: IntervalSpec): Bucket => {
  if (typeof interval === "number") {
    if (!(interval >= 1000) || interval % 1000 !== 0) throw new Error(`interval must be a whole number of seconds`)
    return fixedBucket(interval)
  }
  const bucket = timeframeBucket(interval)
  if (bucket === undefined) throw new Error(`unknown interval ${interval}`)
  return bucket
}

export const candleView = (spec: MarketSpec, candle: RawCandle): Candle => {
  const pd = spec.priceDecimals
  const ad = spec.amountDecimals
  const volume = scaled(candle.agg.volume, ad)
  const quoteVolume = candle.agg.quote / pow10(pd + ad)
  return {
    timestamp: candle.start,
    closeTime: candle.end - 1,
    open: scaled(candle.open, pd),
    high: scaled(candle.high, pd),
    low: scaled(candle.low, pd),
    close: scaled(candle.close, pd),
    volume,
    quoteVolume,
    vwap: candle.agg.volume > 0 ? quoteVolume / volume : scaled(candle.close, pd),
    trades: candle.agg.count,
    takerBuyVolume: scaled(candle.agg.buyVolume, ad),
    takerBuyQuoteVolume: candle.agg.buyQuote / pow10(pd + ad),
    firstTradeId: candle.agg.firstId,
    lastTradeId: candle.agg.lastId,
    closed: candle.closed
  }
}

export const tradeView = (spec: MarketSpec, trade: RawTrade): ModelTrade => {
  const price = scaled(trade.price, spec.priceDecimals)
  const amount = scaled(trade.amount, spec.amountDecimals)
  return {
    id: trade.id,
    timestamp: trade.timestamp,
    price,
    amount,
    cost: (trade.price * trade.amount) / pow10(spec.priceDecimals + spec.amountDecimals),
    side: trade.buy ? "buy" : "sell"
  }
}

export class EmulatorModel implements MarketModel {
  private readonly paths = new Map<string, AssetPath>()
  private readonly allSeries = new Map<string, Series>()

  readonly historyStart: number

  constructor(
    readonly seed: number,
    private readonly clock: () => number,
    historyStart?: number
  ) {
    this.historyStart = historyStart ?? clock() - DEFAULT_HISTORY_MS
    for (const asset of Object.values(ASSETS)) this.paths.set(asset.code, new AssetPath(seed, asset))
  }

  now(): number {
    return this.clock()
  }

  markets(exchange: EmulatedExchange): ReadonlyArray<MarketSpec> {
    return MARKETS[exchange]
  }

  market(exchange: EmulatedExchange, symbol: string): MarketSpec {
    const spec = findMarketBySymbol(exchange, symbol) ?? findMarketById(exchange, symbol)
    if (spec === undefined) throw new Error(`${exchange} has no market ${symbol}`)
    return spec
  }

  series(exchange: EmulatedExchange, symbol: string): Series {
    const spec = this.market(exchange, symbol)
    const key = `${exchange}:${spec.symbol}`
    const existing = this.allSeries.get(key)
    if (existing !== undefined) return existing
    const path = this.paths.get(spec.base)
    if (path === undefined) throw new Error(`no price path for ${spec.base}`)
    const created = new Series(spec, this.seed, path, this.historyStart)
    this.allSeries.set(key, created)
    return created
  }

  price(exchange: EmulatedExchange, symbol: string, t = this.now()): number {
    const series = this.series(exchange, symbol)
    return scaled(series.lastPriceBefore(Math.floor(t / 1000)), series.spec.priceDecimals)
  }

  trades(exchange: EmulatedExchange, symbol: string, fromMs: number, toMs: number, t = this.now()): ModelTrade[] {
    const series = this.series(exchange, symbol)
    const to = Math.min(Math.ceil(toMs / 1000), Math.floor(t / 1000))
    return series
      .tradesBetween(Math.floor(fromMs / 1000), to)
      .filter((trade) => trade.timestamp >= fromMs && trade.timestamp < toMs)
      .map((trade) => tradeView(series.spec, trade))
  }

  recentTrades(exchange: EmulatedExchange, symbol: string, count: number, t = this.now()): ModelTrade[] {
    const series = this.series(exchange, symbol)
    return series.tradesBefore(Math.floor(t / 1000), count).map((trade) => tradeView(series.spec, trade))
  }

  candles(
    exchange: EmulatedExchange,
    symbol: string,
    interval: IntervalSpec,
    fromMs: number,
    count: number,
    t = this.now()
  ): Candle[] {
    const series = this.series(exchange, symbol)
    return series.candles(toBucket(interval), fromMs, count, t).map((c) => candleView(series.spec, c))
  }

  latestCandles(
    exchange: EmulatedExchange,
    symbol: string,
    interval: IntervalSpec,
    count: number,
    t = this.now()
  ): Candle[] {
    const series = this.series(exchange, symbol)
    return series.latestCandles(toBucket(interval), count, t).map((c) => candleView(series.spec, c))
  }

  orderBook(exchange: EmulatedExchange, symbol: string, t = this.now(), depth = BOOK_LEVELS): OrderBookSnapshot {
    const series = this.series(exchange, symbol)
    const book = series.book(Math.floor(t / 1000), Math.min(Math.max(depth, 1), BOOK_LEVELS))
    const pd = series.spec.priceDecimals
    const ad = series.spec.amountDecimals
    const side = (levels: BookLevels["bids"]) =>
      levels.slice(0, depth).map(([p, q]) => [scaled(p, pd), scaled(q, ad)] as const)
    return { timestamp: Math.floor(t / 1000) * 1000, bids: side(book.bids), asks: side(book.asks) }
  }

  ticker24h(exchange: EmulatedExchange, symbol: string, t = this.now()): Ticker24h {
    const series = this.series(exchange, symbol)
    const spec = series.spec
    const second = Math.floor(t / 1000)
    const stats = series.stats(second - SECONDS_PER_DAY, second)
    const book = series.book(second, 1)
    const pd = spec.priceDecimals
    const ad = spec.amountDecimals
    const last = scaled(stats.lastPrice, pd)
    const open = scaled(stats.open, pd)
    const baseVolume = scaled(stats.window.volume, ad)
    const quoteVolume = stats.window.quote / pow10(pd + ad)
    const bid = book.bids[0]
    const ask = book.asks[0]
    return {
      symbol: spec.symbol,
      timestamp: t,
      openTime: t - SECONDS_PER_DAY * 1000,
      open,
      high: scaled(stats.high, pd),
      low: scaled(stats.low, pd),
      last,
      lastQty: stats.last === undefined ? 0 : scaled(stats.last.amount, ad),
      previousClose: scaled(stats.previousClose, pd),
      bid: bid === undefined ? 0 : scaled(bid[0], pd),
      bidQty: bid === undefined ? 0 : scaled(bid[1], ad),
      ask: ask === undefined ? 0 : scaled(ask[0], pd),
      askQty: ask === undefined ? 0 : scaled(ask[1], ad),
      baseVolume,
      quoteVolume,
      vwap: baseVolume > 0 ? quoteVolume / baseVolume : last,
      change: scaled(stats.lastPrice - stats.open, pd),
      percentage: stats.open > 0 ? ((stats.lastPrice - stats.open) / stats.open) * 100 : 0,
      count: stats.window.count,
      firstTradeId: stats.window.firstId,
      lastTradeId: stats.window.lastId
    }
  }
}
