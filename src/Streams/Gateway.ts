import { Clock, Duration, Effect, Either } from "effect"
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http"
import type { Duplex } from "node:stream"
import { type WebSocket, WebSocketServer } from "ws"
import type { AppConfig } from "../AppConfig.js"
import { StreamConnection, type Transport } from "./Connection.js"
import type { Encoded } from "./Outbox.js"
import { type AckEvent, type ErrorEvent, errorEvent, type Subscription, subscriptionRef } from "./Events.js"
import type { Admission, Verdict } from "./Http.js"
import { parseClientMessage } from "./Protocol.js"
import { makeCorsPolicy, originOf, SECURITY_HEADERS } from "../Http/Cors.js"
import { pathOf, SSE_ROUTES, WS_ROUTES } from "../Http/RouteTable.js"
import type { StreamHub } from "./StreamHub.js"
import { textFrame } from "./WsFrame.js"

/** Reconnection delay SSE clients are told to use. */
export const SSE_RETRY_MS = 3000
/** How long a closing WebSocket may take to complete the close handshake before it is cut. */
const CLOSE_GRACE_MS = 5000
/** Writes stop while more than this is queued in the socket, so that updates conflate in the outbox instead. */
const WRITE_HIGH_WATER = 64 * 1024
const WRITE_POLL_MS = 10
/** Each WebSocket is pinged once per WS_PING_INTERVAL, a tenth of them at a time. */
const PING_SLOTS = 10
/** SSE writes stop while more than this waits in the response; Node tells when it drained. */
const SSE_HIGH_WATER = 16 * 1024

const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no"
} as const

const SSE_PREFIX = "/v1/stream/"

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
      const removed = connection.unsubscribe(subscription)
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

/** An HTTP response written straight onto a socket whose upgrade was refused. */
const refuseUpgrade = (socket: Duplex, verdict: Verdict): void => {
  const lines = [`HTTP/1.1 ${verdict.status} ${STATUS_CODES[verdict.status] ?? ""}`]
  for (const [name, value] of Object.entries({ ...verdict.headers, ...SECURITY_HEADERS })) {
    if (name !== "content-length" && name !== "connection") lines.push(`${name}: ${value}`)
  }
  lines.push(`content-length: ${verdict.body.byteLength}`, "connection: close", "", "")
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n")), verdict.body]))
}

// module-level on purpose: a closure made next to the upgrade's request would keep that request alive with the socket
const ignore = () => undefined

const STREAM_ENDED: CloseReason = { code: 1000, reason: "stream ended" }
const UPSTREAM_FAILED: CloseReason = { code: 1011, reason: "upstream failed" }

/** What every session of one gateway shares. */
interface Shared {
  readonly hub: StreamHub
  readonly config: AppConfig
  /** A socket holding more than this is polled until it drained, so a slow client's updates conflate meanwhile. */
  readonly highWater: number
  /** Pings the session from now on; returns its ping slot. */
  readonly track: (session: WsSession) => number
  readonly untrack: (session: WsSession) => void
}

/** One SSE response, fed by its connection's outbox. A class: thousands are alive at once. */
class SseSession implements Transport {
  readonly kind = "sse"
  readonly multiplexed = false
  readonly connection: StreamConnection
  private sequence = 0
  private draining = false

  constructor(
    private readonly response: ServerResponse,
    private readonly shared: Shared
  ) {
    this.connection = new StreamConnection(shared.hub, shared.config, this)
  }

  bufferedBytes(): number {
    return this.response.writableLength
  }

  ready(resume: () => void): boolean {
    const response = this.response
    if (response.destroyed || response.writableEnded) return false
    if (response.writableLength <= SSE_HIGH_WATER) return true
    if (!this.draining) {
      this.draining = true
      response.once("drain", () => {
        this.draining = false
        resume()
      })
    }
    return false
  }

  // no `event:` line: EventSource.onmessage receives every event (the JSON's event_type names it), and an error
  // event cannot be mistaken for the browser's own `error`
  write(event: Encoded): void {
    this.sequence += 1
    this.response.write(`id: ${this.sequence}\ndata: ${event.data}\n\n`)
  }

  finished(): void {
    this.response.end()
  }

  // an SSE response cannot be closed with a reason; cutting it is all there is
  overflowed(): void {
    this.shared.hub.runDetached(Effect.logInfo("slow SSE client disconnected"))
    this.response.destroy()
  }

  closing(): void {
    closingNotice(this.connection)
    this.connection.outbox.end()
  }

  terminate(): void {
    this.response.destroy()
  }
}

