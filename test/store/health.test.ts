import { HttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option, Schedule } from "effect"
import { join } from "node:path"
import { parseBackfill } from "../../src/Store/Config.js"
import { serverOver } from "./http-support.js"
import { tempDir } from "./support.js"
import { frozenEmulator, historyOverEmulator } from "./support-emulator.js"

const T = Date.UTC(2024, 0, 1)
const targets = Option.getOrThrow(Option.getRight(parseBackfill("binance:BTC/USDT:1h:2d")))

interface HealthBody {
  readonly history?: ReadonlyArray<{ series: string; state: string; missing: number | null; rowsStored: number }>
}

const health = Effect.flatMap(HttpClient.HttpClient, (client) => client.get("/v1/health")).pipe(
  Effect.flatMap((response) => Effect.map(response.json, (body) => body as HealthBody))
)

describe("/v1/health and HISTORY_BACKFILL", () => {
  it.scopedLive("shows each backfill series and how complete it is", () =>
    Effect.gen(function* () {
      const emulator = yield* frozenEmulator(T)
      const file = join(yield* tempDir, "market.sqlite")
      const done = yield* health.pipe(
        Effect.filterOrFail(
          (body) => body.history?.[0]?.state === "complete",
          () => "not complete yet"
        ),
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("20 seconds"))),
        Effect.provide(serverOver(emulator, historyOverEmulator(emulator, file, [], targets)))
      )
      // two days of hourly candles closed before T
      expect(done.history).toEqual([
        expect.objectContaining({ series: "binance:BTC/USDT:1h:2d", state: "complete", missing: 0, rowsStored: 48 })
      ])
    })
  )

  it.scopedLive("has no history field when no backfill is configured", () =>
    Effect.gen(function* () {
      const emulator = yield* frozenEmulator(T)
      const file = join(yield* tempDir, "market.sqlite")
      const body = yield* health.pipe(Effect.provide(serverOver(emulator, historyOverEmulator(emulator, file))))
      expect(Object.hasOwn(body, "history")).toBe(false)
    })
  )
})
