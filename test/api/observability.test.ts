import { expect, layer } from "@effect/vitest"
import { Effect, HashMap, Layer, List, Logger } from "effect"
import { keyId } from "../../src/Http/Admission.js"
import { ApiTestServer, get } from "../support/apiServer.js"

interface Captured {
  readonly message: unknown
  readonly annotations: Record<string, unknown>
}
const logs: Array<Captured> = []
const CaptureLogs = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ annotations, message }) => {
    logs.push({
      message: List.isList(message) ? List.toArray(message) : message,
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
)

const KEY = "observability-secret-key"
const auth = { "x-api-key": KEY }
const requestLogs = () => logs.filter((l) => JSON.stringify(l.message).includes("http request"))

layer(
  ApiTestServer({ API_KEYS: KEY, RATE_LIMIT_ENABLED: "true", RATE_LIMIT_REQUESTS: "5" }).pipe(
    Layer.provide(CaptureLogs)
  ),
  { excludeTestServices: true }
)("request logs and /metrics", (it) => {
  it.effect("one structured log line per request, with route, status, duration, cache state and key id", () =>
    Effect.gen(function* () {
      logs.length = 0
      yield* get("/v1/markets/ticker?exchange=binance&symbol=BTC/USDT", auth)
      yield* get("/v1/markets/ticker?exchange=binance&symbol=BTC/USDT", auth)
      yield* get("/v1/markets/ticker?exchange=nope&symbol=BTC/USDT", auth)
      yield* get("/v1/health")
      yield* get("/v1/markets/random-path-31337", auth)
      const lines = requestLogs()
      expect(
        lines.map((l) => [l.annotations.route, l.annotations.status, l.annotations.cache, l.annotations.client])
      ).toEqual([
        ["/v1/markets/ticker", 200, "MISS", `key:${keyId(KEY)}`],
        ["/v1/markets/ticker", 200, "HIT", `key:${keyId(KEY)}`],
        ["/v1/markets/ticker", 400, "none", `key:${keyId(KEY)}`],
        ["/v1/health", 200, "none", "anonymous"],
        ["unmatched", 404, "none", `key:${keyId(KEY)}`]
      ])
      for (const line of lines) {
        expect(line.annotations.method).toBe("GET")
        expect(typeof line.annotations.durationMs).toBe("number")
      }
      expect(JSON.stringify(logs)).not.toContain(KEY)
    })
  )

  it.effect("/metrics serves Prometheus text behind the API key", () =>
    Effect.gen(function* () {
      expect((yield* get("/metrics")).status).toBe(401)
      for (let i = 0; i < 6; i++) yield* get("/v1/markets/trades?exchange=binance&symbol=ETH/USDT", auth)
      const res = yield* get("/metrics", auth)
      expect(res.status).toBe(200)
      expect(res.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8")
      const lines = res.text.split("\n")
      expect(lines).toContain("# TYPE http_requests_total counter")
      // unknown paths share one label, so clients cannot grow the metric's label values
      expect(res.text).not.toContain("random-path-31337")
      expect(lines).toContain('http_requests_total{route="unmatched",method="GET",status="404"} 1')
      expect(lines).toContain('http_requests_total{route="/v1/markets/ticker",method="GET",status="200"} 2')
      expect(lines).toContain('http_requests_total{route="/v1/markets/ticker",method="GET",status="400"} 1')
      expect(lines).toContain("# TYPE http_request_duration_seconds histogram")
      expect(lines.some((l) => l.startsWith('http_request_duration_seconds_count{route="/v1/health"}'))).toBe(true)
      expect(
        lines.some((l) => /^http_request_duration_seconds_bucket\{route="\/v1\/health",le="\+Inf"\} \d+$/.test(l))
      ).toBe(true)
      // 4 counted requests in the first test (health is not counted) + 6 here, limit 5: the last 5 were rejected
      expect(lines).toContain("rate_limit_rejections_total 5")
    })
  )
})
