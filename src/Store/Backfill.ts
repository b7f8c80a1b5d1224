import { Cause, Clock, Context, Duration, Effect, Metric, Option } from "effect"
import type { ExchangeService } from "../Exchange/Exchange.js"
import { HistoryProgress } from "./Progress.js"
import type { CandleStoreService } from "./CandleStore.js"
import type { BackfillTarget } from "./Config.js"
import { backfillBehind, backfillRate, backfillRows } from "./Metrics.js"
import type { Foreground } from "./StoreExchange.js"
import { alignDown, chunkSpans, fetchSpan, type SeriesRef, seriesOf, slotsIn } from "./Sync.js"

export type BackfillProgress = typeof HistoryProgress.Type

export interface HistoryBackfillService {
  /** Each HISTORY_BACKFILL series, in the order configured; encodable with Schema.Array(HistoryProgress). */
  readonly progress: Effect.Effect<ReadonlyArray<HistoryProgress>>
}

export class HistoryBackfill extends Context.Tag("app/HistoryBackfill")<HistoryBackfill, HistoryBackfillService>() {}

export interface BackfillOptions {
  readonly now?: Effect.Effect<number>
  /** Pause while client requests wait on an exchange (they go first). */
  readonly yieldPause?: Duration.DurationInput
  /** Pause after a failure before the next attempt. */
  readonly errorPause?: Duration.DurationInput
  /** Longest sleep between checks once complete (the next candle closes sooner for short intervals). */
  readonly maxIdle?: Duration.DurationInput
}

/**
 * Keeps each target's window complete: fills its gaps page by page (one exchange request each, through the
 * exchange's budget, waiting while client requests are in flight), then wakes as candles close to append them.
 * Everything it knows lives in the store, so after a restart it resumes at the first gap.
 */
export const makeBackfill = (
  exchange: ExchangeService,
  store: CandleStoreService,
  foreground: Foreground,
  targets: ReadonlyArray<BackfillTarget>,
  options: BackfillOptions = {}
) => {
  const currentTime = options.now ?? Clock.currentTimeMillis
  const yieldPause = options.yieldPause ?? "200 millis"
  const errorPause = options.errorPause ?? "30 seconds"
  const maxIdleMs = Duration.toMillis(options.maxIdle ?? "1 minute")
  const states = new Map<string, BackfillProgress>()
  const update = (label: string, patch: Partial<BackfillProgress>) => {
    const current = states.get(label)
    if (current !== undefined) states.set(label, { ...current, ...patch })
  }
  for (const t of targets) {
    states.set(t.label, {
      series: t.label,
      exchange: t.exchange,
      symbol: t.symbol,
      interval: t.interval,
      windowStart: null,
      state: "starting",
      missing: null,
      behindSeconds: null,
      rowsStored: 0,
      rowsPerSecond: null,
      lastError: null
    })
  }

  const waitForClients: Effect.Effect<void> = Effect.flatMap(foreground.idle, (idle) =>
    idle ? Effect.void : Effect.zipRight(Effect.sleep(yieldPause), waitForClients)
  )

  const pass = (target: BackfillTarget, series: SeriesRef) =>
    Effect.gen(function* () {
      const behindGauge = Metric.tagged(backfillBehind, "series", target.label)
      const rowsCounter = Metric.tagged(backfillRows, "series", target.label)
      const rateGauge = Metric.tagged(backfillRate, "series", target.label)
      const perPage = yield* exchange.describe(series.market.exchange).pipe(
        Effect.map((info) => Math.max(1, info.maxCandlesPerRequest)),
        Effect.orElseSucceed(() => 500)
      )
      const now = yield* currentTime
      const openSlot = alignDown(now, target.intervalMs)
      const windowStart = alignDown(now - target.windowMs, target.intervalMs)
      const gaps = yield* store.missing(series.key, target.intervalMs, [windowStart, openSlot])
      const report = (missing: ReadonlyArray<readonly [number, number]>, at: number) => {
        const behind = missing[0] === undefined ? 0 : Math.max(0, (at - missing[0][0]) / 1000)
        update(target.label, {
          windowStart,
          missing: slotsIn(missing, target.intervalMs),
          behindSeconds: behind,
          state: missing.length === 0 ? "complete" : "backfilling"
        })
        return Metric.set(behindGauge, behind)
      }
      yield* report(gaps, now)
      const pages = chunkSpans(gaps, target.intervalMs, perPage)
      for (const [i, page] of pages.entries()) {
        yield* waitForClients
        const started = yield* Clock.currentTimeMillis
        const before = yield* store.count(series.key, page)
        yield* fetchSpan(exchange, store, series, page, yield* currentTime)
        const stored = (yield* store.count(series.key, page)) - before
        const seconds = Math.max(0.001, ((yield* Clock.currentTimeMillis) - started) / 1000)
        const current = states.get(target.label)
        update(target.label, {
          rowsStored: (current?.rowsStored ?? 0) + stored,
          rowsPerSecond: Math.round((stored / seconds) * 10) / 10,
          lastError: null
        })
        yield* Metric.incrementBy(rowsCounter, stored)
        yield* Metric.set(rateGauge, stored / seconds)
        yield* report(pages.slice(i + 1), yield* currentTime)
      }
      if (pages.length > 0) {
        // what could not be filled (an exchange with a short history) stays missing until the next pass
        const left = yield* store.missing(series.key, target.intervalMs, [windowStart, openSlot])
        yield* report(left, yield* currentTime)
      }
      const after = yield* currentTime
      return Math.min(maxIdleMs, Math.max(1_000, alignDown(after, target.intervalMs) + target.intervalMs - after + 500))
    })

  const run = (target: BackfillTarget): Effect.Effect<never> =>
    Effect.gen(function* () {
      const market = yield* exchange.resolve(target.exchange, target.symbol)
      const series = seriesOf(market, target.interval, target.intervalMs)
      yield* Effect.logInfo("history backfill started").pipe(
        Effect.annotateLogs({ series: target.label, exchange: market.exchange, symbol: market.symbol })
      )
      const loop: Effect.Effect<never, unknown> = Effect.flatMap(pass(target, series), (sleepMs) =>
        Effect.zipRight(Effect.sleep(Duration.millis(sleepMs)), loop)
      )
      return yield* loop
    }).pipe(
      Effect.catchAllCause((cause) => {
        const error = Cause.squash(cause)
        const message = error instanceof Error ? error.message : String(error)
        update(target.label, { state: "error", lastError: message })
        return Effect.logWarning("history backfill failed; retrying").pipe(
          Effect.annotateLogs({ series: target.label, error: message }),
          Effect.zipRight(Effect.sleep(errorPause))
        )
      }),
      Effect.forever
    )

  const progress = Effect.sync(() =>
    targets.flatMap((t) =>
      Option.toArray(Option.map(Option.fromNullable(states.get(t.label)), (p) => new HistoryProgress(p)))
    )
  )
  return { run, progress } as const
}
