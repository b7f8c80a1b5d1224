import { Config, ConfigError, Either, Option, Redacted } from "effect"
import { timeframeToMs } from "../Exchange/ohlcvPaging.js"

export type StoreLocation =
  | { readonly engine: "sqlite"; readonly filename: string }
  | { readonly engine: "postgres"; readonly url: Redacted.Redacted<string>; readonly display: string }
  | { readonly engine: "none" }

export const DEFAULT_DATABASE_URL = "sqlite://./data/market.sqlite"

/** The URL with its password replaced, fit for a log line. */
export const redactUrl = (raw: string): string => {
  try {
    const url = new URL(raw)
    if (url.password !== "") url.password = "***"
    return url.toString()
  } catch {
    return "(unparseable URL)"
  }
}

/**
 * `sqlite://./relative/file.sqlite`, `sqlite:///absolute/file.sqlite`, `sqlite::memory:`, `postgres://…` /
 * `postgresql://…`, or `none`. Errors never repeat the URL, which may hold a password.
 */
export const parseDatabaseUrl = (raw: string): Either.Either<StoreLocation, string> => {
  const value = raw.trim()
  if (value === "" || value.toLowerCase() === "none") return Either.right({ engine: "none" })
  if (value === "sqlite::memory:") return Either.right({ engine: "sqlite", filename: ":memory:" })
  if (value.startsWith("sqlite://")) {
    const filename = value.slice("sqlite://".length)
    return filename === ""
      ? Either.left("DATABASE_URL sqlite:// needs a file path, e.g. sqlite://./data/market.sqlite")
      : Either.right({ engine: "sqlite", filename })
  }
  if (/^postgres(ql)?:\/\//.test(value)) {
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return Either.left("DATABASE_URL is not a valid postgres:// URL")
    }
    if (url.hostname === "") return Either.left("DATABASE_URL postgres:// needs a host")
    return Either.right({ engine: "postgres", url: Redacted.make(value), display: redactUrl(value) })
  }
  return Either.left("DATABASE_URL must be sqlite://<file>, postgres://user@host/db or none")
}

/** One history kept complete in the background: `binance:BTC/USDT:1m:30d`. */
export interface BackfillTarget {
  readonly exchange: string
  readonly symbol: string
  readonly interval: string
  readonly intervalMs: number
  readonly windowMs: number
  readonly label: string
}

const WINDOW_UNIT_MS: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

export const parseBackfill = (raw: string): Either.Either<ReadonlyArray<BackfillTarget>, string> => {
  const targets: Array<BackfillTarget> = []
  for (const item of raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")) {
    const parts = item.split(":")
    const [exchange, symbol, interval, window] = parts
    if (parts.length !== 4 || exchange === undefined || symbol === undefined || interval === undefined) {
      return Either.left(
        `HISTORY_BACKFILL item "${item}" must be exchange:BASE/QUOTE:interval:window (binance:BTC/USDT:1m:30d)`
      )
    }
    const intervalMs = storableIntervalMs(interval)
    if (Option.isNone(intervalMs)) {
      return Either.left(`HISTORY_BACKFILL item "${item}": interval must be seconds, minutes, hours or 1d (1m, 1h, 1d)`)
    }
    const match = /^(\d+)([mhdw])$/.exec(window ?? "")
    const amount = match?.[1]
    const unit = match?.[2]
    const unitMs = unit === undefined || !Object.hasOwn(WINDOW_UNIT_MS, unit) ? undefined : WINDOW_UNIT_MS[unit]
    if (amount === undefined || unitMs === undefined || Number(amount) <= 0) {
      return Either.left(`HISTORY_BACKFILL item "${item}": window must look like 90m, 12h, 30d or 52w`)
    }
    if (!/^[A-Za-z0-9]{1,40}$/.test(exchange) || !/^[A-Za-z0-9.]{1,20}\/[A-Za-z0-9.]{1,20}$/.test(symbol)) {
      return Either.left(`HISTORY_BACKFILL item "${item}": exchange must be a ccxt id and symbol BASE/QUOTE`)
    }
    targets.push({
      exchange: exchange.toLowerCase(),
      symbol: symbol.toUpperCase(),
      interval,
      intervalMs: intervalMs.value,
      windowMs: Number(amount) * unitMs,
      label: item
    })
  }
  return Either.right(targets)
}

/**
 * Candle lengths the store keeps: a whole number of seconds, minutes or hours, or one day, all aligned to the epoch
 * as exchanges align them. Weeks start on Mondays and months vary, so those are always fetched.
 */
export const storableIntervalMs = (interval: string): Option.Option<number> =>
  /^(\d+[smh]|1d)$/.test(interval) ? timeframeToMs(interval) : Option.none()

export interface StoreConfig {
  readonly location: StoreLocation
  readonly backfill: ReadonlyArray<BackfillTarget>
  /** Whether DATABASE_URL was set (a default store that cannot be opened is skipped, a configured one stops start-up). */
  readonly explicit?: boolean
}

const fromEither = <A>(name: string, parse: (raw: string) => Either.Either<A, string>) =>
  Config.mapOrFail((raw: string) => Either.mapLeft(parse(raw), (message) => ConfigError.InvalidData([name], message)))

export const storeConfig: Config.Config<StoreConfig> = Config.all({
  location: Config.string("DATABASE_URL").pipe(
    Config.withDefault(DEFAULT_DATABASE_URL),
    fromEither("DATABASE_URL", parseDatabaseUrl)
  ),
  backfill: Config.string("HISTORY_BACKFILL").pipe(
    Config.withDefault(""),
    fromEither("HISTORY_BACKFILL", parseBackfill)
  ),
  explicit: Config.option(Config.string("DATABASE_URL")).pipe(Config.map(Option.isSome))
})
