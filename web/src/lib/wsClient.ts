import { backoffDelay, type BackoffOptions, DEFAULT_BACKOFF } from "./backoff.js"
import type { Channel, ServerEvent } from "./types.js"
import type { ConnectionState } from "./streamState.js"

export interface Subscription {
  readonly channel: Channel
  readonly exchange: string
  readonly symbol: string
  readonly interval?: string
  readonly depth?: number
  readonly threshold?: number
}

/** The identity the server gives a subscription: channel, exchange, symbol and (candles) interval. */
export const subscriptionKey = (s: Subscription): string =>
  `${s.channel}|${s.exchange}|${s.symbol}|${s.channel === "ohlcv" ? (s.interval ?? "1m") : ""}`

/** Callbacks of one connection attempt. */
export interface SocketHandlers {
  readonly onOpen: () => void
  readonly onMessage: (text: string) => void
  /** Called once when the connection ends or fails to open. */
  readonly onClose: () => void
}

/** One connection as the client uses it (the page wraps the browser's WebSocket; tests pass a fake). */
export interface Socket {
  readonly isOpen: boolean
  send(text: string): void
  close(code: number, reason: string): void
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

const globalTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0])
}

export interface MuxClientOptions {
  readonly url: string
  readonly connect: (url: string, handlers: SocketHandlers) => Socket
  readonly onEvent: (event: ServerEvent) => void
  readonly onState: (state: ConnectionState, attempt: number) => void
  readonly backoff?: BackoffOptions
  readonly random?: () => number
  readonly timers?: Timers
  /** Reconnect when nothing (not even a heartbeat) arrived for this long. */
  readonly silenceMs?: number
  /** Attempts after which the page says "offline" (it keeps retrying at the longest delay). */
  readonly offlineAfter?: number
}

/** `/ws` of the page's origin, with the API key as `api_key` when there is one. */
export const streamUrl = (location: { readonly protocol: string; readonly host: string }, apiKey: string | null) =>
  `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws${
    apiKey === null ? "" : `?api_key=${encodeURIComponent(apiKey)}`
  }`

const subscribeMessage = (s: Subscription, op: "subscribe" | "unsubscribe") =>
  JSON.stringify(
    op === "subscribe"
      ? { op, ...s }
      : {
          op,
          channel: s.channel,
          exchange: s.exchange,
          symbol: s.symbol,
          ...(s.interval === undefined ? {} : { interval: s.interval })
        }
  )

/**
 * One multiplexed `/ws` connection carrying every subscription the page wants. It reconnects by itself with jittered
 * exponential backoff and resubscribes everything on each new connection.
 */
export class MuxClient {
  private socket: Socket | null = null
  private readonly wanted = new Map<string, Subscription>()
  private attempt = 0
  private retryTimer: unknown = null
  private silenceTimer: unknown = null
  private stopped = true
  private readonly timers: Timers

  constructor(private readonly options: MuxClientOptions) {
    this.timers = options.timers ?? globalTimers
  }

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.open()
  }

  stop(): void {
    this.stopped = true
    this.clearTimers()
    const socket = this.socket
    this.socket = null
    socket?.close(1000, "page closed")
  }

  /** Makes the subscriptions exactly `subscriptions`: new ones are sent, dropped ones unsubscribed. */
  setSubscriptions(subscriptions: ReadonlyArray<Subscription>): void {
    const next = new Map(subscriptions.map((s) => [subscriptionKey(s), s]))
    for (const [key, s] of this.wanted) {
      if (!next.has(key)) {
        this.wanted.delete(key)
        this.send(subscribeMessage(s, "unsubscribe"))
      }
    }
    for (const [key, s] of next) {
      const held = this.wanted.get(key)
      if (held !== undefined && JSON.stringify(held) === JSON.stringify(s)) continue
      this.wanted.set(key, s)
      this.send(subscribeMessage(s, "subscribe"))
    }
  }

  get subscriptions(): ReadonlyArray<Subscription> {
    return [...this.wanted.values()]
  }

  private send(text: string): void {
    if (this.socket !== null && this.socket.isOpen) this.socket.send(text)
  }

  private clearTimers(): void {
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer)
    if (this.silenceTimer !== null) this.timers.clearTimeout(this.silenceTimer)
    this.retryTimer = null
    this.silenceTimer = null
  }

  private armSilence(): void {
    if (this.silenceTimer !== null) this.timers.clearTimeout(this.silenceTimer)
    this.silenceTimer = this.timers.setTimeout(() => {
      this.silenceTimer = null
      // a half-open connection: drop it and dial again
      const socket = this.socket
      this.socket = null
      socket?.close(4000, "silent")
      this.lost()
    }, this.options.silenceMs ?? 45_000)
  }

  private open(): void {
    this.options.onState(this.attempt === 0 ? "connecting" : this.stateWhileRetrying(), this.attempt)
    // handlers of an attempt that is no longer current do nothing
    let socket: Socket | null = null
    const current = () => socket !== null && this.socket === socket
    try {
      socket = this.options.connect(this.options.url, {
        onOpen: () => {
          if (!current() || socket === null) return
          this.attempt = 0
          this.options.onState("live", 0)
          for (const s of this.wanted.values()) socket.send(subscribeMessage(s, "subscribe"))
          this.armSilence()
        },
        onMessage: (text) => {
          if (!current()) return
          this.armSilence()
          let event: ServerEvent
          try {
            event = JSON.parse(text) as ServerEvent
          } catch {
            return
          }
          this.options.onEvent(event)
        },
        onClose: () => {
          if (current()) this.lost()
        }
      })
    } catch {
      this.lost()
      return
    }
    this.socket = socket
  }

  private stateWhileRetrying(): ConnectionState {
    return this.attempt > (this.options.offlineAfter ?? 5) ? "offline" : "reconnecting"
  }

  private lost(): void {
    this.socket = null
    this.clearTimers()
    if (this.stopped) return
    this.attempt += 1
    this.options.onState(this.stateWhileRetrying(), this.attempt)
    const delay = backoffDelay(this.attempt, this.options.backoff ?? DEFAULT_BACKOFF, this.options.random)
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null
      this.open()
    }, delay)
  }
}
