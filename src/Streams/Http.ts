import { HttpLayerRouter, HttpServerRequest, HttpServerResponse, type Socket } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Clock, type Context, Deferred, Duration, Effect, Either, Exit, Layer, Scope } from "effect"
import type { ServerResponse } from "node:http"
import { Readable } from "node:stream"
import type { WebSocket } from "ws"
import { AppConfig } from "../AppConfig.js"
import { InvalidParameter } from "../Domain/Errors.js"
import type { StreamChannel } from "../Exchange/Exchange.js"
import { errorResponse } from "../Http/Responses.js"
import { openConnection, type StreamConnection } from "./Connection.js"
import { type AckEvent, type ErrorEvent, errorEvent, type Subscription, subscriptionRef } from "./Events.js"
import { webSocketOn } from "./NodeSocket.js"
import { parseClientMessage, parseQuery, STREAM_CHANNELS } from "./Protocol.js"
import { StreamHub } from "./StreamHub.js"

/** Reconnection delay SSE clients are told to use. */
export const SSE_RETRY_MS = 3000
/** How long a closing WebSocket may take to complete the close handshake before it is cut. */
const CLOSE_GRACE_MS = 5000
/** Writes stop while more than this is queued in the socket, so that updates conflate in the outbox instead. */
const WRITE_HIGH_WATER = 64 * 1024
const WRITE_POLL_MS = 10

const SSE_HEADERS = {
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no"
} as const

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

const closingNotice = (connection: StreamConnection) =>
  connection.control.offer({
    event_type: "status",
    status: "closing",
    reason: "server shutting down",
    timestamp: Date.now()
  })

/** SSE frames wait in this stream while the response is congested; past it, updates conflate in the outbox. */
const SSE_HIGH_WATER = 16 * 1024

/**
 * An SSE response: the connection writes frames straight into a Node stream piped to the response, so an event
 * costs no fiber hop. The connection lives until the response closes, whoever closes it.
 */
const sseResponse = (subscription: Subscription, response: ServerResponse) =>
  Effect.gen(function* () {
    const hub = yield* StreamHub
    const scope = yield* Scope.make()
    let resumeWrites: (() => void) | undefined
    const body = new Readable({
      highWaterMark: SSE_HIGH_WATER,
      read: () => {
        const resume = resumeWrites
        resumeWrites = undefined
        resume?.()
      }
    })
    let id = 0
    const connection: StreamConnection = yield* openConnection({
      kind: "sse",
      multiplexed: false,
      bufferedBytes: () => body.readableLength + response.writableLength,
      ready: (resume) => {
        if (body.destroyed) return false
        if (body.readableLength < SSE_HIGH_WATER) return true
        resumeWrites = resume
        return false
      },
      write: (event) => {
        id += 1
        body.push(`id: ${id}\nevent: ${event.event}\ndata: ${event.data}\n\n`)
      },
      finished: () => {
        if (!body.destroyed) body.push(null)
      },
      // an SSE response cannot be closed with a reason; cutting it is all there is
      overflowed: () => {
        connection.registration.closedSlow()
        hub.runDetached(Effect.logInfo("slow SSE client disconnected"))
        response.destroy()
        body.destroy()
      },
      closing: () => {
        closingNotice(connection)
        connection.outbox.end()
      }
    }).pipe(Scope.extend(scope))
    const release = () => {
      body.destroy()
      hub.runDetached(Scope.close(scope, Exit.void))
    }
    if (response.destroyed || response.socket === null || response.socket.destroyed) release()
    else response.once("close", release)
    body.push(`retry: ${SSE_RETRY_MS}\n\n`)
    const ended = connection.outbox.end
    yield* connection.subscribe(subscription, { onEnd: ended })
    return body
  }).pipe(Effect.uninterruptible)

const sseRoute = (channel: StreamChannel, context: Context.Context<Services>) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const subscription = yield* requested(channel, request)
    if (Either.isLeft(subscription)) return subscription.left
    const body = yield* sseResponse(subscription.right, NodeHttpServerRequest.toServerResponse(request))
    return HttpServerResponse.raw(body, { contentType: "text/event-stream", headers: SSE_HEADERS })
  }).pipe(Effect.provide(context))

interface CloseReason {
  readonly code: number
  readonly reason: string
}

type WsMode = { readonly multiplexed: true } | { readonly multiplexed: false; readonly subscription: Subscription }

const errorOf = (code: string, message: string, extra: Omit<ErrorEvent, "event_type" | "code" | "message"> = {}) =>
  ({ event_type: "error", code, message, ...extra }) satisfies ErrorEvent

