import { Effect, Metric } from "effect"

const rowsWritten = Metric.counter("candle_store_rows_written_total", {
  description: "Closed candles written to the candle store (new or changed)",
  incremental: true
})

const conflicts = Metric.counter("candle_store_conflicts_total", {
  description: "Stored closed candles an exchange later answered with different values (replaced and logged)",
  incremental: true
})

export const candlesServed = Metric.counter("candle_store_rows_served_total", {
  description: "Candles answered from the store instead of an exchange",
  incremental: true
})

export const backfillRows = Metric.counter("history_backfill_rows_total", {
  description: "Candles stored by the background backfill, by series",
  incremental: true
})

export const backfillRate = Metric.gauge("history_backfill_rows_per_second", {
  description: "Backfill speed over its last page, by series"
})

export const backfillBehind = Metric.gauge("history_backfill_behind_seconds", {
  description: "How far a backfilled series is behind its newest closed candle (0 when complete)"
})

export const candlesWritten = (n: number) => (n > 0 ? Metric.incrementBy(rowsWritten, n) : Effect.void)
export const candleConflicts = (n: number) => Metric.incrementBy(conflicts, n)
