/**
 * The REST fault matrix (README, "Resilience"): every fault the emulator injects, through real ccxt and the
 * resilience layer, with the client outcome and the number of upstream requests it cost. Settings: MAX_RETRIES=2,
 * INITIAL_BACKOFF=0.01, MAX_BACKOFF=1.5, EXCHANGE_TIMEOUT=0.4, STALE_IF_ERROR=300 (test/resilience/server.ts).
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { EmulatedExchange, FaultSpec } from "../../src/emulator/index.js"
import { freePort } from "../support/redis.js"
import { get } from "../support/apiServer.js"
import { TestEmulator } from "../support/emulatorServer.js"
import { getJson, realSleep, ResilientEmulatorServer } from "./server.js"

type Body = { readonly code?: string; readonly message?: string }

interface Row {
  readonly title: string
  /** Default: a cold binance trades URL. */
  readonly path?: string
  readonly fault: Omit<FaultSpec, "exchange">
  readonly status: number
  readonly code?: string
  readonly retryAfter?: string
  /** Requests the emulator saw for this one client request. */
  readonly requests: number
}

const ROWS: ReadonlyArray<Row> = [
  {
    title: "500 HTML",
    fault: { kind: "error-500" },
    status: 503,
    code: "upstream_unavailable",
    retryAfter: "5",
    requests: 3
  },
  {
    title: "502 HTML",
    fault: { kind: "error-502-html" },
    status: 503,
    code: "upstream_unavailable",
    retryAfter: "5",
    requests: 3
  },
  {
    title: "503 HTML with Retry-After: 7",
    fault: { kind: "error-503", retryAfter: 7 },
    status: 503,
    code: "upstream_unavailable",
    retryAfter: "7",
    requests: 3
  },
  {
    title: "503 JSON (binance -1008: ccxt raises a plain ExchangeError, retried as a 5xx)",
    fault: { kind: "error-503-json" },
    status: 503,
    code: "upstream_unavailable",
    retryAfter: "5",
    requests: 3
  },
  {
    title: "200 truncated JSON",
    fault: { kind: "truncated-json" },
    status: 502,
    code: "bad_upstream_response",
    requests: 1
  },
  {
    title: "200 HTML maintenance page",
    fault: { kind: "html-200" },
    status: 502,
    code: "bad_upstream_response",
    requests: 1
  },
  {
    title: "200 empty body (ticker)",
    path: "/v1/markets/ticker?exchange=binance&symbol=SOL/USDT",
    fault: { kind: "empty-200" },
    status: 502,
    code: "bad_upstream_response",
    requests: 1
  },
  // ccxt reads an empty trades body as "no trades"; the integrity gate sees the body itself (a real "none" is `[]`)
  {
    title: "200 empty body (trades)",
    fault: { kind: "empty-200" },
    status: 502,
    code: "bad_upstream_response",
    requests: 1
  },
  { title: "200 [] (trades: a documented empty list)", fault: { kind: "empty-array-200" }, status: 200, requests: 1 },
  {
    title: "no answer within EXCHANGE_TIMEOUT",
    fault: { kind: "delay", delayMs: 3_000 },
    status: 504,
    code: "upstream_timeout",
    requests: 3
  },
  {
    title: "connection reset",
    fault: { kind: "reset" },
    status: 503,
    code: "upstream_unavailable",
    retryAfter: "5",
    requests: 3
  },
  { title: "503 twice, then 200", fault: { kind: "error-503", times: 2 }, status: 200, requests: 3 },
  {
    title: "429 with Retry-After: 1 (within MAX_BACKOFF), then 200",
    fault: { kind: "rate-limit-429", retryAfter: 1, times: 1 },
    status: 200,
    requests: 2
  }
]

let nextLimit = 100
/** A trades URL no earlier request used, so the cache cannot answer it. */
const coldTrades = (exchange: EmulatedExchange, symbol: string) =>
  `/v1/markets/trades?exchange=${exchange}&symbol=${encodeURIComponent(symbol)}&limit=${nextLimit++}`

/** Sends `path` with `fault` active on `exchange` and returns the response and the requests it caused. */
const withFault = (exchange: EmulatedExchange, fault: Omit<FaultSpec, "exchange"> | undefined, path: string) =>
  Effect.gen(function* () {
    const emulator = yield* TestEmulator
    emulator.clearFaults()
    if (fault !== undefined) emulator.inject({ ...fault, exchange })
    const before = emulator.requestCount(exchange)
    const started = Date.now()
    const res = yield* getJson(path)
    const requests = emulator.requestCount(exchange) - before
    emulator.clearFaults()
    return { res, requests, ms: Date.now() - started }
  })

const circuitOf = (exchange: string) =>
  Effect.map(
    getJson("/v1/health"),
    (res) =>
      (res.json as { dependencies: { exchanges: Record<string, { circuit?: Record<string, unknown> }> } }).dependencies
        .exchanges[exchange]?.circuit
  )

