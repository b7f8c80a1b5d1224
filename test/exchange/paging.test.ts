import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { clampLimit, fetchOhlcvPaged, timeframeToMs } from "../../src/Exchange/ohlcvPaging.js"

const TF = 60_000
const T0 = 1_717_900_800_000 // a whole minute

interface Fake {
  readonly calls: Array<readonly [number | undefined, number]>
  readonly fetch: (since: number | undefined, limit: number) => Effect.Effect<ReadonlyArray<{ timestamp: number }>>
}

/**
 * An exchange with one candle per minute from `first` to `last` (inclusive). `overlap` candles before `since` are
 * repeated at the start of each page; `ignoreLimit` returns up to 720 like kraken.
 */
const fakeExchange = (
  first: number,
  last: number,
  opts: { overlap?: number; ignoreLimit?: boolean; duplicateInPage?: boolean } = {}
): Fake => {
  const calls: Array<readonly [number | undefined, number]> = []
  const all: Array<number> = []
  for (let t = first; t <= last; t += TF) all.push(t)
  return {
    calls,
    fetch: (since, limit) =>
      Effect.sync(() => {
        calls.push([since, limit])
        const size = opts.ignoreLimit === true ? 720 : limit
        const from = since === undefined ? undefined : since - (opts.overlap ?? 0) * TF
        const rows = from === undefined ? all.slice(-size) : all.filter((t) => t >= from).slice(0, size)
        const page = opts.duplicateInPage === true ? [...rows, ...rows] : rows
        // pages come newest first on some exchanges
        return page.map((timestamp) => ({ timestamp })).reverse()
      })
  }
}

const minutes = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i * TF)
const stamps = (candles: ReadonlyArray<{ timestamp: number }>) => candles.map((c) => c.timestamp)

