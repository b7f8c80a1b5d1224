import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, FiberRef, HashSet, Layer, Logger, Tracer } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { Cmc } from "../../src/Cmc/Cmc.js"
import type { CmcError } from "../../src/Cmc/Errors.js"
import {
  FAKE_CMC_COINS,
  type FakeCmc,
  type FakeCmcStep,
  fakeCmc,
  fakeCmcSuccessBody,
  QUOTES_PATH
} from "../support/fakeCmc.js"

const QUOTE_TIME_MS = 1714566840000 // 2024-05-01T12:34:00.000Z

const baseEnv = (fake: FakeCmc): Record<string, string> => ({
  CMC_API_KEY: fake.apiKey,
  CMC_API_URL: fake.baseUrl,
  CMC_TIMEOUT: "2",
  MAX_RETRIES: "3",
  INITIAL_BACKOFF: "0.01",
  MAX_BACKOFF: "0.05",
  BACKOFF_MULTIPLIER: "2"
})

/** Everything the client logged or put on spans while a test ran. */
interface Telemetry {
  readonly logs: Array<string>
  readonly spans: Array<{ readonly name: string; readonly attributes: Map<string, unknown> }>
}

const capture = (): {
  readonly telemetry: Telemetry
  readonly logger: Logger.Logger<unknown, void>
  readonly tracer: Tracer.Tracer
} => {
  const telemetry: Telemetry = { logs: [], spans: [] }
  let ids = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const attributes = new Map<string, unknown>()
      telemetry.spans.push({ name, attributes })
      const id = String(++ids)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: id,
        traceId: "test",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links,
        sampled: true,
        kind,
        end: () => {},
        attribute: (key, value) => void attributes.set(key, value),
        event: () => {},
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })
  const logger = Logger.make((options) => void telemetry.logs.push(Logger.logfmtLogger.log(options)))
  return { telemetry, logger, tracer }
}

/**
 * A fresh fake CMC and a Cmc built by the live layer (undici) against it. Afterwards no log line and no span
 * attribute may contain the configured key.
 */
const withCmc = <A, E>(
  env: Readonly<Record<string, string>>,
  use: (cmc: Cmc, fake: FakeCmc, telemetry: Telemetry) => Effect.Effect<A, E>,
  script: ReadonlyArray<FakeCmcStep> = []
) =>
  Effect.gen(function* () {
    const fake = yield* fakeCmc()
    fake.script(...script)
    const config = { ...baseEnv(fake), ...env }
    const { telemetry, logger, tracer } = capture()
    const layer = Cmc.Default.pipe(Layer.provide(AppConfig.fromRecord(config)))
    const result = yield* Effect.flatMap(Cmc, (cmc) => use(cmc, fake, telemetry)).pipe(
      Effect.provide(layer),
      Effect.withTracer(tracer),
      Effect.locally(FiberRef.currentLoggers, HashSet.make(logger))
    )
    const key = config.CMC_API_KEY ?? ""
    if (key !== "") {
      for (const line of telemetry.logs) expect(line).not.toContain(key)
      for (const span of telemetry.spans) {
        for (const [name, value] of span.attributes) expect(`${name}=${String(value)}`).not.toContain(key)
      }
    }
    return result
  }).pipe(Effect.scoped)

const times = <A>(n: number, step: A): ReadonlyArray<A> => Array.from({ length: n }, () => step)

const expectKeyHidden = (error: CmcError, key: string) => {
  expect(error.message.length).toBeGreaterThan(0)
  expect(error.message).not.toContain(key)
  expect(String(error)).not.toContain(key)
  expect(JSON.stringify(error)).not.toContain(key)
  expect(Cause.pretty(Cause.fail(error))).not.toContain(key)
}

