import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { join } from "node:path"
import { CandleStore, disabledCandleStore } from "../../src/Store/CandleStore.js"
import { makeCandleHistoryLayer } from "../../src/Store/Service.js"
import { serverOver } from "./http-support.js"
import { tempDir } from "./support.js"
import { frozenEmulator, historyOverEmulator, spyOhlcv } from "./support-emulator.js"
import { ExchangeLive } from "../../src/Exchange/Live.js"
import { AppConfig } from "../../src/AppConfig.js"
import { emulatorEnv } from "../support/emulatorServer.js"

const M = 60_000
const T = Date.UTC(2024, 0, 1)
const KLINES = "/api/v3/klines"
const SINCE = T - 2 * 24 * 60 * M

const get = (path: string) =>
  Effect.flatMap(HttpClient.HttpClient, (client) => client.get(path)).pipe(
    Effect.flatMap((response) =>
      Effect.map(response.text, (body) => ({ status: response.status, headers: response.headers, body }))
    )
  )

const errorOf = (r: { readonly body: string }) => JSON.parse(r.body) as { code: string; message: string }

const url = (params: Record<string, string | number>) =>
  `/v1/history/ohlcv?${new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString()}`

describe("GET /v1/history/ohlcv", () => {
  it.scopedLive("ndjson, csv and json of a range: fetched once in pages, then served from the store alone", () =>
    Effect.gen(function* () {
      const emulator = yield* frozenEmulator()
      const file = join(yield* tempDir, "market.sqlite")
      yield* Effect.gen(function* () {
        const base = { exchange: "binance", symbol: "BTC/USDT", interval: "1m", since: SINCE, until: SINCE + 2500 * M }
        const ndjson = yield* get(url({ ...base, format: "ndjson" }))
        expect(ndjson.status).toBe(200)
        expect(ndjson.headers["content-type"]).toBe("application/x-ndjson")
        const lines = ndjson.body.trimEnd().split("\n")
        expect(lines).toHaveLength(2500)
        const candles = lines.map(
          (l) => JSON.parse(l) as { timestamp: number; open: number; high: number; low: number; volume: number }
        )
        expect(candles.map((c) => c.timestamp)).toEqual(Array.from({ length: 2500 }, (_, i) => SINCE + i * M))
        expect(Object.keys(candles[0] ?? {})).toEqual(["timestamp", "open", "high", "low", "close", "volume"])
        // binance answers 1000 candles a request
        expect(emulator.requestCount("binance", KLINES)).toBe(3)

        emulator.resetCounts()
        const again = yield* get(url({ ...base, format: "ndjson" }))
        expect(again.body).toBe(ndjson.body)
        const csv = yield* get(url({ ...base, format: "csv" }))
        expect(csv.headers["content-type"]).toBe("text/csv; charset=utf-8")
        const rows = csv.body.trimEnd().split("\n")
        expect(rows[0]).toBe("timestamp,open,high,low,close,volume")
        expect(rows).toHaveLength(2501)
        const c0 = candles[0]
        expect(rows[1]).toBe(
          c0 === undefined
            ? ""
            : [c0.timestamp, c0.open, c0.high, c0.low, JSON.parse(lines[0] ?? "{}").close, c0.volume].join(",")
        )
        const json = yield* get(url(base))
        expect(json.headers["content-type"]).toBe("application/json")
        const parsed = JSON.parse(json.body) as {
          exchange: string
          symbol: string
          interval: string
          candles: Array<unknown>
        }
        expect(parsed.exchange).toBe("binance")
        expect(parsed.symbol).toBe("BTC/USDT")
        expect(parsed.interval).toBe("1m")
        expect(parsed.candles).toEqual(candles)
        expect(emulator.requestCount("binance", KLINES)).toBe(0)

        // an empty range is an empty answer
        const empty = yield* get(url({ ...base, since: T + 10 * M, until: T + 20 * M }))
        expect(JSON.parse(empty.body)).toEqual({ exchange: "binance", symbol: "BTC/USDT", interval: "1m", candles: [] })
      }).pipe(Effect.provide(serverOver(emulator, historyOverEmulator(emulator, file))))
    })
  )

  it.scopedLive("bad parameters are JSON 400s; unknown exchanges and symbols JSON 4xx", () =>
    Effect.gen(function* () {
      const emulator = yield* frozenEmulator()
      const file = join(yield* tempDir, "market.sqlite")
      yield* Effect.gen(function* () {
        const base = { exchange: "binance", symbol: "BTC/USDT", interval: "1m", since: SINCE }
        const cases: ReadonlyArray<readonly [Record<string, string | number>, number, string]> = [
          [{ exchange: "binance", symbol: "BTC/USDT" }, 400, "invalid_parameter"],
          [{ ...base, since: "yesterday" }, 400, "invalid_parameter"],
          [{ ...base, format: "xml" }, 400, "invalid_parameter"],
          [{ ...base, until: SINCE }, 400, "invalid_parameter"],
          [{ ...base, interval: "1w" }, 400, "invalid_parameter"],
          [{ ...base, interval: "7m" }, 400, "unsupported_interval"],
          [{ ...base, since: 0, until: T }, 400, "invalid_parameter"],
          [{ ...base, exchange: "nope" }, 400, "unknown_exchange"],
          [{ ...base, exchange: "constructor" }, 400, "unknown_exchange"],
          [{ ...base, symbol: "NOPE/USDT" }, 404, "symbol_not_found"]
        ]
        for (const [params, status, code] of cases) {
          const r = yield* get(url(params))
          expect({ params, status: r.status, code: errorOf(r).code }).toEqual({ params, status, code })
          expect(r.headers["content-type"]).toContain("application/json")
        }
      }).pipe(Effect.provide(serverOver(emulator, historyOverEmulator(emulator, file))))
    })
  )

  it.scopedLive("DATABASE_URL=none: /v1/history/ohlcv is a JSON 503 store_unavailable", () =>
    Effect.gen(function* () {
      const emulator = yield* frozenEmulator()
      const off = makeCandleHistoryLayer({ config: { location: { engine: "none" }, backfill: [] } }).pipe(
        Layer.provideMerge(Layer.succeed(CandleStore, disabledCandleStore)),
        Layer.provide(spyOhlcv([])),
        Layer.provide(ExchangeLive),
        Layer.provide(AppConfig.fromRecord(emulatorEnv(emulator)))
      )
      yield* Effect.gen(function* () {
        const r = yield* get(url({ exchange: "binance", symbol: "BTC/USDT", since: SINCE }))
        expect(r.status).toBe(503)
        expect(errorOf(r).code).toBe("store_unavailable")
      }).pipe(Effect.provide(serverOver(emulator, off)))
    })
  )
})
