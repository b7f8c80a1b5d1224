import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Effect, Layer, Logger, Stream } from "effect"
import { join } from "node:path"
import { CandleStore, isStorable, type SeriesKey, subtractSpans } from "../../src/Store/CandleStore.js"
import { candle, type Engine, storeLayer, tempDir } from "./support.js"

const M = 60_000
const T0 = Date.UTC(2024, 0, 1)
const key = (name: string): SeriesKey => ({ exchange: "binance", symbol: `${name}/USDT`, interval: "1m" })
const at = (i: number) => T0 + i * M

interface Logged {
  readonly message: unknown
  readonly annotations: Record<string, unknown>
}

/** Runs `effect` with a logger that records every line. */
const captureLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const lines: Array<Logged> = []
    const logger = Logger.make(({ message, annotations }) => {
      const record: Record<string, unknown> = {}
      for (const [k, v] of annotations) record[k] = v
      lines.push({ message: Array.isArray(message) ? message[0] : message, annotations: record })
    })
    const result = yield* effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return { result, lines }
  })

describe.each<Engine>(["sqlite", "postgres"])("candle store on %s", (engine) => {
  layer(storeLayer(engine), { timeout: 30_000 })((it) => {
    it.effect("stores closed candles and reads them back in order; an identical write changes nothing", () =>
      Effect.gen(function* () {
        const store = yield* CandleStore
        const k = key("ROUND")
        const candles = [candle(at(2), 102.5, 3.25), candle(at(0), 100), candle(at(1), 101, 0)]
        expect(yield* store.put(k, candles)).toBe(3)
        expect(yield* store.read(k, [at(0), at(3)])).toEqual([
          candle(at(0), 100),
          candle(at(1), 101, 0),
          candle(at(2), 102.5, 3.25)
        ])
        expect(yield* store.read(k, [at(1), at(2)])).toEqual([candle(at(1), 101, 0)])
        expect(yield* store.count(k, [at(0), at(100)])).toBe(3)
        expect(yield* store.put(k, candles)).toBe(0)
        expect(yield* store.read({ ...k, interval: "5m" }, [at(0), at(3)])).toEqual([])
      })
    )

    it.effect("a changed closed candle is replaced and logged with the old and new values", () =>
      Effect.gen(function* () {
        const store = yield* CandleStore
        const k = key("CHANGE")
        yield* store.put(k, [candle(at(0), 100), candle(at(1), 101)])
        const { result, lines } = yield* captureLogs(store.put(k, [candle(at(0), 100), candle(at(1), 105)]))
        expect(result).toBe(1)
        expect(yield* store.read(k, [at(0), at(2)])).toEqual([candle(at(0), 100), candle(at(1), 105)])
        const warnings = lines.filter((l) => l.message === "stored closed candle replaced by different values")
        expect(warnings).toHaveLength(1)
        expect(warnings[0]?.annotations).toEqual({
          exchange: "binance",
          symbol: "CHANGE/USDT",
          interval: "1m",
          time: "2024-01-01T00:01:00.000Z",
          old: candle(at(1), 101),
          new: candle(at(1), 105)
        })
      })
    )

    it.effect("missing: the buckets with neither a stored candle nor a checked range", () =>
      Effect.gen(function* () {
        const store = yield* CandleStore
        const k = key("GAPS")
        yield* store.put(
          k,
          [0, 1, 2, 3, 4, 7, 8, 9].map((i) => candle(at(i)))
        )
        expect(yield* store.missing(k, M, [at(0), at(12)])).toEqual([
          [at(5), at(7)],
          [at(10), at(12)]
        ])
        // an unaligned start begins at the next bucket
        expect(yield* store.missing(k, M, [at(4) + 1, at(6)])).toEqual([[at(5), at(6)]])
        yield* store.markChecked(k, [at(5), at(7)])
        expect(yield* store.missing(k, M, [at(0), at(12)])).toEqual([[at(10), at(12)]])
        expect(yield* store.missing(k, M, [at(0), at(10)])).toEqual([])
      })
    )

    it.effect("checked ranges merge when they touch or overlap", () =>
      Effect.gen(function* () {
        const store = yield* CandleStore
        const k = key("CHECKED")
        yield* store.markChecked(k, [at(0), at(5)])
        yield* store.markChecked(k, [at(5), at(10)])
        yield* store.markChecked(k, [at(3), at(12)])
        yield* store.markChecked(k, [at(20), at(22)])
        expect(yield* store.missing(k, M, [at(0), at(25)])).toEqual([
          [at(12), at(20)],
          [at(22), at(25)]
        ])
        yield* store.markChecked(k, [at(12), at(20)])
        expect(yield* store.missing(k, M, [at(0), at(25)])).toEqual([[at(22), at(25)]])
      })
    )

    it.effect("streams a range page by page, in order, every candle once", () =>
      Effect.gen(function* () {
        const store = yield* CandleStore
        const k = key("STREAM")
        const n = 12_345
        yield* store.put(
          k,
          Array.from({ length: n }, (_, i) => candle(at(i), 100 + (i % 50)))
        )
        const got = Chunk.toReadonlyArray(yield* Stream.runCollect(store.stream(k, [at(0), at(n)], 1_000)))
        expect(got).toHaveLength(n)
        expect(got.every((c, i) => c.timestamp === at(i) && c.close === 100 + (i % 50))).toBe(true)
        const middle = Chunk.toReadonlyArray(yield* Stream.runCollect(store.stream(k, [at(1_000), at(3_000)], 700)))
        expect(middle.map((c) => c.timestamp)).toEqual(Array.from({ length: 2_000 }, (_, i) => at(1_000 + i)))
      })
    )

    it.effect("a write that fails midway leaves nothing behind (one transaction)", () =>
      Effect.gen(function* () {
        const store = yield* CandleStore
        const k = key("ATOMIC")
        // 600 rows are two INSERT batches; the second holds a NULL the schema refuses
        const rows = Array.from({ length: 600 }, (_, i) => candle(at(i)))
        rows[550] = { ...candle(at(550)), volume: null as unknown as number }
        const result = yield* Effect.either(store.put(k, rows))
        expect(result._tag).toBe("Left")
        expect(yield* store.count(k, [at(0), at(600)])).toBe(0)
      })
    )
  })
})

