import {
  Config,
  ConfigError,
  ConfigProvider,
  Duration,
  Effect,
  Either,
  Layer,
  LogLevel,
  Option,
  Redacted
} from "effect"
import { networkInterfaces } from "node:os"

export const DEFAULT_EXCHANGES = ["binance", "kraken", "coinbase"] as const

/**
 * A Redis URL ioredis reads as a TCP connection: redis:// or rediss://, a host, an optional port and database number.
 * Anything else would be taken for a socket path and end up, password included, in connection error messages.
 */
export const isRedisUrl = (raw: string): boolean => {
  const url = URL.parse(raw.trim())
  return (
    url !== null &&
    (url.protocol === "redis:" || url.protocol === "rediss:") &&
    url.hostname.length > 0 &&
    /^(\/\d*)?$/.test(url.pathname)
  )
}

/** REDIS_URL, for the cache and cluster mode alike. The message never repeats the value: it may hold the password. */
export const redisUrl: Config.Config<string> = Config.string("REDIS_URL").pipe(
  Config.withDefault("redis://127.0.0.1:6379"),
  Config.validate({
    message: "REDIS_URL must be a redis:// or rediss:// URL such as redis://:password@127.0.0.1:6379/0",
    validation: isRedisUrl
  })
)

/** `::` (every IPv4 and IPv6 address, dual-stack) where the host has IPv6, else every IPv4 address. */
export const defaultHost = (interfaces: NodeJS.Dict<ReadonlyArray<{ readonly family: string | number }>>): string =>
  Object.values(interfaces).some((list) => list?.some((i) => i.family === "IPv6" || i.family === 6)) ? "::" : "0.0.0.0"

/** A number of seconds from the environment, at least `min`, as a Duration rounded to the millisecond. */
export const seconds = (name: string, fallback: number, min = 0) =>
  Config.number(name).pipe(
    Config.withDefault(fallback),
    Config.validate({
      message: `${name} must be a number of seconds >= ${min}`,
      validation: (n) => Number.isFinite(n) && n >= min
    }),
    Config.map((n) => Duration.millis(Math.round(n * 1000)))
  )

/** STREAM_IDLE_GRACE: how long an upstream nobody listens to keeps running, in one process or across the cluster. */
export const streamIdleGrace = seconds("STREAM_IDLE_GRACE", 5)

const positiveInt = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.withDefault(fallback),
    Config.validate({ message: `${name} must be a positive integer`, validation: (n) => n > 0 })
  )

const bool = (name: string, fallback: boolean) =>
  Config.string(name).pipe(
    Config.withDefault(String(fallback)),
    Config.mapOrFail((raw) => {
      const v = raw.trim().toLowerCase()
      if (["1", "true", "yes", "on"].includes(v)) return Either.right(true)
      if (["0", "false", "no", "off"].includes(v)) return Either.right(false)
      return Either.left(ConfigError.InvalidData([name], `Expected true or false but received ${JSON.stringify(raw)}`))
    })
  )

const baseUrl = (name: string) =>
  Config.option(
    Config.string(name).pipe(
      Config.validate({
        message: `${name} must be an absolute http(s):// or ws(s):// URL such as http://127.0.0.1:9000`,
        validation: (s) => /^(https?|wss?):\/\/[^/\s]+/i.test(s)
      }),
      Config.map((s) => s.replace(/\/+$/, ""))
    )
  )

/**
 * Origins allowed to call /mcp from a browser, as hostnames (port-agnostic): "https://app.example.com:8443" is
 * kept as app.example.com, `scheme://*` allows a whole scheme (browser extensions), `*` allows every origin.
 */