/** What a WebSocket client's message does: ping on every route; subscribe and unsubscribe on /ws only. */
const clientMessageHandler = (connection: StreamConnection, multiplexed: boolean, hub: StreamHub, config: AppConfig) =>
  Effect.fnUntraced(function* (text: string) {
    const parsed = parseClientMessage(text)
    if (Either.isLeft(parsed)) return connection.control.offer(errorOf("invalid_message", parsed.left))
    const message = parsed.right
    const id = message.id === undefined ? {} : { id: message.id }
    if (message.op === "ping") {
      const timestamp = yield* Clock.currentTimeMillis
      return connection.control.offer({ event_type: "ack", op: "ping", ...id, timestamp })
    }
    if (!multiplexed) {
      return connection.control.offer(
        errorOf("unsupported_op", "this route streams one market; subscribe and unsubscribe on /ws", {
          op: message.op,
          ...id
        })
      )
    }
    const { channel, exchange, symbol, interval } = message
    const validated = yield* Effect.either(
      hub.validate(message.op === "subscribe" ? message : { channel, exchange, symbol, interval })
    )
    if (Either.isLeft(validated)) {
      const about = {
        op: message.op,
        ...id,
        channel,
        exchange,
        symbol,
        ...(interval === undefined ? {} : { interval })
      }
      return connection.control.offer(errorEvent(validated.left, about))
    }
    const subscription = validated.right
    const ref = { ...subscriptionRef(subscription), ...id }
    if (message.op === "unsubscribe") {
      const removed = yield* connection.unsubscribe(subscription)
      return connection.control.offer(
        removed
          ? ({ event_type: "ack", op: "unsubscribe", ...ref } satisfies AckEvent)
          : errorOf("not_subscribed", "no such subscription on this connection", { op: "unsubscribe", ...ref })
      )
    }
    if (!connection.has(subscription) && connection.size() >= config.wsMaxSubscriptions) {
      return connection.control.offer(
        errorOf(
          "too_many_subscriptions",
          `at most ${config.wsMaxSubscriptions} subscriptions per connection; unsubscribe first`,
          { op: "subscribe", ...ref }
        )
      )
    }
    yield* connection.subscribe(subscription, {
      ack: {
        event_type: "ack",
        op: "subscribe",
        ...ref,
        ...(subscription.channel === "orderbook" ? { depth: subscription.depth } : {}),
        ...(subscription.channel === "ticker" ? { threshold: subscription.threshold } : {})
      }
    })
  })

/** One WebSocket connection: single-stream (/ws/ticker, /ws/realtime) or multiplexed (/ws). */
const webSocket = (request: HttpServerRequest.HttpServerRequest, mode: WsMode) =>
  Effect.gen(function* () {
    const upgrade = yield* Effect.either(request.upgrade)
    if (Either.isLeft(upgrade)) {
      return errorResponse(
        new InvalidParameter({ message: "This route speaks WebSocket: connect with an Upgrade: websocket request" })
      )
    }
    // the connection lives on after the handshake without this request's fiber: one suspended fiber per connection
    const scope = yield* Scope.make()
    return yield* connectWebSocket(request, upgrade.right, mode, scope).pipe(Scope.extend(scope))
  }).pipe(Effect.uninterruptible)

