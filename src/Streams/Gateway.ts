import { Clock, Duration, Effect, Either, Exit, Scope } from "effect"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import type { Duplex } from "node:stream"
import { type WebSocket, WebSocketServer } from "ws"
import { AppConfig } from "../AppConfig.js"
import { beforeListeners } from "../Http/Intercept.js"
import { AdmissionResponse, refuseUpgrade, type Verdict } from "./Admission.js"
import { openConnection, type StreamConnection, type Transport } from "./Connection.js"
import { type AckEvent, type ErrorEvent, errorEvent, type Subscription, subscriptionRef } from "./Events.js"
import { parseClientMessage } from "./Protocol.js"
import { StreamHub } from "./StreamHub.js"

/** Reconnection delay SSE clients are told to use. */
export const SSE_RETRY_MS = 3000
/** How long a closing WebSocket may take to complete the close handshake before it is cut. */
const CLOSE_GRACE_MS = 5000
/** Writes stop while more than this is queued in the socket, so that updates conflate in the outbox instead. */
const WRITE_HIGH_WATER = 64 * 1024
const WRITE_POLL_MS = 10
/** SSE writes stop while more than this waits in the response; Node tells when it drained. */
const SSE_HIGH_WATER = 16 * 1024

const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no"
} as const

const WS_PATHS: ReadonlySet<string> = new Set(["/ws", "/ws/ticker", "/ws/realtime"])
const SSE_PREFIX = "/v1/stream/"
const pathOf = (url: string | undefined) => (url ?? "/").split("?")[0] ?? "/"

interface CloseReason {
  readonly code: number
  readonly reason: string
}

const closingNotice = (connection: StreamConnection) =>
  connection.control.offer({
    event_type: "status",
    status: "closing",
    reason: "server shutting down",
    timestamp: Date.now()
  })

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

/** Headers the app set on an admission (rate-limit state, CORS) that the stream response carries on. */
const carried = (verdict: Verdict) => {
  const out: Record<string, string | Array<string>> = {}
  for (const [name, value] of Object.entries(verdict.headers)) {
    if (name !== "content-length" && name !== "content-type") out[name] = value
  }
  return out
}

/**
 * Serves admitted streams without a fiber per connection: SSE responses and WebSockets are plain Node objects fed
 * by the hub's synchronous fan-out; effects (subscribing, logs, closing scopes) run briefly on the hub's runtime.
 * Installed on the Node server in front of the app: stream requests are first answered by the app into an
 * AdmissionResponse (routing, API keys, rate limit, request log and metrics all apply), then taken over here.
 */