layer(ResilientEmulatorServer({ TRADES_CACHE_TTL: "0.2" }), { excludeTestServices: true, timeout: 60_000 })(
  "fault matrix: one request, binance trades, cold cache",
  (it) => {
    it.effect("markets load (once per exchange)", () =>
      Effect.gen(function* () {
        for (const [exchange, symbol] of [
          ["binance", "BTC/USDT"],
          ["kraken", "BTC/USD"]
        ] as const) {
          expect((yield* getJson(`/v1/markets/ticker?exchange=${exchange}&symbol=${symbol}`)).status).toBe(200)
        }
      })
    )

    for (const row of ROWS) {
      it.effect(
        `${row.title} ⇒ ${row.status}${row.code === undefined ? "" : ` ${row.code}`}, ${row.requests} request(s)`,
        () =>
          Effect.gen(function* () {
            const { res, requests, ms } = yield* withFault(
              "binance",
              row.fault,
              row.path ?? coldTrades("binance", "BTC/USDT")
            )
            expect(res.status).toBe(row.status)
            expect(requests).toBe(row.requests)
            if (row.code !== undefined) expect((res.json as Body).code).toBe(row.code)
            expect(res.headers["retry-after"]).toBe(row.retryAfter)
            if (row.status !== 200) expect(res.headers["cache-control"]).toBe("no-store")
            if (row.fault.kind === "rate-limit-429") expect(ms).toBeGreaterThanOrEqual(1_000)
          })
      )
    }

    it.effect("unknown symbol ⇒ 404 symbol_not_found, no request, whatever the upstream state", () =>
      Effect.gen(function* () {
        const { res, requests } = yield* withFault(
          "binance",
          { kind: "error-503" },
          "/v1/markets/ticker?exchange=binance&symbol=DOGE/BTC"
        )
        expect(res.status).toBe(404)
        expect((res.json as Body).code).toBe("symbol_not_found")
        expect(requests).toBe(0)
      })
    )

    it.effect("stale-if-error: a failed refresh serves the previous answer as STALE with its Age", () =>
      Effect.gen(function* () {
        const path = coldTrades("binance", "ETH/USDT")
        const fresh = yield* getJson(path)
        expect(fresh.headers["x-cache"]).toBe("MISS")
        yield* realSleep(1_100)
        for (const kind of ["error-503", "html-200", "empty-200", "empty-object-200", "reset"] as const) {
          const { res, requests } = yield* withFault("binance", { kind }, path)
          expect(res.status).toBe(200)
          expect(res.headers["x-cache"]).toBe("STALE")
          expect(Number(res.headers["age"])).toBeGreaterThanOrEqual(1)
          expect(res.headers["cache-control"]).toBe("public, max-age=0, must-revalidate")
          expect(res.text).toBe(fresh.text)
          expect(requests).toBe(kind === "error-503" || kind === "reset" ? 3 : 1)
        }
        const recovered = yield* getJson(path)
        expect(recovered.headers["x-cache"]).toBe("MISS")
        expect(recovered.headers["age"]).toBe("0")
      })
    )

    it.effect("the circuit stays closed through all of it (failure counting is off here)", () =>
      Effect.gen(function* () {
        expect(yield* circuitOf("binance")).toEqual({
          state: "closed",
          reason: null,
          retryAfter: null,
          consecutiveFailures: expect.any(Number),
          rateLimitedFor: null
        })
      })
    )
  }
)

layer(ResilientEmulatorServer(), { excludeTestServices: true, timeout: 60_000 })(
  "fault matrix: 429 with a Retry-After beyond MAX_BACKOFF",
  (it) => {
    it.effect("one request, 429 at once; then no request to that exchange until the window ends", () =>
      Effect.gen(function* () {
        const primed = "/v1/markets/ticker?exchange=kraken&symbol=ETH/USD"
        expect((yield* getJson(primed)).headers["x-cache"]).toBe("MISS")
        yield* realSleep(2_100)

        const first = yield* withFault(
          "kraken",
          { kind: "rate-limit-429", retryAfter: 30, times: 1 },
          coldTrades("kraken", "BTC/USD")
        )
        expect(first.res.status).toBe(429)
        expect((first.res.json as Body).code).toBe("upstream_rate_limited")
        expect(first.res.headers["retry-after"]).toBe("30")
        expect(first.requests).toBe(1)
        expect(first.ms).toBeLessThan(1_000)

        const paused = yield* withFault("kraken", undefined, coldTrades("kraken", "SOL/USD"))
        expect(paused.res.status).toBe(429)
        expect((paused.res.json as Body).code).toBe("upstream_rate_limited")
        expect(Number(paused.res.headers["retry-after"])).toBeGreaterThanOrEqual(28)
        expect(paused.requests).toBe(0)

        const stale = yield* withFault("kraken", undefined, primed)
        expect([stale.res.status, stale.res.headers["x-cache"], stale.requests]).toEqual([200, "STALE", 0])

        expect((yield* getJson(coldTrades("binance", "BTC/USDT"))).status).toBe(200)
        expect(yield* circuitOf("kraken")).toMatchObject({ state: "closed", rateLimitedFor: expect.any(Number) })
      })
    )
  }
)