/** One WebSocket connection: single-stream (/ws/ticker, /ws/realtime) or multiplexed (/ws). */
class WsSession implements Transport {
  readonly kind = "ws"
  readonly connection: StreamConnection
  /** Whether the peer said anything (pong or message) since the last ping. */
  private alive = true
  private closeRequested = false
  private closeTimer: ReturnType<typeof setTimeout> | undefined
  private polling = false
  private afterDrain = STREAM_ENDED
  // inbound: size and rate are checked as messages arrive; one fiber at a time handles them, in order
  private readonly inbox: Array<string> = []
  private handling = true
  private handle: ((text: string) => Effect.Effect<void>) | undefined
  private windowStart = Date.now()
  private received = 0
  /** Which tenth of the sessions this one is pinged with. */
  readonly pingSlot: number

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    readonly multiplexed: boolean,
    private readonly shared: Shared
  ) {
    this.connection = new StreamConnection(shared.hub, shared.config, this)
    ws.on("message", (data: Buffer) => this.onMessage(data))
    ws.on("pong", () => {
      this.alive = true
    })
    ws.on("error", () => ws.terminate())
    socket.on("error", ignore)
    this.pingSlot = shared.track(this)
    ws.once("close", () => {
      clearTimeout(this.closeTimer)
      shared.untrack(this)
      this.connection.close()
    })
  }

  /** Subscribes a single-stream route, then handles what the client sent meanwhile. */
  start(subscription: Subscription | undefined): Effect.Effect<void> {
    const subscribe =
      subscription === undefined
        ? Effect.void
        : this.connection.subscribe(subscription, {
            onEnd: () => {
              this.afterDrain = UPSTREAM_FAILED
              this.connection.outbox.end()
            }
          })
    return Effect.zipRight(
      subscribe,
      Effect.suspend(() => {
        this.connection.resume()
        return this.handleAll()
      })
    )
  }

  private handleAll(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const next = this.inbox.shift()
      if (next === undefined) {
        this.handling = false
        return Effect.void
      }
      const { hub, config } = this.shared
      this.handle ??= clientMessageHandler(this.connection, this.multiplexed, hub, config)
      // a defect answering one message must not leave the inbox unhandled (the connection would stop answering)
      return Effect.zipRight(Effect.catchAllDefect(this.handle(next), this.failedMessage), this.handleAll())
    })
  }

  private readonly failedMessage = (defect: unknown): Effect.Effect<void> =>
    Effect.zipRight(
      Effect.logError("stream client message failed", { defect: String(defect) }),
      Effect.sync(() => this.connection.control.offer(errorOf("internal_error", "Internal server error")))
    )

  private onMessage(data: Buffer): void {
    this.alive = true
    if (this.closeRequested) return
    const config = this.shared.config
    if (data.byteLength > config.wsMaxMessageBytes) {
      return this.requestClose(1009, `message over ${config.wsMaxMessageBytes} bytes`)
    }
    const now = Date.now()
    if (now - this.windowStart >= 1000) {
      this.windowStart = now
      this.received = 0
    }
    this.received += 1
    if (this.received > config.wsMaxMessagesPerSecond) {
      return this.requestClose(1008, `over ${config.wsMaxMessagesPerSecond} messages per second`)
    }
    this.inbox.push(data.toString("utf8"))
    if (!this.handling) {
      this.handling = true
      this.shared.hub.runDetached(this.handleAll())
    }
  }

  /**
   * Protocol pings, from one timer for all sessions (a tenth of them at a time, like heartbeats): a peer that has
   * answered nothing (pong or message) since the previous ping is gone, however open its TCP connection looks.
   */
  ping(): void {
    if (this.ws.readyState !== this.ws.OPEN) return
    if (!this.alive) return this.ws.terminate()
    this.alive = false
    this.ws.ping()
  }

  private requestClose(code: number, reason: string): void {
    if (this.closeRequested) return
    this.closeRequested = true
    if (this.ws.readyState !== this.ws.OPEN) return
    this.ws.close(code, reason)
    this.closeTimer = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS)
    this.closeTimer.unref()
  }

  bufferedBytes(): number {
    return this.ws.bufferedAmount
  }

  ready(resume: () => void): boolean {
    if (this.ws.readyState !== this.ws.OPEN) return false
    // without compression, ws keeps nothing of its own: what waits is in the socket
    if (this.socket.writableLength <= this.shared.highWater) return true
    if (!this.polling) {
      this.polling = true
      setTimeout(() => {
        this.polling = false
        resume()
      }, WRITE_POLL_MS).unref()
    }
    return false
  }

  write(event: Encoded): void {
    // ws's own send frames each message anew; without compression its sender writes straight to the socket too,
    // so frames written here stay whole and in order with its pings and close
    event.frame ??= textFrame(event.data)
    this.socket.write(event.frame)
  }

  finished(): void {
    this.requestClose(this.afterDrain.code, this.afterDrain.reason)
  }

  overflowed(): void {
    const limit = this.shared.config.streamMaxBufferedBytes
    this.shared.hub.runDetached(Effect.logInfo("slow WebSocket client disconnected"))
    this.requestClose(1008, `slow consumer: over ${limit} bytes behind`)
  }

  closing(): void {
    this.requestClose(1001, "server shutting down")
  }

  terminate(): void {
    this.ws.terminate()
  }
}

