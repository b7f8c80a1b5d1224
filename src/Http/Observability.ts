import { HttpServerRequest, HttpServerResponse, OpenApi } from "@effect/platform"
import { Effect, Metric, MetricLabel } from "effect"
import { Api } from "../Api.js"
import { isoNow } from "../Logging.js"
import { httpRequestDuration, httpRequests } from "../Metrics.js"
import { DOCS_PATHS } from "./Docs.js"
import { keyId, presentedKey } from "./Security.js"

/** Every route of the server; none has path parameters, so a route is its path. */
const KNOWN_ROUTES: ReadonlySet<string> = new Set([
  ...Object.keys(OpenApi.fromApi(Api).paths),
  ...Object.values(DOCS_PATHS),
  "/",
  "/openapi.json",
  "/metrics",
  "/mcp",
  "/ws",
  "/ws/ticker",
  "/ws/realtime",
  "/v1/stream/ticker",
  "/v1/stream/trades",
  "/v1/stream/orderbook",
  "/v1/stream/ohlcv"
])

/** The route label: the path of a known route, one bucket for everything else (label values stay bounded). */
export const routeLabel = (url: string): string => {
  const path = url.split("?")[0] ?? "/"
  return KNOWN_ROUTES.has(path) ? path : "unmatched"
}

type Counter = Metric.Metric.Counter<number>
type Histogram = Metric.Metric.Histogram<number>

// Tagged metrics are values; building them once per label set keeps the per-request cost to a map lookup.
const counters = new Map<string, Counter>()
const histograms = new Map<string, Histogram>()

export const counterFor = (route: string, method: string, status: number): Counter => {
  const key = `${route} ${method} ${status}`
  let counter = counters.get(key)
  if (counter === undefined) {
    // one label array: nested Metric.tagged would build a new array (and metric key) on every update
    counter = Metric.taggedWithLabels(httpRequests, [
      MetricLabel.make("route", route),
      MetricLabel.make("method", method),
      MetricLabel.make("status", String(status))
    ])
    counters.set(key, counter)
  }
  return counter
}

export const histogramFor = (route: string): Histogram => {
  let histogram = histograms.get(route)
  if (histogram === undefined) {
    histogram = Metric.tagged(httpRequestDuration, "route", route)
    histograms.set(route, histogram)
  }
  return histogram
}

/**
 * The request log line of `observe` for one route, method, status and cache state, for code that logs without Effect
 * (the hot path): the JSON of `jsonLogLine(Info, "http request", annotations)`, its constant parts serialized once.
 */
export const requestLogLine = (route: string, method: string, status: number, cache: string) => {
  const fixed = `"method":${JSON.stringify(method)},"route":${JSON.stringify(route)},"status":${status}`
  const middle = `","annotations":{${fixed},"durationMs":`
  const tail = `,"cache":${JSON.stringify(cache)},"client":`
  return (durationMs: number, client: string): string =>
    '{"message":"http request","logLevel":"INFO","timestamp":"' +
    isoNow() +
    middle +
    (Number.isFinite(durationMs) ? durationMs : "null") +
    tail +
    JSON.stringify(client) +
    '},"spans":{},"fiberId":""}'
}

/**
 * One structured log line and the HTTP metrics per request (streams are logged when their response starts); fresh
 * market answers are handed to `remember` for the hot cache.
 */
export const observe = <E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  remember?: (method: string, url: string, response: HttpServerResponse.HttpServerResponse) => void
) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const started = performance.now()
    const response = yield* app
    remember?.(request.method, request.url, response)
    const seconds = (performance.now() - started) / 1000
    const route = routeLabel(request.url)
    yield* Metric.increment(counterFor(route, request.method, response.status))
    yield* Metric.update(histogramFor(route), seconds)
    const key = presentedKey(request.headers)
    yield* Effect.logInfo("http request").pipe(
      Effect.annotateLogs({
        method: request.method,
        route,
        status: response.status,
        durationMs: Math.round(seconds * 100_000) / 100,
        cache: response.headers["x-cache"] ?? "none",
        client: key === undefined ? "anonymous" : `key:${keyId(key)}`
      })
    )
    return response
  })

export const MetricsResponse = (text: string) =>
  HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
