import type { HttpServerResponse } from "@effect/platform"
import { Context, Effect, Layer, LogLevel, Metric, Option, Runtime } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { AppConfig } from "../AppConfig.js"
import { LogSink, requestLogLine, type RequestLogLine } from "../Logging.js"
import { cacheEvents } from "../Metrics.js"
import { makeAdmissionPolicy, nodeAdmissionRequest, type RouteAdmission } from "./Admission.js"
import { counterFor, durationMs, histogramFor, logRequest } from "./Observability.js"
import { RateLimiter } from "./RateLimit.js"
import { freshnessOf } from "./Responses.js"
import { pathOf, queryOf } from "./RouteTable.js"
import { makeCorsPolicy, originOf } from "./Cors.js"

interface Entry {
  readonly body: Uint8Array
  /** When the body was fetched upstream (ms); the Age header counts from here. */
  readonly storedAt: number
  readonly ttlMs: number
  readonly path: string
  readonly query: string | undefined
  /** What admission knows of the route: fixed for the URL, so looked up once. */
  readonly route: RouteAdmission
  readonly length: string
  readonly requests: Metric.Metric.Counter<number>
  readonly duration: Metric.Metric.Histogram<number>
  readonly logLine: RequestLogLine
}

export interface HotCacheService {
  /** Called with every response of the Effect path: keeps fresh market answers by URL. */
  readonly remember: (method: string, url: string, response: HttpServerResponse.HttpServerResponse) => void
  /**
   * The fast path, tried first by the front door: true when the request is taken care of here (a fresh answer goes
   * out before Effect's HTTP stack is entered); `fallback` hands it to the Effect path later if need be.
   */
  readonly serve: (request: IncomingMessage, response: ServerResponse, fallback: () => void) => boolean
  readonly stats: () => { readonly entries: number; readonly served: number }
}

/**
 * The hot path for cached market answers. A fresh answer that the Effect path has just served (from Redis or
 * memory) is kept here by exact URL and served again directly from Node's request event until its TTL ends,
 * with the same headers, request log and metrics. The same admission policy decides (Admission.ts: API keys, client
 * id, rate-limit bucket), and the request is counted in the same RateLimiter before the answer is written:
 * synchronously when local accounting may decide, else after the round trip. Everything else — misses, stale
 * answers, errors, unauthorized or limited requests, other routes — takes the Effect path.
 */
export class HotCache extends Context.Tag("app/HotCache")<HotCache, HotCacheService>() {}

const MAX_ENTRIES = 10_000
const hits = Metric.tagged(cacheEvents, "result", "hit")

export const HotCacheLive = Layer.effect(
  HotCache,
  Effect.gen(function* () {
    const config = yield* AppConfig
    const rateLimit = yield* RateLimiter
    const sink = yield* Effect.serviceOption(LogSink)
    const runtime = yield* Effect.runtime<never>()
    const policy = makeAdmissionPolicy(config)
    const cors = makeCorsPolicy(config.corsOrigins)
    const logRequests = LogLevel.greaterThanEqual(LogLevel.Info, config.logLevel)
    const entries = new Map<string, Entry>()
    let served = 0

    const remember = (method: string, url: string, response: HttpServerResponse.HttpServerResponse) => {
      if (method !== "GET" || response.status !== 200 || response.body._tag !== "Uint8Array") return
      const fresh = freshnessOf(response)
      if (fresh === undefined || fresh.ttlMs <= 0) return
      if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value ?? "")
      const path = pathOf(url)
      const route = policy.route("GET", path)
      const body = response.body.body
      entries.set(url, {
        body,
        storedAt: fresh.storedAt,
        ttlMs: fresh.ttlMs,
        path,
        query: queryOf(url),
        route,
        length: String(body.byteLength),
        requests: counterFor(route.label, "GET", 200),
        duration: histogramFor(route.label),
        logLine: requestLogLine(route.label, "GET", 200, "HIT")
      })
    }

    // Observability's request log line: straight into the sink when there is one, without a fiber
    const log = Option.match(sink, {
      onNone: () => (entry: Entry, seconds: number, client: string) =>
        Runtime.runSync(runtime)(
          logRequest({ method: "GET", route: entry.route.label, status: 200, seconds, cache: "HIT", client })
        ),
      onSome:
        ({ write }) =>
        (entry: Entry, seconds: number, client: string) =>
          write(entry.logLine(durationMs(seconds), client))
    })

    const write = (
      response: ServerResponse,
      entry: Entry,
      started: number,
      client: string,
      headers: Readonly<Record<string, string>>,
      origin: Readonly<Record<string, string>>
    ) => {
      const age = Math.floor(Math.max(0, Date.now() - entry.storedAt) / 1000)
      // a flat [name, value, ...] list is the cheapest form writeHead takes
      const raw = [
        "content-type",
        "application/json",
        "content-length",
        entry.length,
        "cache-control",
        `public, max-age=${Math.max(0, Math.floor(entry.ttlMs / 1000) - age)}`,
        "age",
        String(age),
        "x-cache",
        "HIT"
      ]
      for (const name in headers) raw.push(name, headers[name] ?? "")
      for (const name in origin) raw.push(name, origin[name] ?? "")
      response.writeHead(200, raw)
      response.end(entry.body)
      served += 1
      const seconds = (performance.now() - started) / 1000
      entry.requests.unsafeUpdate(1, [])
      entry.duration.unsafeUpdate(seconds, [])
      hits.unsafeUpdate(1, [])
      if (logRequests) log(entry, seconds, client)
    }

    const serve = (request: IncomingMessage, response: ServerResponse, fallback: () => void): boolean => {
      const started = performance.now()
      const url = request.url
      if (request.method !== "GET" || url === undefined) return false
      const entry = entries.get(url)
      if (entry === undefined) return false
      const ageMs = Date.now() - entry.storedAt
      if (ageMs >= entry.ttlMs || ageMs < 0) {
        entries.delete(url)
        return false
      }
      const verdict = policy.verdict(nodeAdmissionRequest(request, entry.path, entry.query), entry.route)
      // refused: the Effect path answers with the 401
      if (verdict.refusal !== undefined) return false
      const client = verdict.client
      const origin = cors.headers(originOf(request.rawHeaders), entry.route.label)
      const bucket = verdict.bucket
      if (bucket === undefined) {
        write(response, entry, started, client, {}, origin)
        return true
      }
      const local = rateLimit.tryLocal(bucket)
      if (local !== undefined) {
        write(response, entry, started, client, local.headers, origin)
        return true
      }
      Runtime.runCallback(runtime)(rateLimit.check(bucket), {
        onExit: (exit) => {
          // over the limit (or the counter failed): the Effect path answers, with the 429 and its headers
          if (exit._tag === "Success" && exit.value.allowed)
            write(response, entry, started, client, exit.value.headers, origin)
          else fallback()
        }
      })
      return true
    }

    return { remember, serve, stats: () => ({ entries: entries.size, served }) }
  })
)