describe("fetchOhlcvPaged", () => {
  it.effect("makes one call when the limit fits one page", () =>
    Effect.gen(function* () {
      const fake = fakeExchange(T0, T0 + 50 * TF)
      const out = yield* fetchOhlcvPaged({
        fetch: fake.fetch,
        limit: 3,
        since: Option.some(T0 + 10 * TF),
        timeframeMs: TF,
        perRequestMax: 3,
        now: T0 + 50 * TF
      })
      assert.deepStrictEqual(stamps(out), minutes(T0 + 10 * TF, 3))
      assert.deepStrictEqual(fake.calls, [[T0 + 10 * TF, 3]])
    })
  )

  it.effect("pages forward from since", () =>
    Effect.gen(function* () {
      const fake = fakeExchange(T0, T0 + 50 * TF)
      const out = yield* fetchOhlcvPaged({
        fetch: fake.fetch,
        limit: 10,
        since: Option.some(T0 + 5 * TF),
        timeframeMs: TF,
        perRequestMax: 3,
        now: T0 + 50 * TF + 30_000
      })
      assert.deepStrictEqual(stamps(out), minutes(T0 + 5 * TF, 10))
      assert.deepStrictEqual(fake.calls, [
        [T0 + 5 * TF, 3],
        [T0 + 8 * TF, 3],
        [T0 + 11 * TF, 3],
        [T0 + 14 * TF, 3]
      ])
    })
  )

  it.effect("returns the last `limit` candles up to now without since", () =>
    Effect.gen(function* () {
      const fake = fakeExchange(T0, T0 + 100 * TF)
      const out = yield* fetchOhlcvPaged({
        fetch: fake.fetch,
        limit: 10,
        since: Option.none(),
        timeframeMs: TF,
        perRequestMax: 3,
        now: T0 + 100 * TF + 30_000
      })
      assert.deepStrictEqual(stamps(out), minutes(T0 + 91 * TF, 10))
      assert.deepStrictEqual(fake.calls, [
        [T0 + 91 * TF, 3],
        [T0 + 94 * TF, 3],
        [T0 + 97 * TF, 3],
        [T0 + 100 * TF, 3]
      ])
    })
  )

  it.effect("drops duplicates from overlapping page boundaries", () =>
    Effect.gen(function* () {
      const fake = fakeExchange(T0, T0 + 50 * TF, { overlap: 1, duplicateInPage: true })
      const out = yield* fetchOhlcvPaged({
        fetch: fake.fetch,
        limit: 10,
        since: Option.some(T0 + 5 * TF),
        timeframeMs: TF,
        perRequestMax: 3,
        now: T0 + 50 * TF
      })
      assert.deepStrictEqual(stamps(out), minutes(T0 + 5 * TF, 10))
      // every page repeats the previous last candle, so each brings two new ones (the first brings two past since)
      assert.deepStrictEqual(
        fake.calls.map(([since]) => since),
        [5, 7, 9, 11, 13].map((m) => T0 + m * TF)
      )
    })
  )

  it.effect("stops when the history ends or a page brings nothing new", () =>
    Effect.gen(function* () {
      const short = fakeExchange(T0, T0 + 5 * TF)
      const untilNow = yield* fetchOhlcvPaged({
        fetch: short.fetch,
        limit: 10,
        since: Option.some(T0),
        timeframeMs: TF,
        perRequestMax: 3,
        now: T0 + 5 * TF + 1
      })
      assert.deepStrictEqual(stamps(untilNow), minutes(T0, 6))
      assert.strictEqual(short.calls.length, 2)

      const stale = fakeExchange(T0, T0 + 4 * TF)
      const gapToNow = yield* fetchOhlcvPaged({
        fetch: stale.fetch,
        limit: 10,
        since: Option.some(T0),
        timeframeMs: TF,
        perRequestMax: 3,
        now: T0 + 60 * TF
      })
      assert.deepStrictEqual(stamps(gapToNow), minutes(T0, 5))
      assert.deepStrictEqual(
        stale.calls.map(([since]) => since),
        [T0, T0 + 3 * TF, T0 + 5 * TF]
      )
    })
  )

  it.effect("trims an exchange that ignores the limit (kraken)", () =>
    Effect.gen(function* () {
      const fake = fakeExchange(T0, T0 + 1000 * TF, { ignoreLimit: true })
      const fromSince = yield* fetchOhlcvPaged({
        fetch: fake.fetch,
        limit: 5,
        since: Option.some(T0 + 100 * TF),
        timeframeMs: TF,
        perRequestMax: 720,
        now: T0 + 1000 * TF
      })
      assert.deepStrictEqual(stamps(fromSince), minutes(T0 + 100 * TF, 5))
      const latest = yield* fetchOhlcvPaged({
        fetch: fake.fetch,
        limit: 5,
        since: Option.none(),
        timeframeMs: TF,
        perRequestMax: 720,
        now: T0 + 1000 * TF
      })
      assert.deepStrictEqual(stamps(latest), minutes(T0 + 996 * TF, 5))
      assert.strictEqual(fake.calls.length, 2)
    })
  )

  it.effect("is all or nothing: a failing page fails the whole walk, never a prefix", () =>
    Effect.gen(function* () {
      const fake = fakeExchange(T0, T0 + 3000 * TF)
      const calls: Array<number | undefined> = []
      const error = yield* Effect.flip(
        fetchOhlcvPaged({
          fetch: (since, limit) => {
            calls.push(since)
            return calls.length === 2 ? Effect.fail("broken page" as const) : fake.fetch(since, limit)
          },
          limit: 1500,
          since: Option.some(T0),
          timeframeMs: TF,
          perRequestMax: 1000,
          now: T0 + 3000 * TF
        })
      )
      assert.strictEqual(error, "broken page")
      assert.deepStrictEqual(calls, [T0, T0 + 1000 * TF])
    })
  )

  it("parses timeframes and clamps limits", () => {
    assert.deepStrictEqual(timeframeToMs("1m"), Option.some(60_000))
    assert.deepStrictEqual(timeframeToMs("4h"), Option.some(14_400_000))
    assert.deepStrictEqual(timeframeToMs("1M"), Option.some(2_592_000_000))
    assert.deepStrictEqual(timeframeToMs("7x"), Option.none())
    assert.deepStrictEqual(timeframeToMs("0m"), Option.none())
    assert.strictEqual(clampLimit(5000, 2000), 2000)
    assert.strictEqual(clampLimit(0, 2000), 1)
    assert.strictEqual(clampLimit(12.7, 2000), 12)
  })
})
