import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { join } from "node:path"
import { Exchange, type ResolvedMarket } from "../../src/Exchange/Exchange.js"
import { CandleStore } from "../../src/Store/CandleStore.js"
import { tempDir } from "./support.js"
import { frozenEmulator, historyOverEmulator, type OhlcvCall } from "./support-emulator.js"

const M = 60_000
const T = Date.UTC(2024, 0, 1)
const BTC: ResolvedMarket = { exchange: "binance", symbol: "BTC/USDT" }
const KLINES = "/api/v3/klines"

const ohlcv = (since: number | undefined, limit: number, interval = "1m") =>
  Effect.flatMap(Exchange, (exchange) => exchange.ohlcv(BTC, { interval, since: Option.fromNullable(since), limit }))

describe("reads through the candle store (real ccxt, emulator)", () => {
  it.scopedLive("a range fetched once costs zero exchange requests after a restart, with identical candles", () =>
    Effect.gen(function* () {
      const emulator = yield* frozenEmulator()
      const file = join(yield* tempDir, "market.sqlite")
      const since = T - 3 * 24 * 60 * M
      const first = yield* ohlcv(since, 1500).pipe(Effect.provide(historyOverEmulator(emulator, file)))
      expect(first.candles).toHaveLength(1500)
      expect(first.candles[0]?.timestamp).toBe(since)
      expect(first.candles[1499]?.timestamp).toBe(since + 1499 * M)
      expect(emulator.requestCount("binance", KLINES)).toBe(2)

      emulator.resetCounts()
      const calls: Array<OhlcvCall> = []
      const again = yield* ohlcv(since, 1500).pipe(
        Effect.provide(Layer.fresh(historyOverEmulator(emulator, file, calls)))
      )
      expect(emulator.requestCount()).toBe(0)
      expect(calls).toEqual([])
      expect(again).toEqual(first)
    })
  )

  it.scopedLive("a partial overlap fetches only the missing part", () =>
    Effect.gen(function* () {
      const emulator = yield* frozenEmulator()
      const file = join(yield* tempDir, "market.sqlite")
      const calls: Array<OhlcvCall> = []
      const since = T - 2 * 24 * 60 * M
      yield* Effect.gen(function* () {
        const a = yield* ohlcv(since, 1000)
        expect(calls).toEqual([{ since, limit: 1000 }])
        calls.length = 0
        emulator.resetCounts()
        const b = yield* ohlcv(since + 600 * M, 1000)
        expect(calls).toEqual([{ since: since + 1000 * M, limit: 600 }])
        expect(emulator.requestCount("binance", KLINES)).toBe(1)
        expect(b.candles.map((c) => c.timestamp)).toEqual(Array.from({ length: 1000 }, (_, i) => since + (600 + i) * M))
        // the overlap is the same candles as the first answer
        expect(b.candles.slice(0, 400)).toEqual(a.candles.slice(600))
        calls.length = 0
        // a range inside what is stored: nothing fetched
        const c = yield* ohlcv(since + 100 * M, 1200)
        expect(calls).toEqual([])
        expect(c.candles).toHaveLength(1200)
        expect(
          yield* Effect.flatMap(CandleStore, (s) => s.count({ ...BTC, interval: "1m" }, [since, since + 1600 * M]))
        ).toBe(1600)
      }).pipe(Effect.provide(historyOverEmulator(emulator, file, calls)))
    })
  )

  it.scopedLive(
    "the latest candles: one request for the open one once the rest is stored; the open one is never stored",
    () =>
      Effect.gen(function* () {
        const emulator = yield* frozenEmulator(T + 17 * M + 23_456)
        const file = join(yield* tempDir, "market.sqlite")
        const calls: Array<OhlcvCall> = []
        const openSlot = T + 17 * M
        yield* Effect.gen(function* () {
          const first = yield* ohlcv(undefined, 100)
          expect(calls).toEqual([{ since: null, limit: 100 }])
          expect(first.candles.map((c) => c.timestamp)).toEqual(
            Array.from({ length: 100 }, (_, i) => openSlot - (99 - i) * M)
          )
          calls.length = 0
          const second = yield* ohlcv(undefined, 100)
          expect(calls).toEqual([{ since: null, limit: 1 }])
          expect(second).toEqual(first)
          const store = yield* CandleStore
          const key = { ...BTC, interval: "1m" }
          expect(yield* store.count(key, [openSlot, openSlot + M])).toBe(0)
          expect(yield* store.count(key, [openSlot - 99 * M, openSlot])).toBe(99)

          // a minute later the candle that was open is closed: it and the new open one come in one request
          emulator.advance(M)
          calls.length = 0
          const third = yield* ohlcv(undefined, 100)
          expect(calls).toEqual([{ since: null, limit: 2 }])
          expect(third.candles[99]?.timestamp).toBe(openSlot + M)
          expect(third.candles.slice(0, 98)).toEqual(first.candles.slice(1, 99))
          expect(yield* store.count(key, [openSlot, openSlot + M])).toBe(1)
        }).pipe(Effect.provide(historyOverEmulator(emulator, file, calls)))
      })
  )

  it.scopedLive("intervals the store does not keep (1w) go straight to the exchange", () =>
    Effect.gen(function* () {
      const emulator = yield* frozenEmulator()
      const file = join(yield* tempDir, "market.sqlite")
      const calls: Array<OhlcvCall> = []
      yield* Effect.gen(function* () {
        const weeks = yield* ohlcv(undefined, 10, "1w")
        expect(weeks.candles.length).toBeGreaterThan(0)
        yield* ohlcv(undefined, 10, "1w")
        expect(calls).toEqual([
          { since: null, limit: 10 },
          { since: null, limit: 10 }
        ])
      }).pipe(Effect.provide(historyOverEmulator(emulator, file, calls)))
    })
  )
})
