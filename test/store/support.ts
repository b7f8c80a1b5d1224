import { PgClient } from "@effect/sql-pg"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { CandleStore } from "../../src/Store/CandleStore.js"
import { candleStoreAt } from "../../src/Store/Live.js"

export const PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"

/** A fresh temp folder, removed when the scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "candle-store-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const admin = <A, E>(statement: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(SqlClient.SqlClient, statement).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(PG_ADMIN_URL), maxConnections: 1 })),
    Effect.scoped
  )

/** A PostgreSQL database with a random name on the machine's server, dropped when the scope closes. */
export const tempPgDatabase = Effect.acquireRelease(
  Effect.gen(function* () {
    const name = `candle_store_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
    yield* admin((sql) => sql.unsafe(`CREATE DATABASE ${name}`))
    return { name, url: `postgres://postgres@127.0.0.1:5432/${name}` }
  }).pipe(Effect.orDie),
  ({ name }) => admin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(Effect.orDie)
)

export type Engine = "sqlite" | "postgres"

const quiet = Logger.minimumLogLevel(LogLevel.Warning)

/** The candle store on `engine`: SQLite in `file` (a temp file by default) or a throwaway PostgreSQL database. */
export const storeLayer = (engine: Engine, file?: string): Layer.Layer<CandleStore> =>
  engine === "sqlite"
    ? Layer.unwrapScoped(
        Effect.map(
          file === undefined ? Effect.map(tempDir, (dir) => join(dir, "sub", "market.sqlite")) : Effect.succeed(file),
          (filename) => candleStoreAt({ engine: "sqlite", filename })
        )
      ).pipe(Layer.orDie, Layer.provide(quiet))
    : Layer.unwrapScoped(
        Effect.map(tempPgDatabase, ({ url }) =>
          candleStoreAt({ engine: "postgres", url: Redacted.make(url), display: url })
        )
      ).pipe(Layer.orDie, Layer.provide(quiet))

export const candle = (timestamp: number, close = 100, volume = 1) => ({
  timestamp,
  open: close,
  high: close + 1,
  low: close - 1,
  close,
  volume
})
