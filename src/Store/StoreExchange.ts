import { Clock, Effect, Metric, Option } from "effect"
import { Candle, Ohlcv } from "../Domain/Market.js"
import type { ExchangeService, OhlcvRequest, ResolvedMarket } from "../Exchange/Exchange.js"
import { clampLimit, MAX_CANDLES } from "../Exchange/ohlcvPaging.js"
import type { CandleStoreService, Span } from "./CandleStore.js"
import { storableIntervalMs } from "./Config.js"
import { candlesServed } from "./Metrics.js"
import { alignDown, alignUp, chunkSpans, fetchLatest, fetchSpan, type SeriesRef, seriesOf } from "./Sync.js"

export interface StoreExchangeOptions {
  /** Current time in ms; the Effect clock by default (tests follow the emulator's model clock). */
  readonly now?: Effect.Effect<number>
}

/** Client requests waiting on an exchange through the store; the backfill yields to them. */
export interface Foreground {
  readonly enter: Effect.Effect<void>
  readonly exit: Effect.Effect<void>
  readonly idle: Effect.Effect<boolean>
}

export const makeForeground = (): Foreground => {
  let active = 0
  return {
    enter: Effect.sync(() => {
      active += 1
    }),
    exit: Effect.sync(() => {
      active -= 1
    }),
    idle: Effect.sync(() => active === 0)
  }
}

/**
 * The requested candles as buckets: `limit` from `since`, or the latest `limit` ending with the open one. The
 * store holds whole buckets only, so exchanges that leave out empty buckets answer fewer candles here than a walk
 * over their pages would.
 */
export const requestedSpan = (request: OhlcvRequest, intervalMs: number, now: number): Span => {
  const limit = clampLimit(request.limit, MAX_CANDLES)
  const openSlot = alignDown(now, intervalMs)
  const from = Option.match(request.since, {
    onNone: () => openSlot - (limit - 1) * intervalMs,
    onSome: (since) => alignUp(since, intervalMs)
  })
  return [from, Math.min(from + limit * intervalMs, openSlot + intervalMs)]
}

/**
 * Decorates `inner` so that candles come from the store: every closed candle of a request's range that the store
 * holds is read there, only the gaps and the open candle are fetched (through `inner`, hence its budget), and what
 * was fetched is stored. Intervals the store does not keep (weeks, months) and a store that fails go to `inner`.
 */
export const makeStoreExchange = (
  inner: ExchangeService,
  store: CandleStoreService,
  foreground: Foreground,
  options: StoreExchangeOptions = {}
): ExchangeService => {
  if (store.engine === "none") return inner
  const currentTime = options.now ?? Clock.currentTimeMillis

  const fetchGaps = (series: SeriesRef, gaps: ReadonlyArray<Span>, now: number) =>
    gaps.length === 0
      ? Effect.succeed([])
      : Effect.acquireUseRelease(
          foreground.enter,
          () =>
            Effect.forEach(chunkSpans(gaps, series.intervalMs, MAX_CANDLES), (gap) =>
              fetchSpan(inner, store, series, gap, now)
            ),
          () => foreground.exit
        )

  /** Stored candles of `closed` with the fetched ones (fresher, and the open one) laid over them. */
  const answer = (series: SeriesRef, closed: Span, fetched: ReadonlyArray<ReadonlyArray<Candle>>, within: Span) =>
    Effect.gen(function* () {
      const stored = closed[1] > closed[0] ? yield* store.read(series.key, closed) : []
      const byTime = new Map<number, Candle>()
      for (const c of stored) byTime.set(c.timestamp, new Candle(c))
      for (const page of fetched) {
        for (const c of page) if (c.timestamp >= within[0] && c.timestamp < within[1]) byTime.set(c.timestamp, c)
      }
      yield* Metric.incrementBy(candlesServed, stored.length)
      return new Ohlcv({
        exchange: series.market.exchange,
        symbol: series.market.symbol,
        interval: series.key.interval,
        candles: [...byTime.values()].sort((a, b) => a.timestamp - b.timestamp)
      })
    })

  /** `limit` buckets from `since`: the closed ones the store lacks are fetched, and the open one if it is in range. */
  const fromSince = (series: SeriesRef, request: OhlcvRequest, since: number, now: number) =>
    Effect.gen(function* () {
      const tf = series.intervalMs
      const span = requestedSpan({ ...request, since: Option.some(since) }, tf, now)
      if (span[1] <= span[0]) return yield* inner.ohlcv(series.market, request)
      const openSlot = alignDown(now, tf)
      const closed: Span = [span[0], Math.min(span[1], openSlot)]
      const gaps: Array<Span> = closed[1] > closed[0] ? [...(yield* store.missing(series.key, tf, closed))] : []
      if (span[1] > openSlot) {
        const previous = gaps[gaps.length - 1]
        if (previous !== undefined && previous[1] === openSlot) gaps[gaps.length - 1] = [previous[0], span[1]]
        else gaps.push([openSlot, span[1]])
      }
      return yield* answer(series, closed, yield* fetchGaps(series, gaps, now), span)
    })

  /**
   * The latest `limit` candles: the newest ones (from the first bucket the store lacks up to the open one) in one
   * request for the latest candles, then whatever else the store lacks. The window ends at the exchange's newest
   * candle, so a clock that differs from the exchange's does not shift it.
   */
  const latest = (series: SeriesRef, request: OhlcvRequest, now: number) =>
    Effect.gen(function* () {
      const tf = series.intervalMs
      const limit = clampLimit(request.limit, MAX_CANDLES)
      const openSlot = alignDown(now, tf)
      const expected: Span = [openSlot - (limit - 1) * tf, openSlot]
      const gaps = yield* store.missing(series.key, tf, expected)
      const last = gaps[gaps.length - 1]
      const tailStart = last !== undefined && last[1] === openSlot ? last[0] : openSlot
      const tail = yield* Effect.acquireUseRelease(
        foreground.enter,
        () => fetchLatest(inner, store, series, (openSlot - tailStart) / tf + 1, now),
        () => foreground.exit
      )
      const anchor = tail[tail.length - 1]?.timestamp ?? openSlot
      const closed: Span = [anchor - (limit - 1) * tf, anchor]
      const rest = yield* store.missing(series.key, tf, closed)
      const fetched = yield* fetchGaps(series, rest, Math.min(now, anchor))
      return yield* answer(series, closed, [tail, ...fetched], [closed[0], anchor + tf])
    })

  const ohlcv = Effect.fn("CandleStore.ohlcv")(function* (market: ResolvedMarket, request: OhlcvRequest) {
    const intervalMs = storableIntervalMs(request.interval)
    if (Option.isNone(intervalMs)) return yield* inner.ohlcv(market, request)
    const series = seriesOf(market, request.interval, intervalMs.value)
    const now = yield* currentTime
    return yield* Option.match(request.since, {
      onNone: () => latest(series, request, now),
      onSome: (since) => fromSince(series, request, since, now)
    }).pipe(
      Effect.catchTag("CandleStoreError", (error) =>
        Effect.logWarning("candle store unavailable; candles fetched from the exchange").pipe(
          Effect.annotateLogs({ exchange: market.exchange, symbol: market.symbol, error: error.message }),
          Effect.zipRight(inner.ohlcv(market, request))
        )
      )
    )
  })

  return { ...inner, ohlcv }
}
