import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Metric, MetricLabel } from "effect"
import { httpRequestDuration, httpRequests } from "../Metrics.js"
import { routeLabel } from "./RouteTable.js"
import { keyId, presentedKey } from "./Security.js"

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

/** The log id of a request's client: its API key's id, or anonymous. */
export const clientLabel = (key: string | undefined): string => (key === undefined ? "anonymous" : `key:${keyId(key)}`)

/** The metrics and the one structured log line of a request, whichever path answered it. */
export const recordRequest = (record: {
  readonly method: string
  readonly route: string
  readonly status: number
  readonly seconds: number
  readonly cache: string
  readonly client: string
}) =>
  Effect.gen(function* () {
    yield* Metric.increment(counterFor(record.route, record.method, record.status))
    yield* Metric.update(histogramFor(record.route), record.seconds)
    yield* Effect.logInfo("http request").pipe(
      Effect.annotateLogs({
        method: record.method,
        route: record.route,
        status: record.status,
        durationMs: Math.round(record.seconds * 100_000) / 100,
        cache: record.cache,
        client: record.client
      })
    )
  })

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
    yield* recordRequest({
      method: request.method,
      route: routeLabel(request.url),
      status: response.status,
      seconds: (performance.now() - started) / 1000,
      cache: response.headers["x-cache"] ?? "none",
      client: clientLabel(presentedKey(request.headers))
    })
    return response
  })

export const MetricsResponse = (text: string) =>
  HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
