import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import {
  InvalidParameter,
  NotSupported,
  RateLimited,
  SymbolNotFound,
  Unauthorized,
  UnknownExchange,
  UnsupportedInterval,
  UpstreamBadResponse,
  UpstreamTimeout,
  UpstreamUnavailable
} from "../Domain/Errors.js"
import { Candle } from "../Domain/Market.js"
import { ExchangeParam, IntervalParam, SymbolParam, timestampParam } from "../Domain/Params.js"

export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()(
  "StoreUnavailable",
  { code: Schema.tag("store_unavailable"), message: Schema.String },
  HttpApiSchema.annotations({
    status: 503,
    description: "The candle store is turned off (DATABASE_URL=none) or cannot be reached"
  })
) {}

export const HistoryFormat = Schema.Literal("json", "ndjson", "csv").annotations({
  message: () => "format must be json, ndjson or csv",
  description: "json (default): one object with a candles array; ndjson: one candle per line; csv: with a header row"
})

export const HistoryParams = Schema.Struct({
  exchange: ExchangeParam,
  symbol: SymbolParam,
  interval: Schema.optionalWith(IntervalParam, { default: () => "1m" }),
  since: timestampParam("Start time, milliseconds since epoch (included)"),
  until: Schema.optional(timestampParam("End time, milliseconds since epoch (excluded); default now")),
  format: Schema.optionalWith(HistoryFormat, { default: () => "json" as const })
})

export class HistoryBody extends Schema.Class<HistoryBody>("HistoryBody")({
  exchange: Schema.String,
  symbol: Schema.String,
  interval: Schema.String,
  candles: Schema.Array(Candle)
}) {}

export class HistoryGroup extends HttpApiGroup.make("history")
  .add(
    HttpApiEndpoint.get("ohlcv", "/v1/history/ohlcv")
      .setUrlParams(HistoryParams)
      .addSuccess(HistoryBody)
      .addError(InvalidParameter)
      .addError(UnknownExchange)
      .addError(SymbolNotFound)
      .addError(UnsupportedInterval)
      .addError(RateLimited)
      .addError(NotSupported)
      .addError(UpstreamBadResponse)
      .addError(UpstreamUnavailable)
      .addError(UpstreamTimeout)
      .addError(StoreUnavailable)
      .annotate(OpenApi.Summary, "Every closed candle of a long range, streamed from the candle store")
      .annotate(
        OpenApi.Description,
        "Closed candles from `since` to `until` (at most 10 years of 1-minute candles), streamed as they are read " +
          "from the store, never held in memory. Candles the store lacks are fetched first, within the exchange's " +
          "budget, and stored. Intervals of seconds, minutes, hours or 1d. With format=ndjson " +
          "(application/x-ndjson) each line is one candle object; with format=csv (text/csv) the first line is " +
          "`timestamp,open,high,low,close,volume`. An error after the first bytes ends the stream early."
      )
  )
  .addError(Unauthorized)
  .annotate(OpenApi.Title, "History")
  .annotate(OpenApi.Description, "Candle history kept in the local store (SQLite or PostgreSQL)") {}