export const installStreamGateway = (server: Server, hub: StreamHub, config: AppConfig): void => {
  const wss = new WebSocketServer({ noServer: true })
  const provide = <A>(effect: Effect.Effect<A, never, StreamHub | AppConfig | Scope.Scope>, scope: Scope.Scope) =>
    effect.pipe(Effect.provideService(StreamHub, hub), Effect.provideService(AppConfig, config), Scope.extend(scope))

  /** Runs a connection's setup in its own scope, closed when the socket closes (however it closes). */
  const withConnection = (
    setup: Effect.Effect<void, never, StreamHub | AppConfig | Scope.Scope>,
    onClose: (close: () => void) => void
  ) =>
    hub.runDetached(
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        yield* provide(setup, scope)
        onClose(() => hub.runDetached(Scope.close(scope, Exit.void)))
      })
    )

  const serveSse = (response: ServerResponse, subscription: Subscription, verdict: Verdict) => {
    response.writeHead(200, { ...carried(verdict), ...SSE_HEADERS })
    response.write(`retry: ${SSE_RETRY_MS}\n\n`)
    let id = 0
    let draining = false
    withConnection(
      Effect.gen(function* () {
        const connection: StreamConnection = yield* openConnection({
          kind: "sse",
          multiplexed: false,
          bufferedBytes: () => response.writableLength,
          ready: (resume) => {
            if (response.destroyed || response.writableEnded) return false
            if (response.writableLength <= SSE_HIGH_WATER) return true
            if (!draining) {
              draining = true
              response.once("drain", () => {
                draining = false
                resume()
              })
            }
            return false
          },
          write: (event) => {
            id += 1
            response.write(`id: ${id}\nevent: ${event.event}\ndata: ${event.data}\n\n`)
          },
          finished: () => response.end(),
          // an SSE response cannot be closed with a reason; cutting it is all there is
          overflowed: () => {
            connection.registration.closedSlow()
            hub.runDetached(Effect.logInfo("slow SSE client disconnected"))
            response.destroy()
          },
          closing: () => {
            closingNotice(connection)
            connection.outbox.end()
          },
          terminate: () => response.destroy()
        } satisfies Transport)
        yield* connection.subscribe(subscription, { onEnd: connection.outbox.end })
      }),
      (close) => {
        if (response.destroyed || response.closed) close()
        else response.once("close", close)
      }
    )
  }

  const serveWs = (
    ws: WebSocket,
    socket: Duplex,
    mode: { multiplexed: true } | { multiplexed: false; subscription: Subscription }
  ) => {
    let alive = true
    let closeRequested: CloseReason | undefined
    let closeTimer: ReturnType<typeof setTimeout> | undefined
    let polling = false
    let afterDrain: CloseReason = { code: 1000, reason: "stream ended" }
    let connection: StreamConnection | undefined
    const requestClose = (code: number, reason: string) => {
      if (closeRequested !== undefined) return
      closeRequested = { code, reason }
      if (ws.readyState !== ws.OPEN) return
      ws.close(code, reason)
      closeTimer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS)
      closeTimer.unref()
    }
    // a socket holding more than the high-water mark is polled until it drained, so a slow client's updates conflate
    const highWater = Math.min(WRITE_HIGH_WATER, Math.floor(config.streamMaxBufferedBytes / 2))
    const transport: Transport = {
      kind: "ws",
      multiplexed: mode.multiplexed,
      bufferedBytes: () => ws.bufferedAmount,
      ready: (resume) => {
        if (ws.readyState !== ws.OPEN) return false
        if (ws.bufferedAmount <= highWater) return true
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
        ws.send(event.bytes, { binary: false })
      },
      finished: () => requestClose(afterDrain.code, afterDrain.reason),
      overflowed: () => {
        connection?.registration.closedSlow()
        hub.runDetached(Effect.logInfo("slow WebSocket client disconnected"))
        requestClose(1008, `slow consumer: over ${config.streamMaxBufferedBytes} bytes behind`)
      },
      closing: () => requestClose(1001, "server shutting down"),
      terminate: () => ws.terminate()
    }

    // inbound: size and rate are checked as messages arrive; one fiber at a time handles them, in order
    const inbox: Array<string> = []
    let handling = true
    let handle: ((text: string) => Effect.Effect<void>) | undefined
    const handleAll: Effect.Effect<void> = Effect.suspend(() => {
      const next = inbox.shift()
      if (next === undefined || handle === undefined) {
        handling = false
        return Effect.void
      }
      return Effect.zipRight(handle(next), handleAll)
    })
    let windowStart = Date.now()
    let received = 0
    ws.on("message", (data: Buffer) => {
      alive = true
      if (closeRequested !== undefined) return
      if (data.byteLength > config.wsMaxMessageBytes) {
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
      inbox.push(data.toString("utf8"))
      if (!handling) {
        handling = true
        hub.runDetached(handleAll)
      }
    })

    // protocol pings: a peer that has answered nothing (pong or message) since the previous ping is gone, however
    // open its TCP connection looks
    ws.on("pong", () => {
      alive = true
    })
    const pingTimer = setInterval(() => {
      if (ws.readyState !== ws.OPEN) return
      if (!alive) return ws.terminate()
      alive = false
      ws.ping()
    }, Duration.toMillis(config.wsPingInterval))
    pingTimer.unref()
    ws.on("error", () => ws.terminate())
    socket.on("error", () => undefined)

    withConnection(
      Effect.gen(function* () {
        const opened = yield* openConnection(transport)
        connection = opened
        handle = clientMessageHandler(opened, mode.multiplexed, hub, config)
        if (!mode.multiplexed) {
          yield* opened.subscribe(mode.subscription, {
            onEnd: () => {
              afterDrain = { code: 1011, reason: "upstream failed" }
              opened.outbox.end()
            }
          })
        }
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            clearTimeout(closeTimer)
            clearInterval(pingTimer)
          })
        )
        opened.resume()
        yield* handleAll
      }),
      (close) => {
        if (ws.readyState === ws.CLOSED) close()
        else ws.once("close", close)
      }
    )
  }

  // the platform's own upgrade would keep a fiber (and a request context) per connection for the connection's life
  beforeListeners(server, (event, args, emit) => {
    /** Lets the app answer the request into an AdmissionResponse, then acts on its verdict. */
    const admitThrough = (request: IncomingMessage, onVerdict: (verdict: Verdict) => void) =>
      emit("request", request, new AdmissionResponse(request, onVerdict))
    if (event === "upgrade") {
      const [request, socket, head] = args as [IncomingMessage, Duplex, Buffer]
      if (!WS_PATHS.has(pathOf(request.url))) return false
      socket.on("error", () => undefined)
      return admitThrough(request, (verdict) => {
        const admission = verdict.admission
        if (verdict.status !== 101 || admission?.kind !== "ws") return refuseUpgrade(socket, verdict)
        wss.handleUpgrade(request, socket, head, (ws) =>
          serveWs(
            ws,
            socket,
            admission.multiplexed ? { multiplexed: true } : { multiplexed: false, subscription: admission.subscription }
          )
        )
      })
    }
    if (event !== "request") return false
    const [request, response] = args as [IncomingMessage, ServerResponse]
    // every request passes here: a prefix test, no parsing
    if (response instanceof AdmissionResponse || request.method !== "GET" || !request.url?.startsWith(SSE_PREFIX)) {
      return false
    }
    return admitThrough(request, (verdict) => {
      const admission = verdict.admission
      if (verdict.status === 200 && admission?.kind === "sse")
        return serveSse(response, admission.subscription, verdict)
      response.writeHead(verdict.status, verdict.headers)
      response.end(verdict.body)
    })
  })
}

/** Installs the gateway with the hub and settings of the current context. */
export const installStreamGatewayWith = (server: Server) =>
  Effect.gen(function* () {
    const hub = yield* StreamHub
    const config = yield* AppConfig
    installStreamGateway(server, hub, config)
  })
