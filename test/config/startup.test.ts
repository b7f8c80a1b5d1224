import { describe, expect, it } from "@effect/vitest"
import { Effect, HashMap, Logger, Option } from "effect"
import { spawnSync } from "node:child_process"
import { makeKvCache } from "../../src/Cache/Live.js"
import { DEMO_DEFAULTS, startDemoEmulator } from "../../src/Demo.js"
import { unknownExchangeError } from "../../src/Exchange/symbols.js"
import { AppConfig } from "../../src/AppConfig.js"
import { localUrl, unknownEnabledExchanges } from "../../src/Run.js"

const startWith = (env: Record<string, string>) =>
  spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
    env: { ...process.env, REDIS_ENABLED: "false", ...env },
    encoding: "utf8",
    timeout: 45_000
  })

describe("ENABLED_EXCHANGES is checked against the installed ccxt at start-up", () => {
  it("an unknown id names the closest known ones", () => {
    const known = ["binance", "binanceus", "kraken", "krakenfutures", "coinbase", "coinbaseexchange"]
    expect(unknownEnabledExchanges(["binanse", "kraken", "coinbasepro", "zzzzzz"], known)).toEqual([
      'ENABLED_EXCHANGES names "binanse", which is not a ccxt exchange id (did you mean "binance"?)',
      'ENABLED_EXCHANGES names "zzzzzz", which is not a ccxt exchange id'
    ])
    expect(unknownEnabledExchanges(["binance", "coinbasepro"], known)).toEqual([])
  })

  it("`binanse` stops start-up: exit 1, one line on stderr suggesting binance, nothing on stdout", () => {
    const result = startWith({ ENABLED_EXCHANGES: "binanse,kraken", PORT: "18931" })
    expect(result.status).toBe(1)
    expect(result.stdout).toBe("")
    const lines = result.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^Invalid configuration: ENABLED_EXCHANGES names "binanse", which is not a ccxt exchange id \(did you mean "binance".*\)\. See \.env\.example\.$/
    )
  }, 60_000)

  it("a bad cluster setting stops start-up with one line naming it", () => {
    const result = startWith({ CLUSTER_ENABLED: "true", CLUSTER_LEASE_TTL: "0.1", PORT: "18932" })
    expect(result.status).toBe(1)
    expect(result.stdout).toBe("")
    const lines = result.stderr.trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^Invalid configuration: .*CLUSTER_LEASE_TTL must be a number of seconds >= 0\.3.*\. See \.env\.example\.$/
    )
  }, 60_000)

  it("a malformed REDIS_URL stops start-up without printing its password", () => {
    const result = startWith({ REDIS_ENABLED: "true", REDIS_URL: "http://:s3cret-pw@127.0.0.1:6379" })
    expect(result.status).toBe(1)
    expect(result.stderr).toContain("REDIS_URL must be a redis:// or rediss:// URL")
    expect(result.stderr + result.stdout).not.toContain("s3cret-pw")
  }, 60_000)
})

describe("no log line holds the Redis password", () => {
  it.scoped("a URL ioredis cannot parse is logged by its error message only", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const capture = Logger.make(({ message, annotations }) => {
        lines.push(JSON.stringify({ message, annotations: Object.fromEntries(HashMap.toEntries(annotations)) }))
      })
      const cache = yield* makeKvCache({
        memoryMaxEntries: 10,
        redis: { url: "redis://:s3cret-pw@127.0.0.1:notaport", keyPrefix: "t:" }
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
      expect(yield* cache.status).toEqual({ backend: "memory", redis: "down" })
      expect(lines.length).toBeGreaterThan(0)
      expect(lines.join("\n")).toContain("redis client could not be created")
      expect(lines.join("\n")).not.toContain("s3cret-pw")
    })
  )
})

describe("unknown exchange on a route", () => {
  it("names enabled exchanges first and says how to enable a supported one", () => {
    const known = ["binance", "kraken", "coinbase"]
    expect(unknownExchangeError("binanse", ["kraken"], known).message).toBe(
      'Unknown exchange "binanse". Did you mean "binance"? "binance" is supported but not enabled on this server: ' +
        "add it to ENABLED_EXCHANGES to use it. Enabled exchanges: kraken"
    )
    expect(unknownExchangeError("krakn", ["kraken", "binance"], known).message).toBe(
      'Unknown exchange "krakn". Did you mean "kraken"? Enabled exchanges: kraken, binance'
    )
  })
})

describe("the listening line", () => {
  it("gives a URL a person can open", () => {
    expect(localUrl("::", 8000)).toBe("http://localhost:8000")
    expect(localUrl("0.0.0.0", 8000)).toBe("http://localhost:8000")
    expect(localUrl("127.0.0.1", 9000)).toBe("http://localhost:9000")
    expect(localUrl("192.168.1.5", 80)).toBe("http://192.168.1.5:80")
    expect(localUrl("fd00::2", 8000)).toBe("http://[fd00::2]:8000")
  })
})

describe("npm run demo settings", () => {
  it.scoped("ccxt's throttle is off and the outbound budget out of the way against the local emulator", () =>
    Effect.gen(function* () {
      const saved = { ...process.env }
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name]
          Object.assign(process.env, saved)
        })
      )
      for (const name of Object.keys(DEMO_DEFAULTS)) delete process.env[name]
      const emulator = yield* Effect.acquireRelease(
        Effect.promise(() => startDemoEmulator()),
        (e) => Effect.promise(() => e.close())
      )
      const config = yield* Effect.provide(AppConfig, AppConfig.Default)
      expect(config.ccxtThrottle).toBe(false)
      expect(config.exchangeRateLimits["kraken"]).toEqual(Option.some(1000))
      expect(config.enabledExchanges).toEqual(["binance", "kraken", "coinbaseexchange"])
      expect(Option.getOrThrow(config.exchangeOverrides["kraken"]?.apiBase ?? Option.none())).toBe(
        emulator.apiBase("kraken")
      )
    })
  )
})