describe("Cmc.quotes happy path", () => {
  it.live("BTC in USD: exact values, one request, key and accept headers sent, key redacted on spans", () =>
    withCmc({}, (cmc, fake, telemetry) =>
      Effect.gen(function* () {
        const q = yield* cmc.quote("BTC", "USD")
        expect(q.symbol).toBe("BTC")
        expect(q.name).toBe("Bitcoin")
        expect(q.convert).toBe("USD")
        expect(q.price).toBe(60512.34)
        expect(q.volume24h).toBe(35123456789.12)
        expect(q.percentChange1h).toBe(-0.1234)
        expect(q.percentChange24h).toBe(1.5678)
        expect(q.marketCap).toBe(1191456789012.34)
        expect(q.lastUpdated).toBe(QUOTE_TIME_MS)
        expect(q.raw["id"]).toBe(1)
        expect(q.raw["max_supply"]).toBe(21000000)
        expect(q.raw["tvl_ratio"]).toBeNull()
        expect(q.raw).toEqual({ ...FAKE_CMC_COINS["BTC"], quote: { USD: FAKE_CMC_COINS["BTC"]?.quote["USD"] } })

        expect(fake.requestCount()).toBe(1)
        const req = fake.requests[0]
        expect(req?.method).toBe("GET")
        expect(req?.path).toBe(QUOTES_PATH)
        expect(req?.query).toEqual({ symbol: "BTC", convert: "USD" })
        expect(req?.headers["x-cmc_pro_api_key"]).toBe(fake.apiKey)
        expect(req?.headers["accept"]).toBe("application/json")
        expect(req?.headers["traceparent"]).toBeUndefined()
        expect(cmc.configured).toBe(true)

        expect(telemetry.spans.map((span) => span.name)).toEqual(["Cmc.quote", "Cmc.quotes", "http.client GET"])
        const http = telemetry.spans[2]?.attributes
        expect(http?.get("http.request.header.x-cmc_pro_api_key")).toBe("<redacted>")
        expect(telemetry.spans[1]?.attributes.get("cmc.symbols")).toBe("BTC")
      })
    )
  )

  it.live("BTC in EUR with lower-case input: symbol and convert are upper-cased", () =>
    withCmc({}, (cmc, fake) =>
      Effect.gen(function* () {
        const q = yield* cmc.quote(" btc ", "eur")
        expect(q.symbol).toBe("BTC")
        expect(q.convert).toBe("EUR")
        expect(q.price).toBe(56276.48)
        expect(q.volume24h).toBe(32664814813.88)
        expect(q.marketCap).toBe(1108054813781.48)
        expect(q.percentChange24h).toBe(1.5678)
        expect(q.lastUpdated).toBe(QUOTE_TIME_MS)
        expect(fake.requests[0]?.query).toEqual({ symbol: "BTC", convert: "EUR" })
      })
    )
  )

  it.live("several symbols go out as one request with symbol=BTC,ETH,SOL, answers in the order asked", () =>
    withCmc({}, (cmc, fake) =>
      Effect.gen(function* () {
        const qs = yield* cmc.quotes(["eth", "BTC", "sol", "Eth"], "USD")
        expect(qs.map((q) => [q.symbol, q.name, q.price])).toEqual([
          ["ETH", "Ethereum", 3012.5],
          ["BTC", "Bitcoin", 60512.34],
          ["SOL", "Solana", 135.79]
        ])
        expect(qs[0]?.raw["max_supply"]).toBeNull()
        expect(fake.requestCount()).toBe(1)
        expect(fake.requests[0]?.rawUrl).toBe(`${QUOTES_PATH}?symbol=ETH,BTC,SOL&convert=USD`)
      })
    )
  )

  it.live("nullable numbers CMC sends as null decode to null", () =>
    withCmc(
      {},
      (cmc) =>
        Effect.gen(function* () {
          const q = yield* cmc.quote("BTC", "USD")
          expect(q.price).toBeNull()
          expect(q.volume24h).toBeNull()
          expect(q.percentChange1h).toBeNull()
          expect(q.percentChange24h).toBeNull()
          expect(q.marketCap).toBeNull()
          expect(q.lastUpdated).toBe(QUOTE_TIME_MS)
        }),
      [
        {
          kind: "json",
          body: fakeCmcSuccessBody({
            BTC: {
              ...FAKE_CMC_COINS["BTC"],
              quote: {
                USD: {
                  price: null,
                  volume_24h: null,
                  volume_change_24h: null,
                  percent_change_1h: null,
                  percent_change_24h: null,
                  percent_change_7d: null,
                  market_cap: null,
                  market_cap_dominance: null,
                  fully_diluted_market_cap: null,
                  last_updated: "2024-05-01T12:34:00.000Z"
                }
              }
            }
          })
        }
      ]
    )
  )
})