/** The front door's two entry points into the gateway; each says whether it took the request. */
export interface StreamGateway {
  /** Takes SSE stream requests (a prefix test, no parsing, for every request). */
  readonly request: (request: IncomingMessage, response: ServerResponse) => boolean
  /** Takes WebSocket upgrades of the stream routes. */
  readonly upgrade: (request: IncomingMessage, socket: Duplex, head: Buffer) => boolean
}

/**
 * Serves admitted streams without a fiber per connection: SSE responses and WebSockets are plain Node objects fed
 * by the hub's synchronous fan-out; effects (subscribing, logs) run briefly on the hub's runtime. Each stream request
 * is first admitted (`admit`: the admission policy, the request log and metrics, the route's checks), then served
 * here or answered with the refusal.
 */
export const makeStreamGateway = (
  hub: StreamHub,
  config: AppConfig,
  admit: (request: IncomingMessage, onVerdict: (verdict: Verdict) => void) => void
): StreamGateway => {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
  const sessions = new Set<WsSession>()
  let pinger: ReturnType<typeof setInterval> | undefined
  let tracked = 0
  let pinged = 0
  const shared: Shared = {
    hub,
    config,
    highWater: Math.min(WRITE_HIGH_WATER, Math.floor(config.streamMaxBufferedBytes / 2)),
    track: (session) => {
      sessions.add(session)
      if (pinger === undefined) {
        pinger = setInterval(
          () => {
            const slot = pinged++ % PING_SLOTS
            for (const each of sessions) if (each.pingSlot === slot) each.ping()
          },
          Duration.toMillis(config.wsPingInterval) / PING_SLOTS
        )
        pinger.unref()
      }
      return tracked++ % PING_SLOTS
    },
    untrack: (session) => {
      sessions.delete(session)
      if (sessions.size > 0 || pinger === undefined) return
      clearInterval(pinger)
      pinger = undefined
    }
  }

  const cors = makeCorsPolicy(config.corsOrigins)
  const serveSse = (
    response: ServerResponse,
    subscription: Subscription,
    verdict: Verdict,
    origin: Readonly<Record<string, string>>
  ) => {
    // an admitted verdict's headers are its rate-limit state
    response.writeHead(200, { ...verdict.headers, ...SSE_HEADERS, ...origin })
    response.write(`retry: ${SSE_RETRY_MS}\n\n`)
    const { connection } = new SseSession(response, shared)
    if (response.destroyed || response.closed) connection.close()
    else response.once("close", () => connection.close())
    hub.runDetached(connection.subscribe(subscription, { onEnd: () => connection.outbox.end() }))
  }

  const serveWs = (ws: WebSocket, socket: Duplex, admission: Admission & { readonly kind: "ws" }) => {
    const session = new WsSession(ws, socket, admission.multiplexed, shared)
    hub.runDetached(session.start(admission.multiplexed ? undefined : admission.subscription))
  }

  return {
    // the platform's own upgrade would keep a fiber (and a request context) per connection for the connection's life
    upgrade: (request, socket, head) => {
      if (!WS_ROUTES.has(pathOf(request.url ?? "/"))) return false
      socket.on("error", ignore)
      admit(request, (verdict) => {
        const admission = verdict.admission
        if (verdict.status !== 101 || admission?.kind !== "ws") return refuseUpgrade(socket, verdict)
        wss.handleUpgrade(request, socket, head, (ws) => serveWs(ws, socket, admission))
      })
      return true
    },
    request: (request, response) => {
      // every request passes here: a prefix test first, the route table only for stream paths
      const url = request.url
      if (request.method !== "GET" || url === undefined || !url.startsWith(SSE_PREFIX)) return false
      const path = pathOf(url)
      if (!SSE_ROUTES.has(path)) return false
      admit(request, (verdict) => {
        const origin = cors.headers(originOf(request.rawHeaders), path)
        const admission = verdict.admission
        if (verdict.status === 200 && admission?.kind === "sse") {
          return serveSse(response, admission.subscription, verdict, origin)
        }
        response.writeHead(verdict.status, { ...verdict.headers, ...origin })
        response.end(verdict.body)
      })
      return true
    }
  }
}
