import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Ref, Schedule } from "effect"
import { Exchange } from "../../src/Exchange/Exchange.js"
import { makeBackfill } from "../../src/Store/Backfill.js"
import { CandleStore } from "../../src/Store/CandleStore.js"
import { parseBackfill } from "../../src/Store/Config.js"
import { makeForeground } from "../../src/Store/StoreExchange.js"
import { makeMockExchange, T0 } from "../support/mockExchange.js"
import { storeLayer } from "./support.js"

const M = 60_000
const target = Option.getOrThrow(Option.getRight(parseBackfill("binance:BTC/USDT:1m:1h")))
const [firstTarget] = target

describe("backfill priority", () => {
  it.scopedLive("waits while a client request is waiting on the exchange, then fills the window", () =>
    Effect.gen(function* () {
      const mock = yield* makeMockExchange
      const exchange = yield* Effect.provide(Exchange, mock.layer)
      const store = yield* CandleStore
      const foreground = makeForeground()
      const backfill = makeBackfill(exchange, store, foreground, target, {
        now: Effect.succeed(T0 + 2 * 60 * M),
        yieldPause: "10 millis",
        maxIdle: "50 millis"
      })
      const ohlcvCalls = Effect.map(Ref.get(mock.calls), (calls) => calls["ohlcv"] ?? 0)
      const first = Effect.map(backfill.progress, (all) => all[0])

      yield* foreground.enter
      if (firstTarget === undefined) return
      yield* Effect.forkScoped(backfill.run(firstTarget))
      yield* Effect.sleep("300 millis")
      expect(yield* ohlcvCalls).toBe(0)
      expect(yield* first).toMatchObject({ state: "backfilling", missing: 60, rowsStored: 0 })

      yield* foreground.exit
      const done = yield* first.pipe(
        Effect.filterOrFail((p) => p?.state === "complete"),
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds")))
      )
      expect(done).toMatchObject({ missing: 0, behindSeconds: 0, rowsStored: 60, lastError: null })
      expect(yield* ohlcvCalls).toBe(1)
      expect(
        yield* store.count({ exchange: "binance", symbol: "BTC/USDT", interval: "1m" }, [T0 + 60 * M, T0 + 120 * M])
      ).toBe(60)
    }).pipe(Effect.provide(storeLayer("sqlite")))
  )
})
