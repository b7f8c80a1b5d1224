import { Option } from "effect"
import { describe, expect, it } from "vitest"
import { type Encoded, makeOutbox, type Outbox } from "../../src/Streams/Outbox.js"

interface Ev {
  readonly kind: string
  readonly n: number
  readonly size?: number
  readonly dropped?: number
}

const encode = (e: Ev): Encoded => ({ event: e.kind, data: JSON.stringify(e) })

const parse = (e: Encoded | undefined) => (e === undefined ? undefined : (JSON.parse(e.data) as Ev))

const drain = (outbox: Outbox) => {
  outbox.end()
  const out: Array<Ev> = []
  for (let next = outbox.next(); next !== undefined; next = outbox.next()) out.push(JSON.parse(next.data) as Ev)
  return out
}

const outboxOf = (maxBytes = 1_000_000, transportBytes = () => 0) => {
  const calls = { ready: 0, overflow: 0 }
  const outbox = makeOutbox({
    maxBytes,
    transportBytes,
    onReady: () => {
      calls.ready += 1
    },
    onOverflow: () => {
      calls.overflow += 1
    }
  })
  return { outbox, calls }
}

describe("Outbox", () => {
  it("latest lanes conflate: a slow reader gets the newest event only", () => {
    const { outbox } = outboxOf()
    const ticker = outbox.lane<Ev>({ mode: "latest", encode })
    for (let n = 1; n <= 1000; n++) ticker.offer({ kind: "ticker", n })
    expect(outbox.stats()).toMatchObject({ pendingEvents: 1, conflated: 999, dropped: 0 })
    expect(drain(outbox)).toEqual([{ kind: "ticker", n: 1000 }])
  })

  it("queue lanes drop the oldest beyond their capacity and tell the next event how many went", () => {
    const { outbox } = outboxOf()
    const trades = outbox.lane<Ev>({
      mode: "queue",
      capacity: 3,
      encode,
      weight: (e) => e.size ?? 1,
      withDropped: (e, dropped) => ({ ...e, dropped })
    })
    for (let n = 1; n <= 6; n++) trades.offer({ kind: "trades", n, size: 2 })
    expect(outbox.stats()).toMatchObject({ pendingEvents: 3, dropped: 6 })
    expect(drain(outbox)).toEqual([
      { kind: "trades", n: 4, size: 2, dropped: 6 },
      { kind: "trades", n: 5, size: 2 },
      { kind: "trades", n: 6, size: 2 }
    ])
  })

  it("events leave in arrival order across lanes; a replacement keeps its place", () => {
    const { outbox } = outboxOf()
    const a = outbox.lane<Ev>({ mode: "latest", encode })
    const b = outbox.lane<Ev>({ mode: "queue", capacity: 10, encode })
    const c = outbox.lane<Ev>({ mode: "queue", capacity: 10, encode, sameSlot: (x, y) => x.size === y.size })
    a.offer({ kind: "a", n: 1 })
    b.offer({ kind: "b", n: 2 })
    c.offer({ kind: "c", n: 3, size: 1 })
    a.offer({ kind: "a", n: 4 })
    b.offer({ kind: "b", n: 5 })
    c.offer({ kind: "c", n: 6, size: 1 })
    c.offer({ kind: "c", n: 7, size: 2 })
    expect(drain(outbox).map((e) => `${e.kind}${e.n}`)).toEqual(["a4", "b2", "c6", "b5", "c7"])
  })

  it("deliver decides at sending time, against what was really sent, and may rewrite or skip", () => {
    const { outbox } = outboxOf()
    let lastSent = 0
    const lane = outbox.lane<Ev>({
      mode: "latest",
      encode,
      deliver: (e) => {
        if (e.n - lastSent < 10) return Option.none()
        const change = e.n - lastSent
        lastSent = e.n
        return Option.some({ ...e, size: change })
      }
    })
    lane.offer({ kind: "t", n: 10 })
    const first = parse(outbox.next())
    lane.offer({ kind: "t", n: 25 })
    const second = parse(outbox.next())
    // 40 was measured upstream against 25; conflated behind it, 33 is only 8 from the 25 actually sent
    lane.offer({ kind: "t", n: 40 })
    lane.offer({ kind: "t", n: 33 })
    expect(first).toEqual({ kind: "t", n: 10, size: 10 })
    expect(second).toEqual({ kind: "t", n: 25, size: 15 })
    expect(drain(outbox)).toEqual([])
  })

  it("tells the connection when an event is ready; after end it takes no more and is done once emptied", () => {
    const { outbox, calls } = outboxOf()
    const lane = outbox.lane<Ev>({ mode: "queue", capacity: 10, encode })
    expect(outbox.next()).toBeUndefined()
    lane.offer({ kind: "x", n: 1 })
    expect(calls.ready).toBe(1)
    expect(parse(outbox.next())).toEqual({ kind: "x", n: 1 })
    lane.offer({ kind: "x", n: 2 })
    outbox.end()
    expect(calls.ready).toBe(3)
    lane.offer({ kind: "x", n: 3 })
    expect(calls.ready).toBe(3)
    expect(outbox.done()).toBe(false)
    expect(parse(outbox.next())).toEqual({ kind: "x", n: 2 })
    expect(outbox.next()).toBeUndefined()
    expect(outbox.done()).toBe(true)
  })

  it("a closed lane's pending events are dropped", () => {
    const { outbox } = outboxOf()
    const a = outbox.lane<Ev>({ mode: "queue", capacity: 10, encode })
    const b = outbox.lane<Ev>({ mode: "queue", capacity: 10, encode })
    a.offer({ kind: "a", n: 1 })
    b.offer({ kind: "b", n: 2 })
    a.close()
    a.offer({ kind: "a", n: 3 })
    expect(drain(outbox)).toEqual([{ kind: "b", n: 2 }])
    expect(outbox.stats().pendingBytes).toBe(0)
  })

  it("past the byte cap (pending plus socket-buffered bytes) it overflows and stops", () => {
    let socketBytes = 0
    const { outbox, calls } = outboxOf(1000, () => socketBytes)
    const lane = outbox.lane<Ev>({ mode: "queue", capacity: 1000, encode })
    for (let n = 0; n < 20; n++) lane.offer({ kind: "trades", n })
    expect(calls.overflow).toBe(0)
    const { pendingBytes } = outbox.stats()
    expect(pendingBytes).toBeGreaterThan(400)
    socketBytes = 1000 - pendingBytes
    lane.offer({ kind: "trades", n: 20 })
    expect(calls.overflow).toBe(1)
    expect(outbox.stats()).toMatchObject({ pendingEvents: 0, pendingBytes: 0 })
    expect(outbox.next()).toBeUndefined()
    expect(outbox.done()).toBe(true)
    lane.offer({ kind: "trades", n: 21 })
    expect(outbox.stats().pendingEvents).toBe(0)
  })

  it("a client that keeps up gets its event written at once; otherwise it waits, in order, behind what is pending", () => {
    const written: Array<Ev> = []
    let socketTakes = true
    const calls = { ready: 0 }
    const outbox = makeOutbox({
      maxBytes: 1_000_000,
      transportBytes: () => 0,
      onReady: () => {
        calls.ready += 1
      },
      onOverflow: () => undefined,
      canWriteNow: () => socketTakes,
      write: (e) => {
        written.push(JSON.parse(e.data) as Ev)
      }
    })
    let lastSent = 0
    const ticker = outbox.lane<Ev>({
      mode: "latest",
      encode,
      deliver: (e) => {
        if (e.n - lastSent < 10) return Option.none()
        lastSent = e.n
        return Option.some(e)
      }
    })
    const trades = outbox.lane<Ev>({ mode: "queue", capacity: 10, encode })
    ticker.offer({ kind: "t", n: 10 })
    // deliver still decides on the direct path: 15 is within 10 of the 10 sent
    ticker.offer({ kind: "t", n: 15 })
    trades.offer({ kind: "x", n: 1 })
    expect(written).toEqual([
      { kind: "t", n: 10 },
      { kind: "x", n: 1 }
    ])
    expect(calls.ready).toBe(0)
    expect(outbox.stats().pendingEvents).toBe(0)

    socketTakes = false
    trades.offer({ kind: "x", n: 2 })
    expect(calls.ready).toBe(1)
    socketTakes = true
    // something is pending: this one queues behind it instead of overtaking
    ticker.offer({ kind: "t", n: 30 })
    expect(written).toHaveLength(2)
    expect(drain(outbox)).toEqual([
      { kind: "x", n: 2 },
      { kind: "t", n: 30 }
    ])
  })
})
