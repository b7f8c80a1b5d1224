import { describe, expect, it } from "vitest"
import type { ConnectionState } from "../../web/src/lib/streamState.js"
import type { ServerEvent } from "../../web/src/lib/types.js"
import {
  MuxClient,
  type Socket,
  type SocketHandlers,
  streamUrl,
  type Subscription,
  subscriptionKey,
  type Timers
} from "../../web/src/lib/wsClient.js"

class FakeSocket implements Socket {
  isOpen = false
  closed: { code: number; reason: string } | null = null
  readonly sent: Array<unknown> = []
  constructor(
    readonly url: string,
    readonly handlers: SocketHandlers
  ) {}
  send(text: string) {
    this.sent.push(JSON.parse(text))
  }
  close(code: number, reason: string) {
    this.closed = { code, reason }
    this.isOpen = false
  }
  // the server side
  accept() {
    this.isOpen = true
    this.handlers.onOpen()
  }
  push(event: unknown) {
    this.handlers.onMessage(typeof event === "string" ? event : JSON.stringify(event))
  }
  drop() {
    this.isOpen = false
    this.handlers.onClose()
  }
}

/** Timers driven by hand: `due` lists pending delays; `fire` runs the earliest. */
class ManualTimers implements Timers {
  private next = 0
  readonly pending = new Map<number, { fn: () => void; ms: number }>()
  setTimeout(fn: () => void, ms: number) {
    const id = ++this.next
    this.pending.set(id, { fn, ms })
    return id
  }
  clearTimeout(handle: unknown) {
    this.pending.delete(handle as number)
  }
  due(): ReadonlyArray<number> {
    return [...this.pending.values()].map((t) => t.ms).sort((a, b) => a - b)
  }
  fire(ms: number) {
    const entry = [...this.pending.entries()].find(([, t]) => t.ms === ms)
    if (entry === undefined) throw new Error(`no timer of ${ms} ms; pending ${this.due().join(", ")}`)
    this.pending.delete(entry[0])
    entry[1].fn()
  }
}

const setup = (options: { offlineAfter?: number } = {}) => {
  const sockets: Array<FakeSocket> = []
  const states: Array<[ConnectionState, number]> = []
  const events: Array<ServerEvent> = []
  const timers = new ManualTimers()
  const client = new MuxClient({
    url: "ws://localhost:8000/ws",
    connect: (url, handlers) => {
      const socket = new FakeSocket(url, handlers)
      sockets.push(socket)
      return socket
    },
    onEvent: (e) => events.push(e),
    onState: (s, attempt) => states.push([s, attempt]),
    timers,
    // the top of the jitter: delays are the plain exponential steps
    random: () => 0.999999,
    backoff: { initialMs: 500, maxMs: 4000, multiplier: 2 },
    silenceMs: 45_000,
    ...options
  })
  const last = () => sockets[sockets.length - 1] as FakeSocket
  return { client, sockets, states, events, timers, last }
}

const ticker: Subscription = { channel: "ticker", exchange: "kraken", symbol: "BTC/USD", threshold: 0 }
const candles: Subscription = { channel: "ohlcv", exchange: "kraken", symbol: "BTC/USD", interval: "5m" }

