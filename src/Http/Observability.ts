import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Metric, MetricLabel, Option } from "effect"
import { AppConfig } from "../AppConfig.js"
import { httpRequestDuration, httpRequests } from "../Metrics.js"
import { type AdmissionVerdict, makeAdmissionPolicy, platformAdmissionRequest } from "./Admission.js"

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

/** What the request log line and the HTTP metrics of one request record. */
export interface RequestRecord {
  readonly method: string
  readonly route: string
  readonly status: number
  readonly seconds: number
  readonly cache: string
  /** The verdict's client (Admission.ts): the same rule on every path. */
  readonly client: string
}

/** A duration as the request log writes it: milliseconds with two decimals. */
export const durationMs = (seconds: number): number => Math.round(seconds * 100_000) / 100

/** The one request log line ("http request"); Logging.ts formats it with `requestLogLine` wherever it is written. */
export const logRequest = (record: RequestRecord) =>
  Effect.logInfo("http request").pipe(
    Effect.annotateLogs({
      method: record.method,
      route: record.route,
      status: record.status,
      durationMs: durationMs(record.seconds),
      cache: record.cache,
      client: record.client
    })
  )

/** The metrics and the one structured log line of a request, whichever path answered it. */
export const recordRequest = (record: RequestRecord) =>
  Effect.gen(function* () {
    yield* Metric.increment(counterFor(record.route, record.method, record.status))
    yield* Metric.update(histogramFor(record.route), record.seconds)
    yield* logRequest(record)
  })

/**
 * One structured log line and the HTTP metrics per request (streams are logged when their response starts), with
 * the route label and client of the request's admission verdict; fresh market answers are handed to `remember` for
 * the hot cache.
 */
export const observe = <E, R>(
  verdict: AdmissionVerdict,
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
      route: verdict.route.label,
      status: response.status,
      seconds: (performance.now() - started) / 1000,
      cache: response.headers["x-cache"] ?? "none",
      client: verdict.client
    })
    return response
  })

/**
 * `observe` for a middleware that answers ahead of the global one (the dashboard's pages): it reaches the request's
 * verdict itself, by the same policy. Without AppConfig (a bare router in tests) no API keys are configured.
 */
export const makeObserve = Effect.map(Effect.serviceOption(AppConfig), (config) => {
  const policy = makeAdmissionPolicy(
    Option.getOrElse(config, () => ({ apiKeys: [], trustProxy: false, rateLimitEnabled: false }))
  )
  return <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      observe(policy.verdict(platformAdmissionRequest(request)), app)
    )
})

export const MetricsResponse = (text: string) =>
  HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