describe("candle store on sqlite: a file that lasts", () => {
  it.scoped("creates the folder on first use and keeps candles and checked ranges across a restart", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = join(dir, "nested", "deeper", "market.sqlite")
      const k = key("RESTART")
      yield* Effect.gen(function* () {
        const store = yield* CandleStore
        yield* store.put(k, [candle(at(0)), candle(at(1))])
        yield* store.markChecked(k, [at(2), at(4)])
      }).pipe(Effect.provide(storeLayer("sqlite", file)))
      const after = yield* Effect.gen(function* () {
        const store = yield* CandleStore
        return {
          candles: yield* store.read(k, [at(0), at(10)]),
          missing: yield* store.missing(k, M, [at(0), at(6)])
        }
      }).pipe(Effect.provide(Layer.fresh(storeLayer("sqlite", file))))
      expect(after.candles).toEqual([candle(at(0)), candle(at(1))])
      expect(after.missing).toEqual([[at(4), at(6)]])
    })
  )
})

describe("what the store accepts", () => {
  it("integrity: aligned, finite, low ≤ open/close ≤ high, positive prices, volume ≥ 0", () => {
    expect(isStorable(candle(at(1)), M)).toBe(true)
    expect(isStorable(candle(at(1) + 1), M)).toBe(false)
    expect(isStorable({ ...candle(at(1)), high: 98 }, M)).toBe(false)
    expect(isStorable({ ...candle(at(1)), low: 101 }, M)).toBe(false)
    expect(isStorable({ ...candle(at(1)), volume: -1 }, M)).toBe(false)
    expect(isStorable({ ...candle(at(1)), close: Number.NaN }, M)).toBe(false)
    expect(isStorable({ timestamp: at(1), open: 0, high: 0, low: 0, close: 0, volume: 0 }, M)).toBe(false)
  })

  it("subtractSpans", () => {
    expect(subtractSpans([0, 10], [])).toEqual([[0, 10]])
    expect(
      subtractSpans(
        [0, 10],
        [
          [8, 12],
          [2, 4],
          [3, 5]
        ]
      )
    ).toEqual([
      [0, 2],
      [5, 8]
    ])
    expect(subtractSpans([0, 10], [[-5, 20]])).toEqual([])
  })
})
