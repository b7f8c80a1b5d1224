import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Chunk, Effect, Option, Schema, Stream } from "effect"
import { Api } from "../Api.js"
import { errorResponse } from "../Http/Responses.js"
import type { StoredCandle } from "../Store/CandleStore.js"
import { type HistoryFormat, StoreUnavailable } from "./Api.js"
import { History, type HistoryRange } from "./History.js"

const encoder = new TextEncoder()

const jsonLine = (c: StoredCandle) =>
  `{"timestamp":${c.timestamp},"open":${c.open},"high":${c.high},"low":${c.low},"close":${c.close},"volume":${c.volume}}`
const csvLine = (c: StoredCandle) => `${c.timestamp},${c.open},${c.high},${c.low},${c.close},${c.volume}\n`

/** Each page read from the store becomes one chunk of bytes; nothing else is held. */
const encode = (range: HistoryRange, format: typeof HistoryFormat.Type): Stream.Stream<Uint8Array, unknown> => {
  const pages = (line: (c: StoredCandle, first: boolean) => string) => {
    let first = true
    return range.candles.pipe(
      Stream.mapChunks((chunk) => {
        let text = ""
        for (const c of chunk) {
          text += line(c, first)
          first = false
        }
        return text === "" ? Chunk.empty<Uint8Array>() : Chunk.of(encoder.encode(text))
      })
    )
  }
  const text = (s: string) => Stream.succeed(encoder.encode(s))
  switch (format) {
    case "ndjson":
      return pages((c) => `${jsonLine(c)}\n`)
    case "csv":
      return Stream.concat(text("timestamp,open,high,low,close,volume\n"), pages(csvLine))
    case "json": {
      const head = JSON.stringify({
        exchange: range.market.exchange,
        symbol: range.market.symbol,
        interval: range.interval
      }).slice(0, -1)
      return text(`${head},"candles":[`).pipe(
        Stream.concat(pages((c, first) => (first ? jsonLine(c) : `,${jsonLine(c)}`))),
        Stream.concat(text("]}"))
      )
    }
  }
}

const CONTENT_TYPES = {
  json: "application/json",
  ndjson: "application/x-ndjson",
  csv: "text/csv; charset=utf-8"
} as const

const encodeStoreUnavailable = Schema.encodeSync(StoreUnavailable)

const storeUnavailable = (message: string) =>
  HttpServerResponse.text(JSON.stringify(encodeStoreUnavailable(new StoreUnavailable({ message }))), {
    status: 503,
    contentType: "application/json",
    headers: { "cache-control": "no-store" }
  })

export const HistoryLive = HttpApiBuilder.group(Api, "history", (handlers) =>
  Effect.gen(function* () {
    const history = yield* Effect.serviceOption(History)
    return handlers.handle("ohlcv", ({ urlParams }) =>
      Option.match(history, {
        onNone: () => Effect.succeed(storeUnavailable("the candle store is not running on this server")),
        onSome: (service) =>
          service
            .open({
              exchange: urlParams.exchange,
              symbol: urlParams.symbol,
              interval: urlParams.interval,
              since: urlParams.since,
              until: Option.fromNullable(urlParams.until)
            })
            .pipe(
              Effect.map((range) =>
                HttpServerResponse.stream(encode(range, urlParams.format), {
                  contentType: CONTENT_TYPES[urlParams.format],
                  headers: { "cache-control": "no-store" }
                })
              ),
              Effect.catchAll((error) =>
                Effect.succeed(
                  error._tag === "CandleStoreError" ? storeUnavailable(error.message) : errorResponse(error)
                )
              )
            )
      })
    )
  })
)
