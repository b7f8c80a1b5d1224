import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, LogLevel, Option, Redacted } from "effect"
import { spawnSync } from "node:child_process"
import { networkInterfaces } from "node:os"
import { AppConfig, defaultHost, isRedisUrl } from "../../src/AppConfig.js"

const load = (env: Record<string, string>) => Effect.either(Effect.provide(AppConfig, AppConfig.fromRecord(env)))

describe("AppConfig", () => {
  it.effect("documented defaults", () =>
    Effect.gen(function* () {
      const config = yield* Effect.provide(AppConfig, AppConfig.fromRecord({}))
      expect(config.appEnv).toBe("development")
      expect(config.logLevel).toBe(LogLevel.Info)
      expect(config.port).toBe(8000)
      // dual-stack where the machine has IPv6 (this one has ::1), IPv4 only elsewhere
      expect(config.host).toBe(defaultHost(networkInterfaces()))
      expect(config.host).toBe("::")
      expect(config.redisUrl).toBe("redis://127.0.0.1:6379")
      expect(config.redisEnabled).toBe(true)
      expect(config.redisKeyPrefix).toBe("mcds:")
      expect(Option.isNone(config.cmcApiKey)).toBe(true)
      expect(config.cmcApiUrl).toBe("https://pro-api.coinmarketcap.com/v1")
      expect(config.enabledExchanges).toEqual(["binance", "kraken", "coinbase"])
      expect(config.ccxtThrottle).toBe(true)
      expect(Duration.toMillis(config.tickerCacheTtl)).toBe(2000)
      expect(Duration.toMillis(config.orderbookCacheTtl)).toBe(1000)
      expect(Duration.toMillis(config.tradesCacheTtl)).toBe(1000)
      expect(Duration.toMillis(config.ohlcvCacheTtl)).toBe(300_000)
      expect(Duration.toMillis(config.ohlcvOpenCacheTtl)).toBe(5_000)
      expect(Duration.toMillis(config.requestDeadline)).toBe(15_000)
      expect(Duration.toMillis(config.retryAfterMax)).toBe(60_000)
      expect(config.tickerDeltaThreshold).toBe(0.001)
      expect(Duration.toMillis(config.streamHeartbeatInterval)).toBe(30_000)
      expect(Duration.toMillis(config.streamIdleGrace)).toBe(5000)
      expect(Duration.toMillis(config.streamPollInterval)).toBe(2000)
      expect(Duration.toMillis(config.streamStallTimeout)).toBe(30_000)
      expect(config.streamBufferSize).toBe(256)
      expect(config.streamMaxBufferedBytes).toBe(1_048_576)
      expect(config.wsMaxSubscriptions).toBe(50)
      expect(config.wsMaxMessageBytes).toBe(4096)
      expect(config.wsMaxMessagesPerSecond).toBe(20)
      expect(Duration.toMillis(config.wsPingInterval)).toBe(20_000)
      expect(Duration.toMillis(config.shutdownTimeout)).toBe(10_000)
      expect(config.apiKeys).toEqual([])
      expect(config.trustProxy).toBe(false)
      expect(config.rateLimitEnabled).toBe(true)
      expect(config.rateLimitRequests).toBe(100)
      expect(Duration.toMillis(config.rateLimitWindow)).toBe(60_000)
      expect(config.maxRetries).toBe(3)
      expect(Duration.toMillis(config.initialBackoff)).toBe(1000)
      expect(Duration.toMillis(config.maxBackoff)).toBe(60_000)
      expect(config.backoffMultiplier).toBe(2)
      expect(config.exchangeOverrides.binance).toEqual({ apiBase: Option.none(), wsBase: Option.none() })
      expect(config.exchangeRateLimits).toEqual({
        binance: Option.none(),
        kraken: Option.none(),
        coinbase: Option.none()
      })
      expect(Duration.toMillis(config.staleIfError)).toBe(300_000)
      expect(config.circuitFailureThreshold).toBe(5)
      expect(Duration.toMillis(config.circuitCooldown)).toBe(30_000)
      expect(Duration.toMillis(config.cmcCacheTtl)).toBe(60_000)
    })
  )

  it.effect("resilience settings: stale window, circuit, CoinMarketCap cache and per-exchange budgets", () =>
    Effect.gen(function* () {
      const config = yield* Effect.provide(
        AppConfig,
        AppConfig.fromRecord({
          ENABLED_EXCHANGES: "binance,coinbasepro",
          EXCHANGE_RATE_LIMIT_BINANCE: "12.5",
          EXCHANGE_RATE_LIMIT_COINBASEPRO: "0.5",
          STALE_IF_ERROR: "0",
          CIRCUIT_FAILURE_THRESHOLD: "0",
          CIRCUIT_COOLDOWN: "2.5",
          CMC_CACHE_TTL: "90"
        })
      )
      expect(config.exchangeRateLimits).toEqual({ binance: Option.some(12.5), coinbasepro: Option.some(0.5) })
      expect(Duration.toMillis(config.staleIfError)).toBe(0)
      expect(config.circuitFailureThreshold).toBe(0)
      expect(Duration.toMillis(config.circuitCooldown)).toBe(2500)
      expect(Duration.toMillis(config.cmcCacheTtl)).toBe(90_000)
    })
  )

  it.effect("reads every variable, with fractional seconds and per-exchange URL overrides", () =>
    Effect.gen(function* () {
      const config = yield* Effect.provide(
        AppConfig,
        AppConfig.fromRecord({
          APP_ENV: "production",
          LOG_LEVEL: "Debug",
          PORT: "9001",
          HOST: "127.0.0.1",
          REDIS_ENABLED: "false",
          CMC_API_KEY: "super-secret-key",
          API_KEYS: " k1 ,, k2 ",
          ENABLED_EXCHANGES: " Binance , kraken,binance ",
          EXCHANGE_API_BASE_BINANCE: "http://127.0.0.1:9000/binance/",
          EXCHANGE_WS_BASE_KRAKEN: "ws://127.0.0.1:9000/kraken",
          INITIAL_BACKOFF: "0.2",
          TICKER_CACHE_TTL: "0.5",
          MAX_RETRIES: "0"
        })
      )
      expect(config.appEnv).toBe("production")
      expect(config.logLevel).toBe(LogLevel.Debug)
      expect(config.port).toBe(9001)
      expect(config.redisEnabled).toBe(false)
      expect(config.enabledExchanges).toEqual(["binance", "kraken"])
      expect(config.exchangeOverrides.binance?.apiBase).toEqual(Option.some("http://127.0.0.1:9000/binance"))
      expect(config.exchangeOverrides.kraken?.wsBase).toEqual(Option.some("ws://127.0.0.1:9000/kraken"))
      expect(Duration.toMillis(config.initialBackoff)).toBe(200)
      expect(Duration.toMillis(config.tickerCacheTtl)).toBe(500)
      expect(config.maxRetries).toBe(0)
      const key = Option.getOrThrow(config.cmcApiKey)
      expect(Redacted.value(key)).toBe("super-secret-key")
      expect(String(key)).toBe("<redacted>")
      expect(config.apiKeys.map(Redacted.value)).toEqual(["k1", "k2"])
      expect(JSON.stringify(config)).not.toContain("super-secret-key")
      expect(JSON.stringify(config)).not.toContain("k1")
    })
  )

  it.effect("MCP_ALLOWED_ORIGINS: localhost by default; origins kept as hostnames, * and scheme://* as they are", () =>
    Effect.gen(function* () {
      const defaults = yield* Effect.provide(AppConfig, AppConfig.fromRecord({}))
      expect(defaults.mcpAllowedOrigins).toEqual(["localhost", "127.0.0.1", "[::1]"])
      const custom = yield* Effect.provide(
        AppConfig,
        AppConfig.fromRecord({
          MCP_ALLOWED_ORIGINS: " https://App.Example.com:8443 , claude.ai,http://[::1]:3000, moz-extension://*,*,"
        })
      )
      expect(custom.mcpAllowedOrigins).toEqual(["app.example.com", "claude.ai", "[::1]", "moz-extension://*", "*"])
    })
  )

  const invalid: Array<[string, string]> = [
    ["PORT", "eighty"],
    ["PORT", "70000"],
    ["REDIS_ENABLED", "maybe"],
    ["INITIAL_BACKOFF", "-1"],
    ["MAX_RETRIES", "1.5"],
    ["BACKOFF_MULTIPLIER", "0.5"],
    ["ENABLED_EXCHANGES", " , "],
    ["EXCHANGE_API_BASE_BINANCE", "not a url"],
    ["APP_ENV", "staging"],
    ["LOG_LEVEL", "loud"],
    ["MCP_ALLOWED_ORIGINS", "https://ok.example,not a host"],
    ["STREAM_STALL_TIMEOUT", "0"],
    ["STREAM_BUFFER_SIZE", "0"],
    ["WS_MAX_SUBSCRIPTIONS", "many"],
    ["STALE_IF_ERROR", "-5"],
    ["CIRCUIT_FAILURE_THRESHOLD", "-1"],
    ["CIRCUIT_COOLDOWN", "0"],
    ["EXCHANGE_RATE_LIMIT_BINANCE", "0"],
    ["EXCHANGE_RATE_LIMIT_KRAKEN", "fast"],
    ["REQUEST_DEADLINE", "0"],
    ["RETRY_AFTER_MAX", "0.5"],
    ["OHLCV_OPEN_CACHE_TTL", "-1"],
    ["REDIS_URL", "127.0.0.1:6379"]
  ]
  it.effect.each(invalid)("rejects %s=%s", ([name, value]) =>
    Effect.gen(function* () {
      const result = yield* load({ [name]: value })
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(String(result.left)).toContain(name)
    })
  )
})

