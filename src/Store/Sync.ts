import { Effect, Option } from "effect"
import type { MarketError } from "../Domain/Errors.js"
import type { Candle } from "../Domain/Market.js"
import type { ExchangeService, ResolvedMarket } from "../Exchange/Exchange.js"
import { type CandleStoreError, type CandleStoreService, isStorable, type SeriesKey, type Span } from "./CandleStore.js"

/**
 * A bucket that ended this long ago and that the exchange left out of an answer had no trades: remembered as
 * checked. Younger ones may just not be published yet.
 */
export const EMPTY_BUCKET_GRACE_MS = 60_000

export const alignDown = (t: number, intervalMs: number) => Math.floor(t / intervalMs) * intervalMs
export const alignUp = (t: number, intervalMs: number) => Math.ceil(t / intervalMs) * intervalMs

/** `spans` cut into pieces of at most `slots` buckets. */
export const chunkSpans = (spans: ReadonlyArray<Span>, intervalMs: number, slots: number): Array<Span> => {
  const step = Math.max(1, slots) * intervalMs
  const out: Array<Span> = []
  for (const [start, end] of spans) {
    for (let a = start; a < end; a += step) out.push([a, Math.min(end, a + step)])
  }
  return out
}

export const slotsIn = (spans: ReadonlyArray<Span>, intervalMs: number) =>
  spans.reduce((n, [a, b]) => n + Math.round((b - a) / intervalMs), 0)

export interface SeriesRef {
  readonly market: ResolvedMarket
  readonly key: SeriesKey
  readonly intervalMs: number
}

export const seriesOf = (market: ResolvedMarket, interval: string, intervalMs: number): SeriesRef => ({
  market,
  key: { exchange: market.exchange, symbol: market.symbol, interval },
  intervalMs
})

/** Stores the closed candles of an answer; false when some failed the integrity checks (and were not stored). */
const storeClosed = (
  store: CandleStoreService,
  series: SeriesRef,
  candles: ReadonlyArray<Candle>,
  now: number
): Effect.Effect<boolean, CandleStoreError> =>
  Effect.gen(function* () {
    const closed = candles.filter((c) => c.timestamp + series.intervalMs <= now)
    const storable = closed.filter((c) => isStorable(c, series.intervalMs))
    if (storable.length < closed.length) {
      yield* Effect.logWarning("candles not stored: they fail the integrity checks").pipe(
        Effect.annotateLogs({ ...series.key, rejected: closed.length - storable.length })
      )
    }
    yield* store.put(series.key, storable)
    return storable.length === closed.length
  })

/**
 * The exchange's latest `slots` candles. Its newest one is taken as open even when our clock says it closed (the
 * exchange's clock decides what is still moving), so it is never stored; the ones before it are, and the range
 * between the first and the newest is marked checked.
 */
export const fetchLatest = (
  exchange: ExchangeService,
  store: CandleStoreService,
  series: SeriesRef,
  slots: number,
  now: number
): Effect.Effect<ReadonlyArray<Candle>, MarketError | CandleStoreError> =>
  Effect.gen(function* () {
    const answer = yield* exchange.ohlcv(series.market, {
      interval: series.key.interval,
      since: Option.none(),
      limit: Math.max(1, slots)
    })
    const candles = [...answer.candles].sort((a, b) => a.timestamp - b.timestamp)
    const newest = candles[candles.length - 1]
    const first = candles[0]
    if (newest === undefined || first === undefined) return candles
    const complete = yield* storeClosed(store, series, candles.slice(0, -1), Math.min(now, newest.timestamp))
    if (complete && first.timestamp < newest.timestamp)
      yield* store.markChecked(series.key, [first.timestamp, newest.timestamp])
    return candles
  })

/**
 * Fetches `span` through `exchange`, stores the closed candles it answered (the open one, open time + interval >
 * now, never), and marks the part of `span` the answer covers as checked. Answers the candles inside `span`.
 */
export const fetchSpan = (
  exchange: ExchangeService,
  store: CandleStoreService,
  series: SeriesRef,
  span: Span,
  now: number
): Effect.Effect<ReadonlyArray<Candle>, MarketError | CandleStoreError> =>
  Effect.gen(function* () {
    const { intervalMs, key } = series
    const slots = Math.max(1, Math.round((span[1] - span[0]) / intervalMs))
    const answer = yield* exchange.ohlcv(series.market, {
      interval: key.interval,
      since: Option.some(span[0]),
      limit: slots
    })
    const complete = yield* storeClosed(store, series, answer.candles, now)
    const inSpan = answer.candles.filter((c) => c.timestamp >= span[0] && c.timestamp < span[1])
    const first = inSpan[0]
    const last = inSpan[inSpan.length - 1]
    // an answer with nothing inside the span proves nothing (kraken answers only its latest 720 candles)
    if (first !== undefined && last !== undefined && complete) {
      const openSlot = alignDown(now, intervalMs)
      const end = Math.min(
        span[1],
        openSlot,
        Math.max(last.timestamp + intervalMs, alignDown(now - EMPTY_BUCKET_GRACE_MS, intervalMs))
      )
      yield* store.markChecked(key, [first.timestamp, end])
    }
    return inSpan
  })
