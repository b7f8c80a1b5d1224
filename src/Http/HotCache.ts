import type { HttpServerResponse } from "@effect/platform"
import { Context, Effect, Layer, LogLevel, Metric, Option, Runtime } from "effect"
import type { IncomingMessage, ServerResponse } from "node:http"
import { AppConfig } from "../AppConfig.js"
import { LogSink, requestLogLine, type RequestLogLine } from "../Logging.js"
import { cacheEvents } from "../Metrics.js"
import { counterFor, histogramFor } from "./Observability.js"
import { RateLimiter } from "./RateLimit.js"
import { freshnessOf } from "./Responses.js"
import { isUnlimited, pathOf, routeLabel } from "./RouteTable.js"
import { makeCorsPolicy, originOf } from "./Cors.js"
import { addressOf, clientOf, keyId, makeKeyCheck, presentedKey } from "./Security.js"

interface Entry {
  readonly body: Uint8Array
  /** When the body was fetched upstream (ms); the Age header counts from here. */
  readonly storedAt: number
  readonly ttlMs: number
  readonly route: string
  /** Whether the inbound rate limit counts this URL (its path is fixed, so decided once). */
  readonly limited: boolean
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
 * with the same headers, request log and metrics. API keys are checked here the same way, and the inbound rate limit
 * counts the request in the same RateLimiter before the answer is written: synchronously when local accounting may
 * decide, else after the round trip. Everything else — misses, stale answers, errors, unauthorized or limited requests,
 * other routes — takes the Effect path.
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
    const authRequired = config.apiKeys.length > 0
    const checkKey = makeKeyCheck(config.apiKeys)
    const cors = makeCorsPolicy(config.corsOrigins)
    const logRequests = LogLevel.greaterThanEqual(LogLevel.Info, config.logLevel)
    const entries = new Map<string, Entry>()
    let served = 0

    const remember = (method: string, url: string, response: HttpServerResponse.HttpServerResponse) => {
      if (method !== "GET" || response.status !== 200 || response.body._tag !== "Uint8Array") return
      const fresh = freshnessOf(response)
      if (fresh === undefined || fresh.ttlMs <= 0) return
      if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value ?? "")
      const route = routeLabel(url)
      const body = response.body.body
      entries.set(url, {
        body,
        storedAt: fresh.storedAt,
        ttlMs: fresh.ttlMs,
        route,
        limited: rateLimit.enabled && !isUnlimited(pathOf(url)),
        length: String(body.byteLength),
        requests: counterFor(route, "GET", 200),
        duration: histogramFor(route),
        logLine: requestLogLine(route, "GET", 200, "HIT")
      })
    }

    // Observability's request log line: straight into the sink when there is one, without a fiber
    const log = Option.match(sink, {
      onNone: () => (entry: Entry, durationMs: number, client: string) =>
        Runtime.runSync(runtime)(
          Effect.logInfo("http request").pipe(
            Effect.annotateLogs({ method: "GET", route: entry.route, status: 200, durationMs, cache: "HIT", client })
          )
        ),
      onSome:
        ({ write }) =>
        (entry: Entry, durationMs: number, client: string) =>
          write(entry.logLine(durationMs, client))
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
      if (logRequests) log(entry, Math.round(seconds * 100_000) / 100, client)
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
      let key: string | undefined
      if (authRequired) {
        const apiKey = request.headers["x-api-key"]
        key = presentedKey({
          "x-api-key": typeof apiKey === "string" ? apiKey : undefined,
          authorization: request.headers["authorization"]
        })
        if (key === undefined || !checkKey(key)) return false
      }
      const client = authRequired && key !== undefined ? `key:${keyId(key)}` : "anonymous"
      const origin = cors.headers(originOf(request.rawHeaders), entry.route)
      if (!entry.limited) {
        write(response, entry, started, client, {}, origin)
        return true
      }
      // only read when trusted: the first look at `request.headers` builds the whole header object
      const forwarded = config.trustProxy ? request.headers["x-forwarded-for"] : undefined
      const address = addressOf(
        request.socket.remoteAddress,
        typeof forwarded === "string" ? forwarded : undefined,
        config.trustProxy
      )
      const bucket = clientOf(key, authRequired, address)
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
