import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { createRequire } from "node:module"
import { join } from "node:path"
import { CandleStore } from "../../src/Store/CandleStore.js"
import { serverOver } from "./http-support.js"
import { tempDir } from "./support.js"
import { frozenEmulator, historyOverEmulator } from "./support-emulator.js"

const M = 60_000
const T = Date.UTC(2024, 0, 1)
const YEAR = 525_600
const SINCE = T - YEAR * M

interface SqliteDatabase {
  prepare(sql: string): { run(...values: ReadonlyArray<string | number>): unknown }
  transaction(f: () => void): () => void
  close(): void
}

// better-sqlite3 (the driver under @effect/sql-sqlite-node) ships no types of its own
const Database = createRequire(import.meta.url)("better-sqlite3") as new (file: string) => SqliteDatabase

/** A year of 1m candles written straight into the SQLite file, in one transaction. */
const insertYear = (file: string) =>
  Effect.sync(() => {
    const db = new Database(file)
    const insert = db.prepare(
      "INSERT INTO candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    db.transaction(() => {
      for (let i = 0; i < YEAR; i++) {
        const price = 40_000 + (i % 1000)
        insert.run("binance", "BTC/USDT", "1m", SINCE + i * M, price, price + 5, price - 5, price + 1, (i % 7) + 0.5)
      }
    })()
    db.close()
  })

/** Streams the response body, counting lines and sampling the heap at every chunk; never holds the body. */
const streamAndMeasure = (path: string) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.get(path)
    const baseline = process.memoryUsage().heapUsed
    let peak = baseline
    let lines = 0
    let first = ""
    let last = ""
    let carry = ""
    yield* response.stream.pipe(
      Stream.decodeText(),
      Stream.runForEach((text) =>
        Effect.sync(() => {
          const parts = (carry + text).split("\n")
          carry = parts.pop() ?? ""
          for (const line of parts) {
            if (lines === 0) first = line
            last = line
            lines += 1
          }
          peak = Math.max(peak, process.memoryUsage().heapUsed)
        })
      )
    )
    return { status: response.status, lines, first, last, growthMb: (peak - baseline) / 1024 / 1024 }
  })

describe("streaming a year of 1m candles", () => {
  it.scopedLive(
    "NDJSON and CSV: every row, in order, with bounded heap growth",
    () =>
      Effect.gen(function* () {
        const emulator = yield* frozenEmulator()
        const file = join(yield* tempDir, "market.sqlite")
        yield* Effect.gen(function* () {
          yield* CandleStore // the layer has migrated the file
          yield* insertYear(file)
          emulator.resetCounts()
          const query = `exchange=binance&symbol=BTC/USDT&interval=1m&since=${SINCE}&until=${T}`
          const ndjson = yield* streamAndMeasure(`/v1/history/ohlcv?${query}&format=ndjson`)
          expect(ndjson.status).toBe(200)
          expect(ndjson.lines).toBe(YEAR)
          expect(JSON.parse(ndjson.first)).toEqual({
            timestamp: SINCE,
            open: 40_000,
            high: 40_005,
            low: 39_995,
            close: 40_001,
            volume: 0.5
          })
          expect(JSON.parse(ndjson.last).timestamp).toBe(T - M)
          const csv = yield* streamAndMeasure(`/v1/history/ohlcv?${query}&format=csv`)
          expect(csv.lines).toBe(YEAR + 1)
          expect(csv.first).toBe("timestamp,open,high,low,close,volume")
          expect(csv.last).toBe(`${T - M},40599,40604,40594,40600,${((YEAR - 1) % 7) + 0.5}`)
          // garbage between collections only (about 35 MB measured): the NDJSON body alone is ~50 MB as bytes and
          // ~100 MB as a string, and 525,600 rows held as objects would be more still
          expect(ndjson.growthMb).toBeLessThan(64)
          expect(csv.growthMb).toBeLessThan(64)
          // the store held the whole range: no candle request reached the exchange
          expect(emulator.requestCount("binance", "/api/v3/klines")).toBe(0)
        }).pipe(Effect.provide(serverOver(emulator, historyOverEmulator(emulator, file))))
      }),
    120_000
  )
})