describe("start-up with invalid configuration", () => {
  it("exits non-zero with one clear line on stderr and nothing on stdout", () => {
    const result = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { ...process.env, PORT: "eighty", CMC_API_KEY: "do-not-print-me" },
      encoding: "utf8",
      // generous: several test files start processes at once on a loaded machine
      timeout: 45_000
    })
    expect(result.status).toBe(1)
    expect(result.stdout).toBe("")
    const lines = result.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^Invalid configuration: .*PORT.*See \.env\.example\.$/)
    expect(result.stderr).not.toContain("do-not-print-me")
  }, 60_000)
})

describe("REDIS_URL", () => {
  const secretUrls = [
    "http://:s3cret@127.0.0.1:6379",
    "redis://:s3cret@exa mple:6379",
    "redis://:s3cret@127.0.0.1:notaport",
    "redis://:s3cret@127.0.0.1:6379/db",
    "//:s3cret@127.0.0.1:6379"
  ]
  it.effect.each(secretUrls)("%s is refused at start-up, and the message never holds the password", (url) =>
    Effect.gen(function* () {
      const result = yield* load({ REDIS_URL: url })
      expect(Either.isLeft(result)).toBe(true)
      const message = String(Either.getLeft(result).pipe(Option.getOrThrow))
      expect(message).toContain("REDIS_URL must be a redis:// or rediss:// URL")
      expect(message).not.toContain("s3cret")
    })
  )

  it("accepts what ioredis reads as a TCP connection", () => {
    expect(isRedisUrl("redis://127.0.0.1:6379")).toBe(true)
    expect(isRedisUrl("redis://:pw@cache.internal:6380/2")).toBe(true)
    expect(isRedisUrl("rediss://user:pw@redis.example.com")).toBe(true)
    expect(isRedisUrl("redis://cache/")).toBe(true)
  })
})

describe("HOST default", () => {
  it("listens on :: (IPv4 and IPv6) where the machine has IPv6, else on every IPv4 address", () => {
    const v4 = { family: "IPv4" }
    const v6 = { family: "IPv6" }
    expect(defaultHost({ lo: [v4, v6], eth0: [v4] })).toBe("::")
    expect(defaultHost({ lo: [v4], eth0: [v4] })).toBe("0.0.0.0")
    expect(defaultHost({ lo: [v4, { family: 6 }] })).toBe("::")
    expect(defaultHost({})).toBe("0.0.0.0")
  })
})
