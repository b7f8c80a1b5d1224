import { Schema } from "effect"

/** One HISTORY_BACKFILL series as /v1/health can show it (see HistoryBackfill.progress). */
export class HistoryProgress extends Schema.Class<HistoryProgress>("HistoryProgress")({
  series: Schema.String.annotations({ description: "The HISTORY_BACKFILL item, e.g. binance:BTC/USDT:1m:30d" }),
  exchange: Schema.String,
  symbol: Schema.String,
  interval: Schema.String,
  windowStart: Schema.NullOr(Schema.Number).annotations({
    description: "Open time of the window's first candle, ms since epoch (null before the first pass)"
  }),
  state: Schema.Literal("starting", "backfilling", "complete", "error"),
  missing: Schema.NullOr(Schema.Number).annotations({
    description: "Closed candles of the window neither stored nor known to be empty"
  }),
  behindSeconds: Schema.NullOr(Schema.Number).annotations({
    description: "Seconds from the oldest missing candle to now; 0 when complete"
  }),
  rowsStored: Schema.Number.annotations({ description: "Candles this process has stored for the series" }),
  rowsPerSecond: Schema.NullOr(Schema.Number).annotations({ description: "Speed over the last page" }),
  lastError: Schema.NullOr(Schema.String)
}) {}