describe("Cmc.quotes failures", () => {
  it.live("no key configured: CmcNotConfigured with no request at all", () =>
    withCmc({ CMC_API_KEY: "" }, (cmc, fake) =>
      Effect.gen(function* () {
        expect(cmc.configured).toBe(false)
        const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
        expect(error._tag).toBe("CmcNotConfigured")
        expect(error.message).toContain("CMC_API_KEY")
        expect(fake.requestCount()).toBe(0)
      })
    )
  )

  it.live("wrong key: 401 -> CmcUnauthorized after exactly one request, key not in the error", () =>
    withCmc({ CMC_API_KEY: "wrong-secret-key-42" }, (cmc, fake) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
        if (error._tag !== "CmcUnauthorized") return expect.unreachable(`got ${error._tag}`)
        expect(error.status).toBe(401)
        expect(error.errorCode).toBe(1001)
        expect(error.message).toBe(
          "CoinMarketCap refused the API key or plan (HTTP 401, error 1001: This API Key is invalid.)"
        )
        expect(fake.requestCount()).toBe(1)
        expect(fake.requests[0]?.headers["x-cmc_pro_api_key"]).toBe("wrong-secret-key-42")
        expectKeyHidden(error, "wrong-secret-key-42")
      })
    )
  )

  it.live("plan error 403/1006 -> CmcUnauthorized after one request", () =>
    withCmc(
      {},
      (cmc, fake) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcUnauthorized") return expect.unreachable(`got ${error._tag}`)
          expect([error.status, error.errorCode]).toEqual([403, 1006])
          expect(fake.requestCount()).toBe(1)
          expectKeyHidden(error, fake.apiKey)
        }),
      [
        {
          kind: "error",
          status: 403,
          errorCode: 1006,
          errorMessage: "Your API Key subscription plan doesn't support this endpoint."
        }
      ]
    )
  )

  it.live("429 with Retry-After: 1 -> waits at least 1 s, retries and succeeds", () =>
    withCmc(
      { MAX_BACKOFF: "5" },
      (cmc, fake) =>
        Effect.gen(function* () {
          const q = yield* cmc.quote("ETH", "USD")
          expect(q.price).toBe(3012.5)
          expect(fake.requestCount()).toBe(2)
          const [first, second] = fake.requests
          const waited = (second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)
          expect(waited).toBeGreaterThanOrEqual(995) // timers may fire a hair early against Date.now()
          expect(waited).toBeLessThan(2500)
        }),
      [{ kind: "rateLimited", retryAfter: "1" }]
    )
  )

  it.live("429 asking for longer than MAX_BACKOFF -> CmcRateLimited at once, with retryAfterMs", () =>
    withCmc(
      {},
      (cmc, fake) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcRateLimited") return expect.unreachable(`got ${error._tag}`)
          expect(error.retryAfterMs).toBe(120_000)
          expect(error.errorCode).toBe(1008)
          expect(fake.requestCount()).toBe(1)
          expectKeyHidden(error, fake.apiKey)
        }),
      [{ kind: "rateLimited", retryAfter: "120" }]
    )
  )

  it.live("429/1008 without Retry-After defaults to 60 s", () =>
    withCmc(
      {},
      (cmc, fake) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcRateLimited") return expect.unreachable(`got ${error._tag}`)
          expect(error.retryAfterMs).toBe(60_000)
          expect(fake.requestCount()).toBe(1)
        }),
      [{ kind: "rateLimited" }]
    )
  )

  it.live("500 twice then 200 -> 3 requests, ok", () =>
    withCmc(
      {},
      (cmc, fake) =>
        Effect.gen(function* () {
          const q = yield* cmc.quote("SOL", "EUR")
          expect(q.price).toBe(126.28)
          expect(fake.requestCount()).toBe(3)
        }),
      times(2, { kind: "error", status: 500, errorMessage: "Internal server error" })
    )
  )

  it.live("persistent 503 -> CmcUnavailable after exactly 1 + MAX_RETRIES requests", () =>
    withCmc(
      { MAX_RETRIES: "3" },
      (cmc, fake, telemetry) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcUnavailable") return expect.unreachable(`got ${error._tag}`)
          expect(telemetry.logs.filter((line) => line.includes("level=WARN"))).toHaveLength(4)
          expect(error.status).toBe(503)
          expect(error.message).toBe("CoinMarketCap is unavailable (HTTP 503, error 503: Service unavailable)")
          expect(fake.requestCount()).toBe(4)
          expectKeyHidden(error, fake.apiKey)
        }),
      times(10, { kind: "error", status: 503, errorMessage: "Service unavailable" })
    )
  )

  it.live("MAX_RETRIES=0 -> one request only", () =>
    withCmc(
      { MAX_RETRIES: "0" },
      (cmc, fake) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          expect(error._tag).toBe("CmcUnavailable")
          expect(fake.requestCount()).toBe(1)
        }),
      times(10, { kind: "error", status: 500 })
    )
  )

  it.live("502 HTML from a proxy -> CmcUnavailable 502 after retries", () =>
    withCmc(
      { MAX_RETRIES: "1" },
      (cmc, fake) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcUnavailable") return expect.unreachable(`got ${error._tag}`)
          expect(error.status).toBe(502)
          expect(error.message).toBe("CoinMarketCap is unavailable (HTTP 502)")
          expect(fake.requestCount()).toBe(2)
        }),
      times(5, { kind: "html", status: 502 })
    )
  )

  it.live("malformed JSON with 200 -> CmcBadResponse after one request", () =>
    withCmc(
      {},
      (cmc, fake) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcBadResponse") return expect.unreachable(`got ${error._tag}`)
          expect(error.status).toBe(200)
          expect(error.message).toContain("CoinMarketCap answered HTTP 200 with a body that is not JSON")
          expect(fake.requestCount()).toBe(1)
        }),
      [{ kind: "malformedJson" }]
    )
  )

  it.live("HTML with 200 -> CmcBadResponse after one request", () =>
    withCmc(
      {},
      (cmc, fake) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcBadResponse") return expect.unreachable(`got ${error._tag}`)
          expect(error.message).toContain("not JSON (text/html; charset=utf-8): <!DOCTYPE html>")
          expect(fake.requestCount()).toBe(1)
        }),
      [{ kind: "html", status: 200 }]
    )
  )

  it.live("wrong shape -> CmcBadResponse naming the symbol", () =>
    withCmc(
      {},
      (cmc, fake) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcBadResponse") return expect.unreachable(`got ${error._tag}`)
          expect(error.message).toContain("CoinMarketCap sent an unexpected coin object")
          expect(error.message).toContain("for BTC")
          expect(fake.requestCount()).toBe(1)
        }),
      [{ kind: "json", body: fakeCmcSuccessBody({ BTC: { id: "one", name: "Bitcoin" } }) }]
    )
  )

  it.live("envelope without status -> CmcBadResponse", () =>
    withCmc(
      {},
      (cmc) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcBadResponse") return expect.unreachable(`got ${error._tag}`)
          expect(error.message).toContain("unexpected envelope")
        }),
      [{ kind: "json", body: { data: { BTC: FAKE_CMC_COINS["BTC"] } } }]
    )
  )

  it.live("no quote for the requested convert -> CmcBadResponse", () =>
    withCmc(
      {},
      (cmc) =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(cmc.quote("BTC", "EUR"))
          if (error._tag !== "CmcBadResponse") return expect.unreachable(`got ${error._tag}`)
          expect(error.message).toBe("CoinMarketCap sent no EUR quote for BTC")
        }),
      [
        {
          kind: "json",
          body: fakeCmcSuccessBody({
            BTC: { ...FAKE_CMC_COINS["BTC"], quote: { USD: FAKE_CMC_COINS["BTC"]?.quote["USD"] } }
          })
        }
      ]
    )
  )

  it.live("symbol left out of data (others valid) -> CmcSymbolNotFound after one request", () =>
    withCmc({}, (cmc, fake) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(cmc.quotes(["BTC", "foo"], "USD"))
        if (error._tag !== "CmcSymbolNotFound") return expect.unreachable(`got ${error._tag}`)
        expect(error.symbols).toEqual(["FOO"])
        expect(error.message).toBe("CoinMarketCap does not know the symbol(s) FOO")
        expect(fake.requestCount()).toBe(1)
      })
    )
  )

  it.live('400 "Invalid value for \\"symbol\\"" -> CmcSymbolNotFound after one request', () =>
    withCmc({}, (cmc, fake) =>
      Effect.gen(function* () {
        const one = yield* Effect.flip(cmc.quote("FOO", "USD"))
        if (one._tag !== "CmcSymbolNotFound") return expect.unreachable(`got ${one._tag}`)
        expect(one.symbols).toEqual(["FOO"])
        const two = yield* Effect.flip(cmc.quotes(["FOO", "BAR"], "USD"))
        if (two._tag !== "CmcSymbolNotFound") return expect.unreachable(`got ${two._tag}`)
        expect(two.symbols).toEqual(["FOO", "BAR"])
        expect(fake.requestCount()).toBe(2)
      })
    )
  )

  it.live("400 about something else -> CmcBadRequest, not retried", () =>
    withCmc({}, (cmc, fake) =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(cmc.quote("BTC", "XYZ"))
        if (error._tag !== "CmcBadRequest") return expect.unreachable(`got ${error._tag}`)
        expect(error.status).toBe(400)
        expect(error.message).toBe(
          'CoinMarketCap rejected the request (HTTP 400, error 400: Invalid value for "convert": "XYZ")'
        )
        expect(fake.requestCount()).toBe(1)
      })
    )
  )

  it.live("empty symbol list or bad convert -> CmcBadRequest without a request", () =>
    withCmc({}, (cmc, fake) =>
      Effect.gen(function* () {
        expect((yield* Effect.flip(cmc.quotes([" ", ""], "USD")))._tag).toBe("CmcBadRequest")
        expect((yield* Effect.flip(cmc.quote("BTC", "USD,EUR")))._tag).toBe("CmcBadRequest")
        expect((yield* Effect.flip(cmc.quote("BTC,ETH", "USD")))._tag).toBe("CmcBadRequest")
        expect(fake.requestCount()).toBe(0)
      })
    )
  )

  it.live("slower than CMC_TIMEOUT -> CmcTimeout", () =>
    withCmc(
      { CMC_TIMEOUT: "0.2", MAX_RETRIES: "0" },
      (cmc, fake) =>
        Effect.gen(function* () {
          const started = Date.now()
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcTimeout") return expect.unreachable(`got ${error._tag}`)
          expect(error.timeoutMs).toBe(200)
          expect(error.message).toBe("CoinMarketCap did not answer within 200 ms")
          expect(Date.now() - started).toBeLessThan(1500)
          expect(fake.requestCount()).toBe(1)
        }),
      [{ kind: "delay", ms: 3000 }]
    )
  )

  it.live("a timed-out attempt is retried", () =>
    withCmc(
      { CMC_TIMEOUT: "0.2", MAX_RETRIES: "1" },
      (cmc, fake) =>
        Effect.gen(function* () {
          const q = yield* cmc.quote("BTC", "USD")
          expect(q.price).toBe(60512.34)
          expect(fake.requestCount()).toBe(2)
        }),
      [{ kind: "delay", ms: 3000 }]
    )
  )

  it.live("dropped connection -> retried; persistent -> CmcUnavailable with status null", () =>
    withCmc(
      { MAX_RETRIES: "1" },
      (cmc, fake) =>
        Effect.gen(function* () {
          const q = yield* cmc.quote("BTC", "USD")
          expect(q.price).toBe(60512.34)
          expect(fake.requestCount()).toBe(2)
          fake.script({ kind: "drop" }, { kind: "drop" })
          const error = yield* Effect.flip(cmc.quote("BTC", "USD"))
          if (error._tag !== "CmcUnavailable") return expect.unreachable(`got ${error._tag}`)
          expect(error.status).toBeNull()
          expect(error.message).toMatch(/^CoinMarketCap could not be reached \(/)
          expect(fake.requestCount()).toBe(4)
          expectKeyHidden(error, fake.apiKey)
        }),
      [{ kind: "drop" }]
    )
  )

  it.live("connection refused -> CmcUnavailable with status null", () =>
    Effect.gen(function* () {
      const closed = yield* Effect.scoped(fakeCmc())
      const layer = Cmc.Default.pipe(
        Layer.provide(AppConfig.fromRecord({ ...baseEnv(closed), MAX_RETRIES: "1", INITIAL_BACKOFF: "0.01" }))
      )
      const { telemetry, logger } = capture()
      const error = yield* Effect.flip(Effect.flatMap(Cmc, (cmc) => cmc.quote("BTC", "USD"))).pipe(
        Effect.provide(layer),
        Effect.locally(FiberRef.currentLoggers, HashSet.make(logger))
      )
      expect(telemetry.logs).toHaveLength(2)
      if (error._tag !== "CmcUnavailable") return expect.unreachable(`got ${error._tag}`)
      expect(error.status).toBeNull()
      expect(error.message).toContain("ECONNREFUSED")
      expectKeyHidden(error, closed.apiKey)
    })
  )
})
