import { SqlClient, type SqlError } from "@effect/sql"
import { Chunk, Context, Data, Effect, Option, Stream } from "effect"
import type { Candle } from "../Domain/Market.js"
import { candlesWritten, candleConflicts } from "./Metrics.js"

/** Which candles: an exchange's market at one interval, in canonical ids (binance, BTC/USDT, 1m). */
export interface SeriesKey {
  readonly exchange: string
  readonly symbol: string
  readonly interval: string
}

/** A candle as stored: the plain fields of the domain Candle. */
export type StoredCandle = typeof Candle.Encoded

/** Half-open `[start, end)` in ms. */
export type Span = readonly [start: number, end: number]

export class CandleStoreError extends Data.TaggedError("CandleStoreError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

export type StoreEngine = "sqlite" | "postgres" | "none"

export interface CandleStoreService {
  readonly engine: StoreEngine
  /** Writes closed candles in one transaction; a changed stored candle is logged before it is replaced. */
  readonly put: (key: SeriesKey, candles: ReadonlyArray<StoredCandle>) => Effect.Effect<number, CandleStoreError>
  /** Remembers that the exchange answered for `span`, so buckets it left out are not asked for again. */
  readonly markChecked: (key: SeriesKey, span: Span) => Effect.Effect<void, CandleStoreError>
  /** The parts of `span` (aligned to `intervalMs`) that hold neither a stored candle nor a checked range. */
  readonly missing: (
    key: SeriesKey,
    intervalMs: number,
    span: Span
  ) => Effect.Effect<ReadonlyArray<Span>, CandleStoreError>
  /** Stored candles of `span`, oldest first; for ranges a request may hold in memory. */
  readonly read: (key: SeriesKey, span: Span) => Effect.Effect<ReadonlyArray<StoredCandle>, CandleStoreError>
  /** Stored candles of `span`, oldest first, read page by page (keyset on open time). */
  readonly stream: (key: SeriesKey, span: Span, pageSize?: number) => Stream.Stream<StoredCandle, CandleStoreError>
  readonly count: (key: SeriesKey, span: Span) => Effect.Effect<number, CandleStoreError>
}

export class CandleStore extends Context.Tag("app/CandleStore")<CandleStore, CandleStoreService>() {}

/** A candle the store accepts: finite, aligned to its interval, low ≤ open, close ≤ high, positive prices. */
export const isStorable = (candle: StoredCandle, intervalMs: number): boolean =>
  Number.isSafeInteger(candle.timestamp) &&
  candle.timestamp >= 0 &&
  candle.timestamp % intervalMs === 0 &&
  [candle.open, candle.high, candle.low, candle.close, candle.volume].every(Number.isFinite) &&
  candle.low > 0 &&
  candle.low <= Math.min(candle.open, candle.close) &&
  candle.high >= Math.max(candle.open, candle.close) &&
  candle.volume >= 0

const sameValues = (a: StoredCandle, b: StoredCandle): boolean =>
  a.open === b.open && a.high === b.high && a.low === b.low && a.close === b.close && a.volume === b.volume

/** `span` without the (possibly overlapping, unsorted) `covered` spans. */
export const subtractSpans = (span: Span, covered: ReadonlyArray<Span>): Array<Span> => {
  const sorted = [...covered].sort((x, y) => x[0] - y[0])
  const out: Array<Span> = []
  let cursor = span[0]
  for (const [start, end] of sorted) {
    if (end <= cursor) continue
    if (start >= span[1]) break
    if (start > cursor) out.push([cursor, Math.min(start, span[1])])
    cursor = Math.max(cursor, end)
    if (cursor >= span[1]) break
  }
  if (cursor < span[1]) out.push([cursor, span[1]])
  return out
}

// rows as arrays (cheaper than objects for long reads); PostgreSQL returns BIGINT as a string
const fromValues = (row: ReadonlyArray<unknown>): StoredCandle => ({
  timestamp: Number(row[0]),
  open: Number(row[1]),
  high: Number(row[2]),
  low: Number(row[3]),
  close: Number(row[4]),
  volume: Number(row[5])
})

const INSERT_BATCH = 500
const DEFAULT_PAGE = 5_000
/** Changed candles logged one by one per write; the rest are counted. */
const CONFLICTS_LOGGED = 5

const storeError = (what: string) => (cause: SqlError.SqlError) =>
  new CandleStoreError({ message: `candle store ${what} failed: ${cause.message}`, cause })

export const makeCandleStore = (engine: Exclude<StoreEngine, "none">) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const where = (key: SeriesKey) =>
      sql`exchange = ${key.exchange} AND symbol = ${key.symbol} AND timeframe = ${key.interval}`

    const readRows = (key: SeriesKey, span: Span, limit: Option.Option<number>) =>
      Effect.map(
        sql`SELECT open_time, open, high, low, close, volume FROM candles
          WHERE ${where(key)} AND open_time >= ${span[0]} AND open_time < ${span[1]}
          ORDER BY open_time ${Option.isSome(limit) ? sql`LIMIT ${limit.value}` : sql``}`.values,
        (rows) => rows.map(fromValues)
      )

    const put = Effect.fn("CandleStore.put")(function* (key: SeriesKey, candles: ReadonlyArray<StoredCandle>) {
      if (candles.length === 0) return 0
      const sorted = [...candles].sort((a, b) => a.timestamp - b.timestamp)
      const first = sorted[0]?.timestamp ?? 0
      const last = sorted[sorted.length - 1]?.timestamp ?? 0
      return yield* sql
        .withTransaction(
          Effect.gen(function* () {
            const existing = new Map<number, StoredCandle>()
            for (const c of yield* readRows(key, [first, last + 1], Option.none())) existing.set(c.timestamp, c)
            const writes: Array<StoredCandle> = []
            let conflicts = 0
            for (const candle of sorted) {
              const old = existing.get(candle.timestamp)
              if (old !== undefined && sameValues(old, candle)) continue
              writes.push(candle)
              if (old === undefined) continue
              conflicts += 1
              if (conflicts <= CONFLICTS_LOGGED) {
                yield* Effect.logWarning("stored closed candle replaced by different values").pipe(
                  Effect.annotateLogs({
                    exchange: key.exchange,
                    symbol: key.symbol,
                    interval: key.interval,
                    time: new Date(candle.timestamp).toISOString(),
                    old: { ...old },
                    new: { ...candle }
                  })
                )
              }
            }
            if (conflicts > CONFLICTS_LOGGED) {
              yield* Effect.logWarning("more stored closed candles replaced by different values").pipe(
                Effect.annotateLogs({ ...key, more: conflicts - CONFLICTS_LOGGED })
              )
            }
            for (let i = 0; i < writes.length; i += INSERT_BATCH) {
              const rows = writes.slice(i, i + INSERT_BATCH).map((c) => ({
                exchange: key.exchange,
                symbol: key.symbol,
                timeframe: key.interval,
                open_time: c.timestamp,
                open: c.open,
                high: c.high,
                low: c.low,
                close: c.close,
                volume: c.volume
              }))
              yield* sql`INSERT INTO candles ${sql.insert(rows)}
                ON CONFLICT (exchange, symbol, timeframe, open_time) DO UPDATE SET
                open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
                volume = excluded.volume`
            }
            if (conflicts > 0) yield* candleConflicts(conflicts)
            return writes.length
          })
        )
        .pipe(
          Effect.tap((written) => candlesWritten(written)),
          Effect.mapError(storeError("write"))
        )
    })

    const markChecked = Effect.fn("CandleStore.markChecked")(function* (key: SeriesKey, span: Span) {
      if (span[1] <= span[0]) return
      yield* sql
        .withTransaction(
          Effect.gen(function* () {
            const touching = yield* sql<{ start_time: number | string; end_time: number | string }>`
              SELECT start_time, end_time FROM candle_checked
              WHERE ${where(key)} AND start_time <= ${span[1]} AND end_time >= ${span[0]}`
            const start = Math.min(span[0], ...touching.map((r) => Number(r.start_time)))
            const end = Math.max(span[1], ...touching.map((r) => Number(r.end_time)))
            if (touching.length > 0) {
              yield* sql`DELETE FROM candle_checked
                WHERE ${where(key)} AND start_time <= ${span[1]} AND end_time >= ${span[0]}`
            }
            // a concurrent writer may have inserted the same start meanwhile (PostgreSQL): keep the longer range
            yield* sql`INSERT INTO candle_checked ${sql.insert({
              exchange: key.exchange,
              symbol: key.symbol,
              timeframe: key.interval,
              start_time: start,
              end_time: end
            })} ON CONFLICT (exchange, symbol, timeframe, start_time) DO UPDATE SET end_time =
              CASE WHEN excluded.end_time > candle_checked.end_time THEN excluded.end_time
              ELSE candle_checked.end_time END`
          })
        )
        .pipe(Effect.mapError(storeError("checked-range write")))
    })

    /** Runs of consecutive stored candles in `span`, as spans. */
    const storedRuns = (key: SeriesKey, intervalMs: number, span: Span) =>
      Effect.map(
        sql<{ open_time: number | string; prev_time: number | string | null; next_time: number | string | null }>`
          SELECT open_time, prev_time, next_time FROM (
            SELECT open_time,
              LAG(open_time) OVER (ORDER BY open_time) AS prev_time,
              LEAD(open_time) OVER (ORDER BY open_time) AS next_time
            FROM candles WHERE ${where(key)} AND open_time >= ${span[0]} AND open_time < ${span[1]}
          ) runs
          WHERE prev_time IS NULL OR next_time IS NULL
            OR open_time - prev_time > ${intervalMs} OR next_time - open_time > ${intervalMs}
          ORDER BY open_time`,
        (rows) => {
          const runs: Array<Span> = []
          let start: number | undefined
          for (const row of rows) {
            const t = Number(row.open_time)
            const prev = row.prev_time === null ? null : Number(row.prev_time)
            const next = row.next_time === null ? null : Number(row.next_time)
            if (prev === null || t - prev > intervalMs) start = t
            if ((next === null || next - t > intervalMs) && start !== undefined) {
              runs.push([start, t + intervalMs])
              start = undefined
            }
          }
          return runs
        }
      )

    const count = (key: SeriesKey, span: Span) =>
      sql<{ n: number | string }>`SELECT COUNT(*) AS n FROM candles
        WHERE ${where(key)} AND open_time >= ${span[0]} AND open_time < ${span[1]}`.pipe(
        Effect.map((rows) => Number(rows[0]?.n ?? 0)),
        Effect.mapError(storeError("read"))
      )

    const missing = Effect.fn("CandleStore.missing")(function* (key: SeriesKey, intervalMs: number, span: Span) {
      const start = Math.ceil(span[0] / intervalMs) * intervalMs
      if (span[1] <= start) return []
      const aligned: Span = [start, span[1]]
      const checked = yield* sql<{ start_time: number | string; end_time: number | string }>`
        SELECT start_time, end_time FROM candle_checked
        WHERE ${where(key)} AND start_time < ${aligned[1]} AND end_time > ${aligned[0]}`.pipe(
        Effect.mapError(storeError("read"))
      )
      const unchecked = subtractSpans(
        aligned,
        checked.map((r): Span => [Number(r.start_time), Number(r.end_time)])
      )
      const out: Array<Span> = []
      for (const gap of unchecked) {
        // a full range (the common case) is told by its count, without walking its rows
        const slots = Math.ceil((gap[1] - gap[0]) / intervalMs)
        if ((yield* count(key, gap)) === slots) continue
        const runs = yield* storedRuns(key, intervalMs, gap).pipe(Effect.mapError(storeError("read")))
        for (const part of subtractSpans(gap, runs)) {
          // align both ends: a checked range may end between buckets
          const a = Math.ceil(part[0] / intervalMs) * intervalMs
          const b = Math.ceil(part[1] / intervalMs) * intervalMs
          const previous = out[out.length - 1]
          if (b <= a) continue
          if (previous !== undefined && previous[1] >= a) out[out.length - 1] = [previous[0], Math.max(b, previous[1])]
          else out.push([a, b])
        }
      }
      return out
    })

    const read = (key: SeriesKey, span: Span) =>
      readRows(key, span, Option.none()).pipe(Effect.mapError(storeError("read")), Effect.withSpan("CandleStore.read"))

    const stream = (key: SeriesKey, span: Span, pageSize: number = DEFAULT_PAGE) =>
      Stream.paginateChunkEffect(span[0], (from) =>
        readRows(key, [from, span[1]], Option.some(pageSize)).pipe(
          Effect.mapError(storeError("read")),
          Effect.map((rows) => {
            const last = rows[rows.length - 1]
            return [
              Chunk.unsafeFromArray(rows),
              rows.length < pageSize || last === undefined ? Option.none<number>() : Option.some(last.timestamp + 1)
            ] as const
          })
        )
      )

    const service: CandleStoreService = { engine, put, markChecked, missing, read, stream, count }
    return service
  })

const nothing = Effect.succeed(0)

/** DATABASE_URL=none: nothing is kept; every range is missing. */
export const disabledCandleStore: CandleStoreService = {
  engine: "none",
  put: () => nothing,
  markChecked: () => Effect.void,
  missing: (_key, intervalMs, span) => {
    const start = Math.ceil(span[0] / intervalMs) * intervalMs
    return Effect.succeed(span[1] > start ? [[start, span[1]] as const] : [])
  },
  read: () => Effect.succeed([]),
  stream: () => Stream.empty,
  count: () => nothing
}
