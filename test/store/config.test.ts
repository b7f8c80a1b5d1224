import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Logger, LogLevel, Redacted } from "effect"
import { CandleStore } from "../../src/Store/CandleStore.js"
import { candleStoreFor } from "../../src/Store/Live.js"
import { parseDatabaseUrl, redactUrl, storeConfig } from "../../src/Store/Config.js"

const load = (env: Record<string, string>) =>
  Effect.either(storeConfig).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

describe("DATABASE_URL", () => {
  it.effect("defaults to the SQLite file ./data/market.sqlite", () =>
    Effect.gen(function* () {
      const config = yield* load({})
      expect(Either.map(config, (c) => c.location)).toEqual(
        Either.right({ engine: "sqlite", filename: "./data/market.sqlite" })
      )
      expect(Either.map(config, (c) => c.backfill)).toEqual(Either.right([]))
      expect(Either.map(config, (c) => c.explicit)).toEqual(Either.right(false))
      const configured = yield* load({ DATABASE_URL: "sqlite:///var/lib/market.sqlite" })
      // a DATABASE_URL that was set and cannot be opened stops start-up instead of turning the store off
      expect(Either.map(configured, (c) => c.explicit)).toEqual(Either.right(true))
    })
  )

  it("sqlite paths, postgres URLs and none", () => {
    expect(parseDatabaseUrl("sqlite:///var/lib/market.sqlite")).toEqual(
      Either.right({ engine: "sqlite", filename: "/var/lib/market.sqlite" })
    )
    expect(parseDatabaseUrl("none")).toEqual(Either.right({ engine: "none" }))
    expect(parseDatabaseUrl("NONE")).toEqual(Either.right({ engine: "none" }))
    const pg = parseDatabaseUrl("postgres://app:s3cret@db.internal:5432/market")
    expect(Either.isRight(pg) && pg.right.engine === "postgres" ? pg.right.display : "").toBe(
      "postgres://app:***@db.internal:5432/market"
    )
    expect(Either.isRight(pg) && pg.right.engine === "postgres" ? Redacted.value(pg.right.url) : "").toBe(
      "postgres://app:s3cret@db.internal:5432/market"
    )
    expect(redactUrl("postgresql://u@h/db")).toBe("postgresql://u@h/db")
  })

  it.effect("a bad URL stops start-up with a message that never repeats the password", () =>
    Effect.gen(function* () {
      for (const raw of ["mysql://root:s3cret@h/db", "postgres://u:s3cret@", "sqlite://"]) {
        const config = yield* load({ DATABASE_URL: raw })
        expect(Either.isLeft(config)).toBe(true)
        expect(String(Either.isLeft(config) ? config.left : "")).toContain("DATABASE_URL")
        expect(String(Either.isLeft(config) ? config.left : "")).not.toContain("s3cret")
      }
      const backfill = yield* load({ HISTORY_BACKFILL: "binance:BTC/USDT:1m" })
      expect(String(Either.isLeft(backfill) ? backfill.left : "")).toContain("HISTORY_BACKFILL")
    })
  )

  it.effect("a default file that cannot be created turns the store off; a configured one stops start-up", () =>
    Effect.gen(function* () {
      // a folder that cannot be created (under a file), as in a working directory an MCP host picks
      const location = { engine: "sqlite" as const, filename: "/dev/null/data/market.sqlite" }
      const open = (explicit: boolean) =>
        Effect.map(CandleStore, (store) => store.engine).pipe(
          Effect.provide(candleStoreFor({ location, backfill: [], explicit })),
          Effect.provide(Logger.minimumLogLevel(LogLevel.Error)),
          Effect.either
        )
      expect(yield* open(false)).toEqual(Either.right("none"))
      const configured = yield* open(true)
      expect(Either.isLeft(configured) ? configured.left._tag : "").toBe("CandleStoreError")
    })
  )
})