layer(ResilientEmulatorServer(), { excludeTestServices: true, timeout: 60_000 })("fault matrix: 418 ban", (it) => {
  it.effect("one request, 503 upstream_banned; none while banned (stale where cached); a probe after the ban", () =>
    Effect.gen(function* () {
      const emulator = yield* TestEmulator
      const primed = "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT"
      expect((yield* getJson(primed)).status).toBe(200)
      yield* realSleep(2_100)

      emulator.inject({ kind: "ban-418", exchange: "binance", retryAfter: 3, bannedUntil: Date.now() + 3_000 })
      const before = emulator.requestCount("binance")
      const first = yield* getJson(coldTrades("binance", "BTC/USDT"))
      expect(first.status).toBe(503)
      expect((first.json as Body).code).toBe("upstream_banned")
      expect(first.headers["retry-after"]).toBe("3")
      expect(emulator.requestCount("binance") - before).toBe(1)
      expect(yield* circuitOf("binance")).toMatchObject({ state: "open", reason: "banned" })

      for (const path of [
        coldTrades("binance", "ETH/USDT"),
        "/v1/markets/orderbook?exchange=binance&symbol=SOL/USDT&limit=5",
        "/v1/markets/ohlcv?exchange=binance&symbol=BTC/USDT&interval=1h&limit=3",
        "/v1/markets/tickers?exchange=binance&symbols=BTC/USDT,ETH/USDT"
      ]) {
        const refused = yield* getJson(path)
        expect(refused.status).toBe(503)
        expect((refused.json as Body).code).toBe("upstream_banned")
        expect(Number(refused.headers["retry-after"])).toBeGreaterThanOrEqual(1)
        expect(Number(refused.headers["retry-after"])).toBeLessThanOrEqual(3)
      }
      const stale = yield* getJson(primed)
      expect([stale.status, stale.headers["x-cache"]]).toEqual([200, "STALE"])
      expect(emulator.requestCount("binance") - before).toBe(1)
      const metrics = (yield* get("/metrics")).text
      expect(metrics).toContain('upstream_circuit_open{exchange="binance"} 1')
      expect(metrics).toContain('upstream_errors_total{source="binance",method="fetchTrades",code="upstream_banned"} 1')
      expect(metrics).toMatch(/cache_events_total\{result="stale"\} [1-9]/)
      expect((yield* getJson("/v1/markets/ticker?exchange=kraken&symbol=BTC/USD")).status).toBe(200)

      emulator.clearFaults()
      yield* realSleep(3_100)
      const probe = yield* getJson(coldTrades("binance", "BTC/USDT"))
      expect(probe.status).toBe(200)
      expect(emulator.requestCount("binance") - before).toBe(2)
      expect(yield* circuitOf("binance")).toMatchObject({ state: "closed", reason: null })
      expect((yield* get("/metrics")).text).toContain('upstream_circuit_open{exchange="binance"} 0')
    })
  )
})

describe("fault matrix: connection refused", () => {
  layer(
    Layer.unwrapEffect(
      Effect.map(Effect.promise(freePort), (port) =>
        ResilientEmulatorServer({
          EXCHANGE_API_BASE_BINANCE: `http://127.0.0.1:${port}`,
          MAX_RETRIES: "1",
          CIRCUIT_FAILURE_THRESHOLD: "2",
          CIRCUIT_COOLDOWN: "30"
        })
      )
    ),
    { excludeTestServices: true, timeout: 60_000 }
  )("server pointed at a closed port", (it) => {
    it.effect(
      "503 upstream_unavailable; CIRCUIT_FAILURE_THRESHOLD failed requests (retries count) open the circuit",
      () =>
        Effect.gen(function* () {
          const path = "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT"
          const res = yield* getJson(path)
          expect(res.status).toBe(503)
          expect((res.json as Body).code).toBe("upstream_unavailable")
          expect(res.headers["retry-after"]).toBe("5")
          expect((res.json as Body).message).toContain("could not be reached")
          const refused = yield* getJson(path)
          expect(refused.status).toBe(503)
          expect((refused.json as Body).message).toBe(
            "binance failed 2 times in a row; requests to it are paused for another 30 s"
          )
          expect(refused.headers["retry-after"]).toBe("30")
          expect(yield* circuitOf("binance")).toMatchObject({
            state: "open",
            reason: "failing",
            consecutiveFailures: 2
          })
          expect((yield* getJson("/v1/markets/ticker?exchange=kraken&symbol=BTC/USD")).status).toBe(200)
        })
    )
  })
})