const mcpAllowedOrigins = Config.string("MCP_ALLOWED_ORIGINS").pipe(
  Config.withDefault("localhost,127.0.0.1,[::1]"),
  Config.mapOrFail((raw) => {
    const hosts: Array<string> = []
    for (const entry of raw.split(",").map((x) => x.trim().toLowerCase())) {
      if (entry.length === 0) continue
      if (entry === "*" || /^[a-z][a-z0-9+.-]*:\/\/\*$/.test(entry)) {
        hosts.push(entry)
        continue
      }
      const hostname = URL.parse(entry.includes("://") ? entry : `http://${entry}`)?.hostname ?? ""
      if (hostname === "" || !/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)$/.test(hostname)) {
        return Either.left(
          ConfigError.InvalidData(
            ["MCP_ALLOWED_ORIGINS"],
            `Expected origins or hostnames such as https://app.example.com,localhost but received ${JSON.stringify(entry)}`
          )
        )
      }
      hosts.push(hostname)
    }
    return Either.right(Array.from(new Set(hosts)))
  })
)

/**
 * Browser origins allowed to call the server cross-origin (CORS) and to open WebSockets: unset means any port of
 * http(s)://localhost, 127.0.0.1 and [::1]; `*` allows every origin; otherwise exact origins (scheme://host[:port]).
 */
const corsOrigins = Config.option(Config.string("CORS_ORIGINS")).pipe(
  Config.mapOrFail((raw) => {
    if (Option.isNone(raw)) return Either.right({ any: false, local: true, exact: [] as ReadonlyArray<string> })
    const exact: Array<string> = []
    let any = false
    for (const entry of raw.value.split(",").map((x) => x.trim())) {
      if (entry.length === 0) continue
      if (entry === "*") {
        any = true
        continue
      }
      const url = URL.parse(entry)
      const origin = url?.origin
      if (url === null || !/^https?:$/.test(url.protocol) || origin !== entry.toLowerCase().replace(/\/$/, "")) {
        return Either.left(
          ConfigError.InvalidData(
            ["CORS_ORIGINS"],
            `Expected * or exact origins such as https://app.example.com,http://localhost:5173 (scheme, host and optional port, no path) but received ${JSON.stringify(entry)}`
          )
        )
      }
      exact.push(url.origin)
    }
    return Either.right({ any, local: false, exact: Array.from(new Set(exact)) as ReadonlyArray<string> })
  })
)

const LOG_LEVELS: Readonly<Record<string, LogLevel.LogLevel>> = {
  all: LogLevel.All,
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warn: LogLevel.Warning,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None,
  off: LogLevel.None
}

const logLevel = Config.string("LOG_LEVEL").pipe(
  Config.withDefault("info"),
  Config.mapOrFail((raw) => {
    const level = LOG_LEVELS[raw.trim().toLowerCase()]
    return level === undefined
      ? Either.left(
          ConfigError.InvalidData(
            ["LOG_LEVEL"],
            `Expected one of trace, debug, info, warn, error, fatal, none but received ${JSON.stringify(raw)}`
          )
        )
      : Either.right(level)
  })
)

const requestsPerSecond = (name: string) =>
  Config.option(
    Config.number(name).pipe(
      Config.validate({
        message: `${name} must be a number of requests per second > 0`,
        validation: (n) => Number.isFinite(n) && n > 0
      })
    )
  )

export interface ExchangeOverride {
  readonly apiBase: Option.Option<string>
  readonly wsBase: Option.Option<string>
}

const exchangeList = Config.string("ENABLED_EXCHANGES").pipe(
  Config.withDefault(DEFAULT_EXCHANGES.join(",")),
  Config.map((s) =>
    Array.from(
      new Set(
        s
          .split(",")
          .map((x) => x.trim().toLowerCase())
          .filter((x) => x.length > 0)
      )
    )
  ),
  Config.validate({
    message: "ENABLED_EXCHANGES must list at least one exchange id, e.g. binance,kraken",
    validation: (ids) => ids.length > 0 && ids.every((id) => /^[a-z0-9]+$/.test(id))
  })
)

