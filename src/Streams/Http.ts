import { HttpLayerRouter, HttpServerRequest, type HttpServerResponse } from "@effect/platform"
import { Effect, Either, Layer } from "effect"
import type { IncomingMessage } from "node:http"
import { AppConfig } from "../AppConfig.js"
import { InternalError, InvalidParameter, UpstreamUnavailable } from "../Domain/Errors.js"
import type { StreamChannel } from "../Exchange/Exchange.js"
import { nodeAdmissionRequest } from "../Http/Admission.js"
import { makeCorsPolicy } from "../Http/Cors.js"
import { recordRequest } from "../Http/Observability.js"
import { errorResponse, withHeaders } from "../Http/Responses.js"
import { pathOf, queryOf, SSE_ROUTES, STREAM_ROUTE_PATHS, WS_ROUTES } from "../Http/RouteTable.js"
import { makeAdmission } from "../Http/Security.js"
import type { Subscription } from "./Events.js"
import { parseQuery } from "./Protocol.js"
import { StreamHub } from "./StreamHub.js"

/** What a stream route decided for a request: the stream to open. */
export type Admission =
  | { readonly kind: "sse"; readonly subscription: Subscription }
  | { readonly kind: "ws"; readonly multiplexed: true }
  | { readonly kind: "ws"; readonly multiplexed: false; readonly subscription: Subscription }

/** The answer to a stream request: a refusal (status, headers, body), or the go-ahead with its Admission. */
export interface Verdict {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
  readonly admission: Admission | undefined
}

const isUpgrade = (upgrade: string | undefined) => upgrade?.toLowerCase() === "websocket"

const notUpgraded = errorResponse(
  new InvalidParameter({ message: "This route speaks WebSocket: connect with an Upgrade: websocket request" })
)

/** The subscription a route's query asks for, or the JSON error response (4xx) to answer with instead. */
const requested = (hub: StreamHub, channel: StreamChannel, url: string) =>
  Effect.gen(function* () {
    const parsed = parseQuery(channel, new URL(url, "http://localhost").searchParams)
    if (Either.isLeft(parsed)) return Either.left(errorResponse(parsed.left))
    return Either.mapLeft(yield* Effect.either(hub.validate(parsed.right)), errorResponse)
  })

/**
 * What a stream request gets: its route's query checked before anything streams (bad input gets an ordinary JSON
 * error), then the go-ahead (200 for SSE, 101 for a WebSocket upgrade).
 */
const decide = (
  hub: StreamHub,
  path: string,
  url: string,
  upgrade: string | undefined
): Effect.Effect<Either.Either<Admission, HttpServerResponse.HttpServerResponse>> =>
  Effect.gen(function* () {
    const sse = SSE_ROUTES.get(path)
    if (sse !== undefined) {
      return Either.map(yield* requested(hub, sse, url), (subscription): Admission => ({ kind: "sse", subscription }))
    }
    const ws = WS_ROUTES.get(path)
    if (ws === "multiplexed") {
      return isUpgrade(upgrade) ? Either.right<Admission>({ kind: "ws", multiplexed: true }) : Either.left(notUpgraded)
    }
    const subscription = yield* requested(hub, ws ?? "ticker", url)
    if (Either.isLeft(subscription)) return Either.left(subscription.left)
    if (!isUpgrade(upgrade)) return Either.left(notUpgraded)
    return Either.right<Admission>({ kind: "ws", multiplexed: false, subscription: subscription.right })
  })

const verdictOf = (response: HttpServerResponse.HttpServerResponse, admission: Admission | undefined): Verdict => {
  const body = response.body._tag === "Uint8Array" ? response.body.body : new Uint8Array()
  const headers: Record<string, string> = { ...response.headers }
  if (response.body._tag === "Uint8Array") {
    headers["content-type"] = response.body.contentType
    headers["content-length"] = String(body.byteLength)
  }
  return { status: response.status, headers, body, admission }
}

const internalError = errorResponse(new InternalError({ message: "Internal server error" }))

