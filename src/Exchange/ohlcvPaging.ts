import { Effect, Option } from "effect"

/** Most candles one request to our API may ask for. */
export const MAX_CANDLES = 2000

const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  M: 2_592_000_000,
  y: 31_536_000_000
}

/** Milliseconds of a ccxt timeframe such as `1m`, `4h`, `1M` (months count as 30 days, as in ccxt). */
export const timeframeToMs = (timeframe: string): Option.Option<number> => {
  const match = /^(\d+)([smhdwMy])$/.exec(timeframe)
  const amount = match?.[1]
  const unit = match?.[2] === undefined ? undefined : UNIT_MS[match[2]]
  return amount === undefined || unit === undefined || Number(amount) <= 0
    ? Option.none()
    : Option.some(Number(amount) * unit)
}

export const clampLimit = (limit: number, max: number): number =>
  Number.isFinite(limit) ? Math.min(max, Math.max(1, Math.floor(limit))) : max

export interface CandleLike {
  readonly timestamp: number
}

export interface OhlcvPagingRequest<C extends CandleLike, E> {
  /** One upstream call: candles from `since` (latest ones when undefined), at most `limit`. */
  readonly fetch: (since: number | undefined, limit: number) => Effect.Effect<ReadonlyArray<C>, E>
  readonly limit: number
  readonly since: Option.Option<number>
  readonly timeframeMs: number
  /** The most candles the exchange returns per call. */
  readonly perRequestMax: number
  /** Current time in ms. */
  readonly now: number
}

/** Ascending by timestamp, one candle per timestamp (the first seen wins). */
const ascendingUnique = <C extends CandleLike>(candles: ReadonlyArray<C>): Array<C> => {
  const sorted = [...candles].sort((a, b) => a.timestamp - b.timestamp)
  const out: Array<C> = []
  for (const c of sorted) {
    const last = out[out.length - 1]
    if (last === undefined || c.timestamp > last.timestamp) out.push(c)
  }
  return out
}

/**
 * `limit` candles (at most MAX_CANDLES), ascending and without duplicates: the first `limit` from `since`, or the last
 * `limit` up to now. Requests above the exchange's per-call maximum are paged forward; a page that brings nothing new
 * ends the walk, so gaps and short histories end in fewer candles rather than a loop. All or nothing: a page that
 * fails (a broken body fails at the integrity gate, before it could look like "nothing new") fails the whole walk.
 */
export const fetchOhlcvPaged = <C extends CandleLike, E>(
  request: OhlcvPagingRequest<C, E>
): Effect.Effect<ReadonlyArray<C>, E> =>
  Effect.gen(function* () {
    const limit = clampLimit(request.limit, MAX_CANDLES)
    const perPage = Math.max(1, Math.floor(request.perRequestMax))
    const tf = Math.max(1, request.timeframeMs)
    const since = Option.getOrUndefined(request.since)
    const finish = (candles: ReadonlyArray<C>): ReadonlyArray<C> => {
      const clean = ascendingUnique(candles).filter((c) => since === undefined || c.timestamp >= since)
      // kraken ignores the limit and may return far more than asked
      return since === undefined ? clean.slice(-limit) : clean.slice(0, limit)
    }

    if (limit <= perPage) return finish(yield* request.fetch(since, limit))

    // without `since`, start where exactly `limit` candles end with the current (open) one
    const start = since ?? Math.floor(request.now / tf) * tf - (limit - 1) * tf
    const maxPages = Math.ceil(limit / perPage) * 3 + 3
    const collected: Array<C> = []
    let lastTimestamp = Number.NEGATIVE_INFINITY
    let cursor = start
    for (let page = 0; page < maxPages && collected.length < limit && cursor <= request.now; page++) {
      const fresh = ascendingUnique(yield* request.fetch(cursor, perPage)).filter(
        (c) => c.timestamp > lastTimestamp && (since === undefined || c.timestamp >= since)
      )
      const newest = fresh[fresh.length - 1]
      if (newest === undefined) break
      collected.push(...fresh)
      lastTimestamp = newest.timestamp
      cursor = lastTimestamp + tf
    }
    return finish(collected)
  })