describe("multiplexed WebSocket client", () => {
  it("subscribes everything wanted once the connection opens, and passes events on", () => {
    const { client, last, states, events } = setup()
    client.setSubscriptions([ticker, candles])
    client.start()
    expect(states).toEqual([["connecting", 0]])
    expect(last().sent).toEqual([])
    last().accept()
    expect(states).toEqual([
      ["connecting", 0],
      ["live", 0]
    ])
    expect(last().sent).toEqual([
      { op: "subscribe", ...ticker },
      { op: "subscribe", ...candles }
    ])
    last().push({ event_type: "heartbeat", timestamp: 1 })
    last().push("not json")
    expect(events).toEqual([{ event_type: "heartbeat", timestamp: 1 }])
  })

  it("sends only the difference when the wanted subscriptions change", () => {
    const { client, last } = setup()
    client.start()
    last().accept()
    client.setSubscriptions([ticker, candles])
    client.setSubscriptions([ticker, { ...candles, interval: "1h" }])
    // same subscription again: nothing sent
    client.setSubscriptions([ticker, { ...candles, interval: "1h" }])
    expect(last().sent).toEqual([
      { op: "subscribe", ...ticker },
      { op: "subscribe", ...candles },
      { op: "unsubscribe", channel: "ohlcv", exchange: "kraken", symbol: "BTC/USD", interval: "5m" },
      { op: "subscribe", ...candles, interval: "1h" }
    ])
    expect(client.subscriptions).toEqual([ticker, { ...candles, interval: "1h" }])
  })

  it("reconnects with exponential backoff and resubscribes on each new connection", () => {
    const { client, sockets, last, states, timers } = setup()
    client.setSubscriptions([ticker])
    client.start()
    last().accept()
    last().drop()
    expect(states.at(-1)).toEqual(["reconnecting", 1])
    expect(timers.due()).toEqual([500])
    timers.fire(500)
    expect(sockets).toHaveLength(2)
    // the attempt fails before opening: the next wait doubles
    last().drop()
    expect(timers.due()).toEqual([1000])
    timers.fire(1000)
    last().drop()
    timers.fire(2000)
    last().drop()
    timers.fire(4000)
    last().drop()
    // capped
    expect(timers.due()).toEqual([4000])
    timers.fire(4000)
    last().accept()
    expect(states.at(-1)).toEqual(["live", 0])
    expect(last().sent).toEqual([{ op: "subscribe", ...ticker }])
    // after a success the backoff starts over
    last().drop()
    expect(timers.due()).toEqual([500])
  })

  it("says offline after several failed attempts and keeps trying", () => {
    const { client, last, states, timers } = setup({ offlineAfter: 2 })
    client.start()
    last().drop()
    timers.fire(500)
    last().drop()
    expect(states.at(-1)).toEqual(["reconnecting", 2])
    timers.fire(1000)
    last().drop()
    expect(states.at(-1)).toEqual(["offline", 3])
    timers.fire(2000)
    last().accept()
    expect(states.at(-1)).toEqual(["live", 0])
  })

  it("drops a connection that went silent and dials again", () => {
    const { client, sockets, last, timers } = setup()
    client.start()
    last().accept()
    const first = last()
    expect(timers.due()).toEqual([45_000])
    first.push({ event_type: "heartbeat", timestamp: 1 })
    // a message re-arms the watchdog rather than adding one
    expect(timers.due()).toEqual([45_000])
    timers.fire(45_000)
    expect(first.closed).toEqual({ code: 4000, reason: "silent" })
    timers.fire(500)
    expect(sockets).toHaveLength(2)
  })

  it("ignores a replaced connection's late events and stops for good", () => {
    const { client, sockets, last, events, timers } = setup()
    client.start()
    last().accept()
    const old = last()
    old.drop()
    timers.fire(500)
    old.push({ event_type: "heartbeat", timestamp: 1 })
    old.drop()
    expect(events).toEqual([])
    expect(sockets).toHaveLength(2)
    client.stop()
    expect(last().closed).toEqual({ code: 1000, reason: "page closed" })
    expect(timers.due()).toEqual([])
  })

  it("addresses /ws of the page's origin, with the API key as a query parameter", () => {
    expect(streamUrl({ protocol: "http:", host: "localhost:8000" }, null)).toBe("ws://localhost:8000/ws")
    expect(streamUrl({ protocol: "https:", host: "example.com" }, "k 1/+")).toBe(
      "wss://example.com/ws?api_key=k%201%2F%2B"
    )
  })

  it("identifies subscriptions the way the server does (interval only for candles)", () => {
    expect(subscriptionKey(ticker)).toBe("ticker|kraken|BTC/USD|")
    expect(subscriptionKey({ ...ticker, threshold: 0.5 })).toBe(subscriptionKey(ticker))
    expect(subscriptionKey({ channel: "ohlcv", exchange: "kraken", symbol: "BTC/USD" })).toBe("ohlcv|kraken|BTC/USD|1m")
  })
})
