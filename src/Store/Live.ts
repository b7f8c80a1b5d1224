import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import type { SqlClient, SqlError } from "@effect/sql"
import { type ConfigError, Effect, Layer } from "effect"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { CandleStore, CandleStoreError, disabledCandleStore, makeCandleStore } from "./CandleStore.js"
import { type StoreConfig, type StoreLocation, storeConfig } from "./Config.js"
import { runMigrations } from "./Migrations.js"

const sqlLayer = (
  location: Exclude<StoreLocation, { engine: "none" }>
): Layer.Layer<SqlClient.SqlClient, ConfigError.ConfigError | SqlError.SqlError | CandleStoreError> =>
  location.engine === "sqlite"
    ? Layer.provideMerge(
        SqliteClient.layer({ filename: location.filename }),
        Layer.effectDiscard(
          Effect.try({
            try: () => {
              if (location.filename !== ":memory:") mkdirSync(dirname(location.filename), { recursive: true })
            },
            catch: (cause) =>
              new CandleStoreError({
                message: `cannot create the folder of ${location.filename}: ${String(cause)}`,
                cause
              })
          })
        )
      )
    : PgClient.layer({ url: location.url, applicationName: "mcp-crypto-data-server", maxConnections: 5 })

/** The candle store at `location`, migrated; `none` gives a store that keeps nothing. */
export const candleStoreAt = (location: StoreLocation): Layer.Layer<CandleStore, CandleStoreError> => {
  if (location.engine === "none") return Layer.succeed(CandleStore, disabledCandleStore)
  const where = location.engine === "sqlite" ? location.filename : location.display
  return Layer.effect(
    CandleStore,
    Effect.gen(function* () {
      yield* runMigrations
      const store = yield* makeCandleStore(location.engine)
      yield* Effect.logInfo("candle store ready").pipe(
        Effect.annotateLogs({ engine: location.engine, database: where })
      )
      return store
    })
  ).pipe(
    Layer.provide(sqlLayer(location)),
    Layer.mapError(
      (cause) =>
        new CandleStoreError({
          message: `candle store (${location.engine}, ${where}) could not be opened: ${
            typeof cause === "object" && cause !== null && "message" in cause ? String(cause.message) : String(cause)
          }`,
          cause
        })
    )
  )
}

/** The candle store of `config`; a default one (DATABASE_URL unset) that cannot be opened is off, with a warning. */
export const candleStoreFor = (config: StoreConfig): Layer.Layer<CandleStore, CandleStoreError> =>
  config.explicit === true
    ? candleStoreAt(config.location)
    : // the default file is relative to the working directory, which an MCP host may set to one we cannot write
      candleStoreAt(config.location).pipe(
        Layer.catchAll((error) =>
          Layer.effect(
            CandleStore,
            Effect.as(
              Effect.logWarning("candle store off: the default SQLite file cannot be opened; set DATABASE_URL").pipe(
                Effect.annotateLogs({ error: error.message })
              ),
              disabledCandleStore
            )
          )
        )
      )

/** The candle store DATABASE_URL names (default sqlite://./data/market.sqlite). */
export const CandleStoreLive: Layer.Layer<CandleStore, CandleStoreError> = Layer.unwrapEffect(
  Effect.map(storeConfig, candleStoreFor)
).pipe(
  Layer.catchAll((error) =>
    Layer.fail(
      error._tag === "CandleStoreError" ? error : new CandleStoreError({ message: String(error), cause: error })
    )
  )
)
