import { HttpLayerRouter, HttpServerRequest, HttpServerResponse, Socket } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import {
  Clock,
  type Context,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Option,
  Queue,
  Schedule,
  Stream
} from "effect"
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
const CLOSE_GRACE = Duration.seconds(5)
/** The writer waits while more than this is queued in the socket, so that updates conflate in the outbox instead. */
const WRITE_HIGH_WATER = 64 * 1024
const WRITE_POLL = Duration.millis(10)

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
  Effect.flatMap(Clock.currentTimeMillis, (timestamp) =>
    connection.control.offer({ event_type: "status", status: "closing", reason: "server shutting down", timestamp })
  )

const sseBody = (subscription: Subscription, response: () => { writableLength: number; destroy: () => void }) =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const connection = yield* openConnection({
        transport: "sse",
        multiplexed: false,
        transportBytes: () => response().writableLength
      })
      yield* connection.subscribe(subscription, { onEnd: connection.outbox.end })
      yield* connection.registration.closing.pipe(
        Effect.zipRight(closingNotice(connection)),
        Effect.zipRight(connection.outbox.end),
        Effect.forkScoped
      )
      // an SSE response cannot be closed with a reason; cutting it is all there is
      yield* connection.outbox.overflowed.pipe(
        Effect.zipRight(connection.registration.closedSlow),
        Effect.zipRight(Effect.logInfo("slow SSE client disconnected")),
        Effect.zipRight(Effect.sync(() => response().destroy())),
        Effect.forkScoped
      )
      let id = 0
      const frames = Stream.repeatEffectOption(
        Effect.flatMap(
          connection.outbox.take,
          Option.match({ onNone: () => Effect.fail(Option.none()), onSome: Effect.succeed })
        )
      ).pipe(
        Stream.map((e) => {
          id += 1
          return `id: ${id}\nevent: ${e.event}\ndata: ${e.data}\n\n`
        })
      )
      return Stream.concat(Stream.succeed(`retry: ${SSE_RETRY_MS}\n\n`), frames)
    })
  ).pipe(Stream.encodeText)

const sseRoute = (channel: StreamChannel, context: Context.Context<Services>) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const subscription = yield* requested(channel, request)
    if (Either.isLeft(subscription)) return subscription.left
    const body = sseBody(subscription.right, () => NodeHttpServerRequest.toServerResponse(request))
    return HttpServerResponse.stream(Stream.provideContext(body, context), {
      contentType: "text/event-stream",
      headers: SSE_HEADERS
    })
  }).pipe(Effect.provide(context))

interface CloseReason {
  readonly code: number
  readonly reason: string
}

type WsMode = { readonly multiplexed: true } | { readonly multiplexed: false; readonly subscription: Subscription }

const errorOf = (code: string, message: string, extra: Omit<ErrorEvent, "event_type" | "code" | "message"> = {}) =>
  ({ event_type: "error", code, message, ...extra }) satisfies ErrorEvent