const connectWebSocket = (
  request: HttpServerRequest.HttpServerRequest,
  socket: Socket.Socket,
  mode: WsMode,
  scope: Scope.CloseableScope
) =>
  Effect.gen(function* () {
    const hub = yield* StreamHub
    const config = yield* AppConfig
    const tcp = NodeHttpServerRequest.toIncomingMessage(request).socket
    // the platform's Socket hands events through fibers; the `ws` instance underneath takes them directly
    let raw: WebSocket | undefined
    let alive = true
    let closeRequested: CloseReason | undefined
    let closeTimer: ReturnType<typeof setTimeout> | undefined
    let pingTimer: ReturnType<typeof setInterval> | undefined
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        clearTimeout(closeTimer)
        clearInterval(pingTimer)
      })
    )
    const sendClose = (ws: WebSocket, { code, reason }: CloseReason) => {
      ws.close(code, reason)
      closeTimer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS)
      closeTimer.unref()
    }
    const requestClose = (code: number, reason: string) => {
      if (closeRequested !== undefined) return
      closeRequested = { code, reason }
      if (raw !== undefined) sendClose(raw, closeRequested)
    }
    let afterDrain: CloseReason = { code: 1000, reason: "stream ended" }

    // a socket holding more than the high-water mark is polled until it drained, so a slow client's updates conflate
    const highWater = Math.min(WRITE_HIGH_WATER, Math.floor(config.streamMaxBufferedBytes / 2))
    let polling = false
    const connection: StreamConnection = yield* openConnection({
      kind: "ws",
      multiplexed: mode.multiplexed,
      bufferedBytes: () => raw?.bufferedAmount ?? tcp.writableLength,
      ready: (resume) => {
        // before the handshake completed: the socket's opening resumes the writes
        if (raw === undefined || raw.readyState !== raw.OPEN) return false
        if (raw.bufferedAmount <= highWater) return true
        if (!polling) {
          polling = true
          setTimeout(() => {
            polling = false
            resume()
          }, WRITE_POLL_MS).unref()
        }
        return false
      },
      write: (event) => {
        event.bytes ??= Buffer.from(event.data)
        raw?.send(event.bytes, { binary: false })
      },
      finished: () => requestClose(afterDrain.code, afterDrain.reason),
      overflowed: () => {
        connection.registration.closedSlow()
        hub.runDetached(Effect.logInfo("slow WebSocket client disconnected"))
        requestClose(1008, `slow consumer: over ${config.streamMaxBufferedBytes} bytes behind`)
      },
      closing: () => requestClose(1001, "server shutting down")
    })
    const opened = connection

    if (!mode.multiplexed) {
      yield* opened.subscribe(mode.subscription, {
        onEnd: () => {
          afterDrain = { code: 1011, reason: "upstream failed" }
          opened.outbox.end()
        }
      })
    }

    // inbound: size and rate are checked as messages arrive; one fiber at a time handles them, in order
    const handle = clientMessageHandler(opened, mode.multiplexed, hub, config)
    const inbox: Array<string> = []
    let handling = false
    const handleAll: Effect.Effect<void> = Effect.suspend(() => {
      const next = inbox.shift()
      if (next === undefined) {
        handling = false
        return Effect.void
      }
      return Effect.zipRight(handle(next), handleAll)
    })
    let windowStart = Date.now()
    let received = 0
    const decoder = new TextDecoder()
    const onMessage = (data: string | Uint8Array) => {
      alive = true
      if (closeRequested !== undefined) return
      const size = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength
      if (size > config.wsMaxMessageBytes) {
        return requestClose(1009, `message over ${config.wsMaxMessageBytes} bytes`)
      }
      const now = Date.now()
      if (now - windowStart >= 1000) {
        windowStart = now
        received = 0
      }
      received += 1
      if (received > config.wsMaxMessagesPerSecond) {
        return requestClose(1008, `over ${config.wsMaxMessagesPerSecond} messages per second`)
      }
      inbox.push(typeof data === "string" ? data : decoder.decode(data))
      if (!handling) {
        handling = true
        hub.runDetached(handleAll)
      }
    }

    // protocol pings: a peer that has answered nothing (pong or message) since the previous ping is gone, however
    // open its TCP connection looks
    const onOpen = (ws: WebSocket) => {
      raw = ws
      ws.on("pong", () => {
        alive = true
      })
      pingTimer = setInterval(() => {
        if (ws.readyState !== ws.OPEN) return
        if (!alive) return ws.terminate()
        alive = false
        ws.ping()
      }, Duration.toMillis(config.wsPingInterval))
      pingTimer.unref()
      if (closeRequested !== undefined) sendClose(ws, closeRequested)
      else opened.resume()
    }

    const handshake = yield* Deferred.make<void>()
    yield* socket
      .runRaw(onMessage, {
        onOpen: Effect.sync(() => {
          const ws = webSocketOn(tcp)
          if (ws !== undefined) onOpen(ws)
        }).pipe(Effect.zipRight(Deferred.succeed(handshake, undefined)))
      })
      .pipe(
        Effect.catchAll((error) => Effect.logDebug("WebSocket ended", { reason: String(error) })),
        // on server shutdown the hub interrupts what is left: say why before the socket goes (its own release
        // would close it without a code)
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            if (raw !== undefined && raw.readyState === raw.OPEN) raw.close(1001, "server shutting down")
          })
        ),
        Effect.ensuring(Effect.zipRight(Deferred.succeed(handshake, undefined), Scope.close(scope, Exit.void))),
        hub.runConnection
      )
    // answering before the handshake completed would make the platform write an HTTP response on the socket
    yield* Deferred.await(handshake)
    return HttpServerResponse.empty()
  })

const webSocketRoute = (
  context: Context.Context<Services>,
  mode: { readonly multiplexed: true } | { readonly multiplexed: false; readonly channel: StreamChannel }
) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (mode.multiplexed) return yield* webSocket(request, mode)
    // validated before the upgrade, so that bad input gets an ordinary JSON error response
    const subscription = yield* requested(mode.channel, request)
    if (Either.isLeft(subscription)) return subscription.left
    return yield* webSocket(request, { multiplexed: false, subscription: subscription.right })
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
