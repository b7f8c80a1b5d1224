import { HttpLayerRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { type Context, Effect, Either, Layer } from "effect"
import type { AppConfig } from "../AppConfig.js"
import { InvalidParameter, UpstreamUnavailable } from "../Domain/Errors.js"
import type { StreamChannel } from "../Exchange/Exchange.js"
import { errorResponse } from "../Http/Responses.js"
import { type Admission, admit, isAdmission } from "./Admission.js"
import { parseQuery, STREAM_CHANNELS } from "./Protocol.js"
import { StreamHub } from "./StreamHub.js"

type Services = StreamHub | AppConfig

const searchParams = (request: HttpServerRequest.HttpServerRequest) =>
  new URL(request.url, "http://localhost").searchParams

/** The subscription a route's query asks for, or the JSON error response (4xx) to answer with instead. */
const requested = (channel: StreamChannel, request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function* () {
    const hub = yield* StreamHub
    const parsed = parseQuery(channel, searchParams(request))
    if (Either.isLeft(parsed)) return Either.left(errorResponse(parsed.left))
    return Either.mapLeft(yield* Effect.either(hub.validate(parsed.right)), errorResponse)
  })

/**
 * A stream route admits its request: it runs behind the same middleware as every route (API keys, rate limit,
 * request log, metrics), checks the query, and leaves the go-ahead for the stream gateway, which then serves the
 * connection itself (see Gateway.ts). 101 for a WebSocket, 200 for SSE.
 */
const go = (request: HttpServerRequest.HttpServerRequest, admission: Admission) =>
  Effect.sync(() => {
    const response = NodeHttpServerRequest.toServerResponse(request)
    if (!isAdmission(response)) {
      // only reachable if the gateway is not installed on the server
      return errorResponse(
        new UpstreamUnavailable({
          code: "upstream_unavailable",
          message: "live streams are not available on this server",
          source: "streams",
          retryAfter: 60
        })
      )
    }
    admit(NodeHttpServerRequest.toIncomingMessage(request), admission)
    return HttpServerResponse.empty({ status: admission.kind === "ws" ? 101 : 200 })
  })

const isUpgrade = (request: HttpServerRequest.HttpServerRequest) =>
  request.headers["upgrade"]?.toLowerCase() === "websocket"

const notUpgraded = errorResponse(
  new InvalidParameter({ message: "This route speaks WebSocket: connect with an Upgrade: websocket request" })
)

const sseRoute = (channel: StreamChannel, context: Context.Context<Services>) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const subscription = yield* requested(channel, request)
    if (Either.isLeft(subscription)) return subscription.left
    return yield* go(request, { kind: "sse", subscription: subscription.right })
  }).pipe(Effect.provide(context))

const webSocketRoute = (
  context: Context.Context<Services>,
  mode: { readonly multiplexed: true } | { readonly multiplexed: false; readonly channel: StreamChannel }
) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    // validated before the upgrade, so that bad input gets an ordinary JSON error response
    if (mode.multiplexed)
      return isUpgrade(request) ? yield* go(request, { kind: "ws", multiplexed: true }) : notUpgraded
    const subscription = yield* requested(mode.channel, request)
    if (Either.isLeft(subscription)) return subscription.left
    if (!isUpgrade(request)) return notUpgraded
    return yield* go(request, { kind: "ws", multiplexed: false, subscription: subscription.right })
  }).pipe(Effect.provide(context))

/** The live-stream routes: SSE per channel, /ws/ticker and /ws/realtime (one ticker each) and the multiplexed /ws. */
const Routes = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<Services>()
    for (const channel of STREAM_CHANNELS) {
      yield* router.add("GET", `/v1/stream/${channel}`, sseRoute(channel, context))
    }
    yield* router.add("GET", "/ws/ticker", webSocketRoute(context, { multiplexed: false, channel: "ticker" }))
    yield* router.add("GET", "/ws/realtime", webSocketRoute(context, { multiplexed: false, channel: "ticker" }))
    yield* router.add("GET", "/ws", webSocketRoute(context, { multiplexed: true }))
  })
)

/** The shared hub, one per server; other transports (MCP) provide this same layer to share its upstreams. */
export const StreamHubLive = StreamHub.Default

/** SSE and WebSocket stream routes with their hub; needs Exchange and AppConfig. */
export const StreamRoutes = Routes.pipe(Layer.provide(StreamHubLive))