/** What a WebSocket client's message does: ping on every route; subscribe and unsubscribe on /ws only. */
const clientMessageHandler = (connection: StreamConnection, multiplexed: boolean) =>
  Effect.fnUntraced(function* (text: string) {
    const hub = yield* StreamHub
    const config = yield* AppConfig
    const parsed = parseClientMessage(text)
    if (Either.isLeft(parsed)) return yield* connection.control.offer(errorOf("invalid_message", parsed.left))
    const message = parsed.right
    const id = message.id === undefined ? {} : { id: message.id }
    if (message.op === "ping") {
      const timestamp = yield* Clock.currentTimeMillis
      return yield* connection.control.offer({ event_type: "ack", op: "ping", ...id, timestamp })
    }
    if (!multiplexed) {
      return yield* connection.control.offer(
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
      return yield* connection.control.offer(errorEvent(validated.left, about))
    }
    const subscription = validated.right
    const ref = { ...subscriptionRef(subscription), ...id }
    if (message.op === "unsubscribe") {
      const removed = yield* connection.unsubscribe(subscription)
      return yield* connection.control.offer(
        removed
          ? ({ event_type: "ack", op: "unsubscribe", ...ref } satisfies AckEvent)
          : errorOf("not_subscribed", "no such subscription on this connection", { op: "unsubscribe", ...ref })
      )
    }
    if (!(yield* connection.has(subscription)) && (yield* connection.size) >= config.wsMaxSubscriptions) {
      return yield* connection.control.offer(
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

/**
 * Protocol pings every `interval`: a peer that has answered nothing (pong or message) since the previous ping is
 * gone, however open its TCP connection looks.
 */
const keepAlive = (ws: WebSocket, interval: Duration.Duration, peer: { alive: boolean }) => {
  const onPong = () => {
    peer.alive = true
  }
  return Effect.acquireRelease(
    Effect.sync(() => ws.on("pong", onPong)),
    () => Effect.sync(() => ws.off("pong", onPong))
  ).pipe(
    Effect.zipRight(
      Effect.sync(() => {
        if (ws.readyState !== ws.OPEN) return
        if (!peer.alive) return ws.terminate()
        peer.alive = false
        ws.ping()
      }).pipe(Effect.delay(interval), Effect.forever)
    ),
    Effect.scoped
  )
}

/** One WebSocket connection: single-stream (/ws/ticker, /ws/realtime) or multiplexed (/ws). */
const webSocket = (request: HttpServerRequest.HttpServerRequest, mode: WsMode) =>
  Effect.gen(function* () {
    const upgrade = yield* Effect.either(request.upgrade)
    if (Either.isLeft(upgrade)) {
      return errorResponse(
        new InvalidParameter({ message: "This route speaks WebSocket: connect with an Upgrade: websocket request" })
      )
    }
    const socket = upgrade.right
    const config = yield* AppConfig
    const tcp = NodeHttpServerRequest.toIncomingMessage(request).socket
    let raw: WebSocket | undefined
    const peer = { alive: true }
    const transportBytes = () => raw?.bufferedAmount ?? tcp.writableLength
    const write = yield* socket.writer
    const connection = yield* openConnection({ transport: "ws", multiplexed: mode.multiplexed, transportBytes })
    const closeWith = yield* Deferred.make<CloseReason>()
    let closeRequested = false
    const requestClose = (code: number, reason: string) => {
      closeRequested = true
      Deferred.unsafeDone(closeWith, Exit.succeed({ code, reason }))
    }
    let afterDrain: CloseReason = { code: 1000, reason: "stream ended" }
    const opened = yield* Deferred.make<void>()

    // writer: waits while the socket holds more than the high-water mark, so a slow client's updates conflate
    const highWater = Math.min(WRITE_HIGH_WATER, Math.floor(config.streamMaxBufferedBytes / 2))
    yield* Effect.gen(function* () {
      while (true) {
        const next = yield* connection.outbox.take
        if (Option.isNone(next)) break
        while (transportBytes() > highWater) yield* Effect.sleep(WRITE_POLL)
        yield* write(next.value.data)
      }
      requestClose(afterDrain.code, afterDrain.reason)
    }).pipe(Effect.forkScoped)

    yield* connection.outbox.overflowed.pipe(
      Effect.zipRight(connection.registration.closedSlow),
      Effect.zipRight(Effect.logInfo("slow WebSocket client disconnected")),
      Effect.zipRight(
        Effect.sync(() => requestClose(1008, `slow consumer: over ${config.streamMaxBufferedBytes} bytes behind`))
      ),
      Effect.forkScoped
    )
    yield* connection.registration.closing.pipe(
      Effect.zipRight(Effect.sync(() => requestClose(1001, "server shutting down"))),
      Effect.forkScoped
    )

    yield* Deferred.await(opened).pipe(
      Effect.zipRight(
        Effect.suspend(() => (raw === undefined ? Effect.void : keepAlive(raw, config.wsPingInterval, peer)))
      ),
      Effect.forkScoped
    )

    if (!mode.multiplexed) {
      yield* connection.subscribe(mode.subscription, {
        onEnd: Effect.suspend(() => {
          afterDrain = { code: 1011, reason: "upstream failed" }
          return connection.outbox.end
        })
      })
    }

    // inbound: size and rate are checked as messages arrive; a queue keeps them in order for the handler
    const inbox = yield* Queue.unbounded<string>()
    let received = 0
    yield* Effect.sync(() => {
      received = 0
    }).pipe(Effect.repeat(Schedule.spaced("1 second")), Effect.forkScoped)
    const decoder = new TextDecoder()
    const onMessage = (data: string | Uint8Array) => {
      peer.alive = true
      if (closeRequested) return
      const size = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength
      if (size > config.wsMaxMessageBytes) {
        return requestClose(1009, `message over ${config.wsMaxMessageBytes} bytes`)
      }
      received += 1
      if (received > config.wsMaxMessagesPerSecond) {
        return requestClose(1008, `over ${config.wsMaxMessagesPerSecond} messages per second`)
      }
      Queue.unsafeOffer(inbox, typeof data === "string" ? data : decoder.decode(data))
    }

    const handle = clientMessageHandler(connection, mode.multiplexed)
    yield* Queue.take(inbox).pipe(Effect.flatMap(handle), Effect.forever, Effect.forkScoped)

    const run = yield* socket
      .runRaw(onMessage, {
        onOpen: Effect.suspend(() => {
          raw = webSocketOn(tcp)
          return Deferred.succeed(opened, undefined)
        })
      })
      .pipe(
        Effect.catchAll((error) => Effect.logDebug("WebSocket ended", { reason: String(error) })),
        Effect.forkScoped
      )
    const closing = Deferred.await(closeWith).pipe(
      Effect.flatMap(({ code, reason }) => write(new Socket.CloseEvent(code, reason))),
      Effect.zipRight(Fiber.join(run).pipe(Effect.timeout(CLOSE_GRACE), Effect.ignore)),
      Effect.ensuring(Effect.sync(() => raw?.terminate()))
    )
    yield* Effect.raceFirst(Fiber.join(run), closing).pipe(
      // on server shutdown the platform interrupts this fiber: say why before the socket goes
      Effect.onInterrupt(() =>
        Effect.sync(() => {
          if (raw !== undefined && raw.readyState === raw.OPEN) raw.close(1001, "server shutting down")
        })
      )
    )
    return HttpServerResponse.empty()
  }).pipe(Effect.scoped)

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
