import { SqlClient } from "@effect/sql"
import { Migrator } from "@effect/sql"
import { Effect } from "effect"

/**
 * One schema for SQLite and PostgreSQL: BIGINT millisecond times and DOUBLE PRECISION values mean the same in both
 * (SQLite maps them to INTEGER and REAL affinity). `timeframe`, not `interval`, which PostgreSQL reserves.
 */
const createCandles = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS candles (
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    open_time BIGINT NOT NULL,
    open DOUBLE PRECISION NOT NULL,
    high DOUBLE PRECISION NOT NULL,
    low DOUBLE PRECISION NOT NULL,
    close DOUBLE PRECISION NOT NULL,
    volume DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, open_time)
  )`
  // ranges an exchange has answered for: buckets it left out there had no trades and are not asked for again
  yield* sql`CREATE TABLE IF NOT EXISTS candle_checked (
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, start_time)
  )`
})

export const migrations = Migrator.fromRecord({ "0001_create_candles": createCandles })

export const runMigrations = Migrator.make({})({ loader: migrations, table: "candle_store_migrations" })
