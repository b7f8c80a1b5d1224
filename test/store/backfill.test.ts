import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Option, Schedule } from "effect"
import { join } from "node:path"
import { type BackfillProgress, HistoryBackfill } from "../../src/Store/Backfill.js"
import { CandleStore } from "../../src/Store/CandleStore.js"
import { parseBackfill } from "../../src/Store/Config.js"
import { tempDir } from "./support.js"
import { frozenEmulator, historyOverEmulator } from "./support-emulator.js"

const M = 60_000
const T = Date.UTC(2024, 0, 1)
const KLINES = "/api/v3/klines"
const WINDOW = 30 * 24 * 60
const KEY = { exchange: "binance", symbol: "BTC/USDT", interval: "1m" }
const targets = Option.getOrThrow(Option.getRight(parseBackfill("binance:BTC/USDT:1m:30d")))

/** Polls the backfill's progress until `done` holds (at most ~20 s). */
const waitFor = (done: (p: BackfillProgress) => boolean) =>
  Effect.flatMap(HistoryBackfill, (backfill) =>
    backfill.progress.pipe(
      Effect.flatMap((all) => {
        const p = all[0]
        return p !== undefined && done(p) ? Effect.succeed(p) : Effect.fail("not yet" as const)
      }),
      Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("20 seconds")))
    )
  )

const stored = (span: readonly [number, number]) => Effect.flatMap(CandleStore, (s) => s.count(KEY, span))

describe("HISTORY_BACKFILL (real ccxt, emulator)", () => {
  it("parses targets", () => {
    const parsed = Option.getOrThrow(Option.getRight(parseBackfill("binance:BTC/USDT:1m:30d, kraken:eth/usd:1h:365d")))
    expect(
      parsed.map(({ exchange, symbol, interval, intervalMs, windowMs }) => ({
        exchange,
        symbol,
        interval,
        intervalMs,
        windowMs
      }))
    ).toEqual([
      { exchange: "binance", symbol: "BTC/USDT", interval: "1m", intervalMs: M, windowMs: WINDOW * M },
      { exchange: "kraken", symbol: "ETH/USD", interval: "1h", intervalMs: 60 * M, windowMs: 365 * 24 * 60 * M }
    ])
    expect(parseBackfill(" ")).toEqual(Either.right([]))
    for (const bad of [
      "binance:BTC/USDT:1m",
      "binance:BTC/USDT:1w:30d",
      "binance:BTC/USDT:1m:30x",
      "binance:BTCUSDT:1m:30d"
    ]) {
      expect(parseBackfill(bad)._tag).toBe("Left")
    }
  })

  it.scopedLive("fills a 30-day 1m window, resumes after an interruption, then appends as candles close", () =>
    Effect.gen(function* () {
      const emulator = yield* frozenEmulator(T)
      const file = join(yield* tempDir, "market.sqlite")
      const windowStart = T - WINDOW * M

      // first run: stopped (its layer released, as on a kill) once some pages are in
      const before = yield* Effect.gen(function* () {
        yield* waitFor((p) => p.rowsStored >= 10_000)
        return yield* stored([windowStart, T])
      }).pipe(Effect.provide(historyOverEmulator(emulator, file, [], targets)), Effect.scoped)
      expect(before).toBeGreaterThanOrEqual(10_000)
      expect(before).toBeLessThan(WINDOW)

      // second run on the same file: only the pages still missing are fetched
      const afterRestart = yield* stored([windowStart, T]).pipe(
        Effect.provide(Layer.fresh(historyOverEmulator(emulator, file)))
      )
      emulator.resetCounts()
      yield* Effect.gen(function* () {
        const done = yield* waitFor((p) => p.state === "complete")
        expect(done).toMatchObject({ series: "binance:BTC/USDT:1m:30d", missing: 0, behindSeconds: 0, lastError: null })
        expect(yield* stored([windowStart, T])).toBe(WINDOW)
        expect(emulator.requestCount("binance", KLINES)).toBe(Math.ceil((WINDOW - afterRestart) / 1000))

        // five minutes later the five closed candles are appended in one request
        emulator.resetCounts()
        emulator.advance(5 * M)
        yield* waitFor((p) => p.state === "complete" && p.windowStart === windowStart + 5 * M)
        expect(yield* stored([T, T + 5 * M])).toBe(5)
        expect(yield* stored([T + 5 * M, T + 6 * M])).toBe(0)
        expect(emulator.requestCount("binance", KLINES)).toBe(1)
      }).pipe(Effect.provide(Layer.fresh(historyOverEmulator(emulator, file, [], targets))))
    })
  )
})