/** A WebSocket upgrade from a page whose origin CORS_ORIGINS does not allow. */
const forbiddenOrigin = (origin: string): Verdict => ({
  status: 403,
  headers: { "content-type": "application/json", "cache-control": "no-store", vary: "Origin" },
  body: new TextEncoder().encode(
    JSON.stringify({
      code: "origin_not_allowed",
      message: `Origin ${origin} may not open WebSockets here; allowed origins are set by CORS_ORIGINS`
    })
  ),
  admission: undefined
})

/**
 * Admits a stream request for the gateway: the same admission policy (API keys, rate limit) and the same request log
 * line and metrics as every other request, then the route's own checks. The gateway serves what is admitted.
 */
export const makeStreamAdmission = Effect.gen(function* () {
  const hub = yield* StreamHub
  const admit = yield* makeAdmission
  const cors = makeCorsPolicy((yield* AppConfig).corsOrigins)
  return (request: IncomingMessage): Effect.Effect<Verdict> =>
    Effect.gen(function* () {
      const started = performance.now()
      const url = request.url ?? "/"
      const path = pathOf(url)
      const method = request.method ?? "GET"
      const admitted = admit.policy.verdict(nodeAdmissionRequest(request, path, queryOf(url)))
      const origin = request.headers.origin
      // CORS does not cover WebSockets: a page of an origin CORS_ORIGINS does not allow is refused before any key check
      const forbidden = request.headers.upgrade !== undefined && !cors.allowsUpgrade(origin, request.headers.host)
      const decision = forbidden ? undefined : yield* admit.decide(admitted)
      let verdict: Verdict
      if (decision === undefined) verdict = forbiddenOrigin(origin ?? "")
      else if (Either.isLeft(decision)) verdict = verdictOf(decision.left, undefined)
      else {
        const decided = yield* decide(hub, path, url, request.headers.upgrade).pipe(
          Effect.catchAllDefect((defect) =>
            Effect.as(
              // the path only: the query may carry an api_key
              Effect.logError("unhandled request failure", { method, path, defect: String(defect) }),
              Either.left(internalError)
            )
          )
        )
        verdict = Either.match(decided, {
          onLeft: (refused) => verdictOf(withHeaders(refused, decision.right), undefined),
          onRight: (admission) => ({
            status: admission.kind === "ws" ? 101 : 200,
            headers: decision.right,
            body: new Uint8Array(),
            admission
          })
        })
      }
      yield* recordRequest({
        method,
        route: admitted.route.label,
        status: verdict.status,
        seconds: (performance.now() - started) / 1000,
        cache: "none",
        client: admitted.client
      })
      return verdict
    })
})

type Services = StreamHub | AppConfig

/** Where no stream gateway serves (a server without the front door): the checks, then 503 for a valid request. */
const unavailable = errorResponse(
  new UpstreamUnavailable({
    code: "upstream_unavailable",
    message: "live streams are not available on this server",
    source: "streams",
    retryAfter: 60
  })
)

const route = (path: string) =>
  Effect.gen(function* () {
    const hub = yield* StreamHub
    const request = yield* HttpServerRequest.HttpServerRequest
    const decided = yield* decide(hub, path, request.url, request.headers["upgrade"])
    return Either.isLeft(decided) ? decided.left : unavailable
  })

/**
 * The stream routes in the router: on the real server the gateway takes these requests first (see Server.ts); the
 * routes give every other server (tests on the platform's test server) the same answers to bad input.
 */
const Routes = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<Services>()
    for (const path of STREAM_ROUTE_PATHS) {
      yield* router.add("GET", path, route(path).pipe(Effect.provide(context)))
    }
  })
)

/** The shared hub, one per server; other transports (MCP) provide this same layer to share its upstreams. */
export const StreamHubLive = StreamHub.Default

/** SSE and WebSocket stream routes with their hub; needs Exchange and AppConfig. */
export const StreamRoutes = Routes.pipe(Layer.provide(StreamHubLive))
