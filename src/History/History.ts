import { Clock, Context, Effect, Option, Stream } from "effect"
import { InvalidParameter, type MarketError, UnsupportedInterval } from "../Domain/Errors.js"
import type { ExchangeService, ResolvedMarket } from "../Exchange/Exchange.js"
import { CandleStoreError, type CandleStoreService, type Span, type StoredCandle } from "../Store/CandleStore.js"
import { storableIntervalMs } from "../Store/Config.js"
import type { Foreground } from "../Store/StoreExchange.js"
import { alignDown, alignUp, chunkSpans, fetchSpan, type SeriesRef, seriesOf } from "../Store/Sync.js"

export interface HistoryQuery {
  readonly exchange: string
  readonly symbol: string
  readonly interval: string
  readonly since: number
  readonly until: Option.Option<number>
}

export interface HistoryRange {
  readonly market: ResolvedMarket
  readonly interval: string
  /** The closed buckets served, `[since, min(until, open candle))`. */
  readonly span: Span
  /** Every closed candle of the range, oldest first, read from the store page by page. */
  readonly candles: Stream.Stream<StoredCandle, MarketError | CandleStoreError>
}

export interface HistoryService {
  /** Checks the query and fills the first part of the range before anything is sent, so that errors get a status. */
  readonly open: (query: HistoryQuery) => Effect.Effect<HistoryRange, MarketError | CandleStoreError>
}

export class History extends Context.Tag("app/History")<History, HistoryService>() {}

/** Buckets filled from the exchange (when missing) before their candles are streamed. */
const SECTION_SLOTS = 50_000
/** The longest range one request may ask for: 10 years of 1-minute candles. */
export const MAX_HISTORY_SLOTS = 5_256_000

export const makeHistory = (
  exchange: ExchangeService,
  store: CandleStoreService,
  foreground: Foreground,
  now: Effect.Effect<number> = Clock.currentTimeMillis
): HistoryService => {
  const fill = (series: SeriesRef, section: Span, perPage: number) =>
    Effect.gen(function* () {
      const gaps = yield* store.missing(series.key, series.intervalMs, section)
      if (gaps.length === 0) return
      const at = yield* now
      yield* Effect.acquireUseRelease(
        foreground.enter,
        () =>
          Effect.forEach(chunkSpans(gaps, series.intervalMs, perPage), (page) =>
            fetchSpan(exchange, store, series, page, at)
          ),
        () => foreground.exit
      )
    })

  const open = Effect.fn("History.open")(function* (query: HistoryQuery) {
    if (store.engine === "none") {
      return yield* new CandleStoreError({ message: "the candle store is turned off (DATABASE_URL=none)" })
    }
    const intervalMs = storableIntervalMs(query.interval)
    if (Option.isNone(intervalMs)) {
      return yield* new InvalidParameter({
        message: "interval must be seconds, minutes, hours or 1d (1m, 5m, 1h, 4h, 1d) for history",
        parameter: "interval"
      })
    }
    const market = yield* exchange.resolve(query.exchange, query.symbol)
    const info = yield* exchange.describe(market.exchange)
    if (!info.intervals.includes(query.interval)) {
      return yield* new UnsupportedInterval({
        message: `${market.exchange} does not offer "${query.interval}" candles. Supported intervals: ${info.intervals.join(", ")}`,
        interval: query.interval,
        supported: info.intervals
      })
    }
    const tf = intervalMs.value
    const at = yield* now
    const until = Option.getOrElse(query.until, () => at)
    if (until <= query.since) {
      return yield* new InvalidParameter({ message: "until must be later than since", parameter: "until" })
    }
    const span: Span = [alignUp(query.since, tf), Math.min(alignUp(until, tf), alignDown(at, tf))]
    if ((span[1] - span[0]) / tf > MAX_HISTORY_SLOTS) {
      return yield* new InvalidParameter({
        message: `at most ${MAX_HISTORY_SLOTS} candles per request; narrow since/until`,
        parameter: "until"
      })
    }
    const series = seriesOf(market, query.interval, tf)
    const perPage = Math.max(1, info.maxCandlesPerRequest)
    const sections = span[1] > span[0] ? chunkSpans([span], tf, SECTION_SLOTS) : []
    const first = sections[0]
    if (first !== undefined) yield* fill(series, first, perPage)
    const candles = Stream.fromIterable(sections).pipe(
      Stream.flatMap(
        (section) =>
          Stream.concat(
            section === first ? Stream.empty : Stream.drain(Stream.fromEffect(fill(series, section, perPage))),
            store.stream(series.key, section)
          ),
        { concurrency: 1 }
      )
    )
    return { market, interval: query.interval, span, candles }
  })

  return { open }
}