export const appConfig = Effect.gen(function* () {
  const enabledExchanges = yield* exchangeList
  const overrides: Record<string, ExchangeOverride> = {}
  const rateLimits: Record<string, Option.Option<number>> = {}
  for (const id of enabledExchanges) {
    const key = id.toUpperCase()
    overrides[id] = {
      apiBase: yield* baseUrl(`EXCHANGE_API_BASE_${key}`),
      wsBase: yield* baseUrl(`EXCHANGE_WS_BASE_${key}`)
    }
    rateLimits[id] = yield* requestsPerSecond(`EXCHANGE_RATE_LIMIT_${key}`)
  }
  const cmcKey = yield* Config.option(Config.redacted("CMC_API_KEY"))
  const apiKeys = yield* Config.redacted("API_KEYS").pipe(Config.withDefault(Redacted.make("")))
  return {
    appEnv: yield* Config.literal(
      "development",
      "production",
      "test"
    )("APP_ENV").pipe(Config.withDefault("development")),
    logLevel: yield* logLevel,
    port: yield* Config.port("PORT").pipe(Config.withDefault(8000)),
    host: yield* Config.string("HOST").pipe(Config.withDefault(defaultHost(networkInterfaces()))),
    redisUrl: yield* redisUrl,
    redisEnabled: yield* bool("REDIS_ENABLED", true),
    redisKeyPrefix: yield* Config.string("REDIS_KEY_PREFIX").pipe(Config.withDefault("mcds:")),
    memoryCacheMaxEntries: yield* positiveInt("MEMORY_CACHE_MAX_ENTRIES", 10_000),
    cmcApiKey: Option.filter(cmcKey, (k) => Redacted.value(k).trim().length > 0),
    cmcApiUrl: yield* Config.string("CMC_API_URL").pipe(
      Config.withDefault("https://pro-api.coinmarketcap.com/v1"),
      Config.validate({
        message: "CMC_API_URL must be an http(s) URL",
        validation: (s) => /^https?:\/\/\S+$/i.test(s)
      }),
      Config.map((s) => s.replace(/\/+$/, ""))
    ),
    cmcTimeout: yield* seconds("CMC_TIMEOUT", 10, 0.001),
    enabledExchanges,
    exchangeOverrides: overrides as Readonly<Record<string, ExchangeOverride>>,
    exchangeTimeout: yield* seconds("EXCHANGE_TIMEOUT", 10, 0.001),
    ccxtThrottle: yield* bool("CCXT_THROTTLE", true),
    marketsRefreshInterval: yield* seconds("MARKETS_REFRESH_INTERVAL", 3600, 1),
    tickerCacheTtl: yield* seconds("TICKER_CACHE_TTL", 2),
    orderbookCacheTtl: yield* seconds("ORDERBOOK_CACHE_TTL", 1),
    tradesCacheTtl: yield* seconds("TRADES_CACHE_TTL", 1),
    ohlcvCacheTtl: yield* seconds("OHLCV_CACHE_TTL", 300),
    /** Freshness of an OHLCV answer that includes the still open candle (capped at OHLCV_CACHE_TTL). */
    ohlcvOpenCacheTtl: yield* seconds("OHLCV_OPEN_CACHE_TTL", 5),
    marketsCacheTtl: yield* seconds("MARKETS_CACHE_TTL", 300),
    tickerDeltaThreshold: yield* Config.number("TICKER_DELTA_THRESHOLD").pipe(
      Config.withDefault(0.001),
      Config.validate({
        message: "TICKER_DELTA_THRESHOLD must be a number >= 0",
        validation: (n) => Number.isFinite(n) && n >= 0
      })
    ),
    streamHeartbeatInterval: yield* seconds("STREAM_HEARTBEAT_INTERVAL", 30, 0.001),
    streamIdleGrace: yield* streamIdleGrace,
    streamPollInterval: yield* seconds("STREAM_POLL_INTERVAL", 2, 0.001),
    streamStallTimeout: yield* seconds("STREAM_STALL_TIMEOUT", 30, 0.001),
    streamBufferSize: yield* positiveInt("STREAM_BUFFER_SIZE", 256),
    streamMaxBufferedBytes: yield* positiveInt("STREAM_MAX_BUFFERED_BYTES", 1_048_576),
    wsMaxSubscriptions: yield* positiveInt("WS_MAX_SUBSCRIPTIONS", 50),
    wsMaxMessageBytes: yield* positiveInt("WS_MAX_MESSAGE_BYTES", 4096),
    wsMaxMessagesPerSecond: yield* positiveInt("WS_MAX_MESSAGES_PER_SECOND", 20),
    wsPingInterval: yield* seconds("WS_PING_INTERVAL", 20, 0.001),
    shutdownTimeout: yield* seconds("SHUTDOWN_TIMEOUT", 10),
    apiKeys: Redacted.value(apiKeys)
      .split(",")
      .map((k) => k.trim())
      .filter((k) => k.length > 0)
      .map((k) => Redacted.make(k)),
    trustProxy: yield* bool("TRUST_PROXY", false),
    mcpAllowedOrigins: yield* mcpAllowedOrigins,
    corsOrigins: yield* corsOrigins,
    rateLimitEnabled: yield* bool("RATE_LIMIT_ENABLED", true),
    rateLimitRequests: yield* positiveInt("RATE_LIMIT_REQUESTS", 100),
    rateLimitWindow: yield* seconds("RATE_LIMIT_WINDOW", 60, 0.001),
    maxRetries: yield* Config.integer("MAX_RETRIES").pipe(
      Config.withDefault(3),
      Config.validate({ message: "MAX_RETRIES must be an integer >= 0", validation: (n) => n >= 0 })
    ),
    initialBackoff: yield* seconds("INITIAL_BACKOFF", 1),
    maxBackoff: yield* seconds("MAX_BACKOFF", 60),
    backoffMultiplier: yield* Config.number("BACKOFF_MULTIPLIER").pipe(
      Config.withDefault(2),
      Config.validate({
        message: "BACKOFF_MULTIPLIER must be a number >= 1",
        validation: (n) => Number.isFinite(n) && n >= 1
      })
    ),
    /** Outbound budget per exchange in requests per second; none = derived from ccxt's rateLimit. */
    exchangeRateLimits: rateLimits as Readonly<Record<string, Option.Option<number>>>,
    staleIfError: yield* seconds("STALE_IF_ERROR", 300),
    /** A request's upstream time, market list load, retries and waits for budget included. */
    requestDeadline: yield* seconds("REQUEST_DEADLINE", 15, 0.001),
    /** The longest pause an upstream's Retry-After (429) imposes on this server. */
    retryAfterMax: yield* seconds("RETRY_AFTER_MAX", 60, 1),
    circuitFailureThreshold: yield* Config.integer("CIRCUIT_FAILURE_THRESHOLD").pipe(
      Config.withDefault(5),
      Config.validate({ message: "CIRCUIT_FAILURE_THRESHOLD must be an integer >= 0", validation: (n) => n >= 0 })
    ),
    circuitCooldown: yield* seconds("CIRCUIT_COOLDOWN", 30, 0.001),
    cmcCacheTtl: yield* seconds("CMC_CACHE_TTL", 60)
  } as const
})

export type AppConfigShape = Effect.Effect.Success<typeof appConfig>

export class AppConfig extends Effect.Service<AppConfig>()("app/AppConfig", {
  effect: appConfig
}) {
  /** A layer reading settings from a plain record instead of the process environment (tests, demo). */
  static fromRecord(env: Readonly<Record<string, string>>): Layer.Layer<AppConfig, ConfigError.ConfigError> {
    return Layer.effect(
      AppConfig,
      appConfig.pipe(
        Effect.map((shape) => new AppConfig(shape)),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))
      )
    )
  }
}
