import { describe, expect } from "@effect/vitest"
import { Effect, Exit, Fiber, Schedule, Scope, Stream, SubscriptionRef } from "effect"
import type { ClusterEvent } from "../../src/Cluster/Bus.js"
import type { ClusterMode } from "../../src/Cluster/Connection.js"
import { leaseKeys } from "../../src/Cluster/Lease.js"
import { makeClusterUpstreams } from "../../src/Cluster/Upstreams.js"
import { clusterTest, connect, cuttableLink, eventually, forEachName } from "./support.js"

const MARKET = "binance trades BTC/USDT "
const FAST = { leaseTtlMs: 900, renewEveryMs: 300, idleGraceMs: 500 }

/** Which instances run the upstream now, and which ever started it. */
interface Probe {
  readonly starts: Array<string>
  readonly running: Set<string>
}

/** A fake upstream: the ticker snapshot first, then a trade every 30 ms numbered from 1. */
const source = (name: string, probe: Probe): Stream.Stream<ClusterEvent> =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      probe.starts.push(name)
      probe.running.add(name)
      yield* Effect.addFinalizer(() => Effect.sync(() => probe.running.delete(name)))
      return Stream.concat(
        Stream.make<Array<ClusterEvent>>({ kind: "ticker", payload: { by: name, n: 0 }, snapshot: true }),
        Stream.iterate(1, (n) => n + 1).pipe(
          Stream.schedule(Schedule.spaced(30)),
          Stream.map((n): ClusterEvent => ({ kind: "trade", payload: { by: name, n } }))
        )
      )
    })
  )

interface Received {
  readonly events: Array<ClusterEvent>
}

const trades = (r: Received) =>
  r.events.flatMap((e) => {
    if (e.kind !== "trade" || typeof e.payload !== "object" || e.payload === null) return []
    const { by, n } = e.payload as { by: string; n: number }
    return [{ by, n }]
  })

const statuses = (r: Received) =>
  r.events.flatMap((e) => (e.kind === "status" ? [(e.payload as { status: string }).status] : []))

const reasons = (r: Received) =>
  r.events.flatMap((e) => (e.kind === "status" ? [(e.payload as { reason: string }).reason] : []))

/** One simulated server: its own Redis connections (through `url`), ClusterUpstreams and one consumer of MARKET. */
const instance = (url: string, name: string, probe: Probe, settings = FAST) =>
  Effect.gen(function* () {
    const conn = yield* connect(url, name)
    const upstreams = yield* makeClusterUpstreams(conn, settings)
    const received: Received = { events: [] }
    const consumer = yield* Effect.forkScoped(
      Stream.runForEach(upstreams.attach(MARKET, source(name, probe)), (e) =>
        Effect.sync(() => received.events.push(e))
      )
    )
    // attached (and so contending) before the next instance starts: the first one owns the market
    yield* Effect.repeat(upstreams.stats, { until: (s) => s.markets.length > 0, schedule: Schedule.spaced(5) })
    yield* Effect.sleep(50)
    return { name, conn, upstreams, received, consumer }
  })

/** A probe for instances that are yet to start. */
const newProbe = (): Probe => ({ starts: [], running: new Set() })

/** One instance per name on `url`, started in order: the first owns the market. */
const instances = <const Names extends ReadonlyArray<string>>(url: string, probe: Probe, names: Names) =>
  forEachName(names, (name) => instance(url, name, probe))

/** Each consecutive pair of trades from one owner is numbered n, n + 1: no event was lost. */
const contiguous = (list: ReadonlyArray<{ by: string; n: number }>) =>
  list.every((t, i) => i === 0 || t.by !== list[i - 1]?.by || t.n === (list[i - 1]?.n ?? 0) + 1)

describe("ClusterUpstreams: one upstream per market for the cluster (real redis-server)", () => {
  clusterTest(
    "three instances on one market: exactly one runs the upstream, all get every event, late joiners get the snapshot at once",
    ({ redis }) =>
      Effect.gen(function* () {
        const probe = newProbe()
        const [a, b, c] = yield* instances(redis.url, probe, ["a", "b", "c"])
        yield* eventually(() => [a, b, c].every((i) => trades(i.received).length >= 20), 10_000, "20 trades each")
        expect(probe.starts).toEqual(["a"])
        expect([...probe.running]).toEqual(["a"])
        for (const i of [a, b, c]) {
          const list = trades(i.received)
          expect(list.every((t) => t.by === "a")).toBe(true)
          expect(contiguous(list)).toBe(true)
          expect(statuses(i.received)).toEqual([])
        }
        // from the moment each joined, b and c saw exactly a's events in a's order (a owns and is served by the channel)
        const seenByA = trades(a.received).map((t) => t.n)
        for (const i of [b, c]) {
          const seen = trades(i.received).map((t) => t.n)
          const from = seenByA.indexOf(seen[0] ?? -1)
          expect(from).toBeGreaterThanOrEqual(0)
          const common = Math.min(seen.length, seenByA.length - from)
          expect(common).toBeGreaterThanOrEqual(15)
          expect(seen.slice(0, common)).toEqual(seenByA.slice(from, from + common))
        }

        // late joiners: another consumer on b (this instance's state) and a fresh instance d (Redis's snapshot)
        const late: Received = { events: [] }
        yield* Effect.forkScoped(
          Stream.runForEach(b.upstreams.attach(MARKET, source("b2", probe)), (e) =>
            Effect.sync(() => late.events.push(e))
          )
        )
        const d = yield* instance(redis.url, "d", probe)
        yield* eventually(
          () => late.events.length > 0 && d.received.events.length > 0,
          2_000,
          "late joiners' first event"
        )
        expect(late.events[0]).toEqual({ kind: "ticker", payload: { by: "a", n: 0 }, snapshot: true })
        expect(d.received.events[0]).toEqual({ kind: "ticker", payload: { by: "a", n: 0 }, snapshot: true })
        expect(probe.starts).toEqual(["a"])
        const stats = yield* b.upstreams.stats
        expect(stats).toEqual({
          mode: "cluster",
          instanceId: "b",
          markets: [{ market: MARKET, role: "follower", subscribers: 2 }]
        })
        expect((yield* a.upstreams.stats).markets).toEqual([{ market: MARKET, role: "owner", subscribers: 1 }])
      })
  )

  clusterTest(
    "the owner is cut off from Redis: another instance takes over within the TTL and a period, followers see reconnecting then live",
    ({ redis }) =>
      Effect.gen(function* () {
        const probe = newProbe()
        const linkA = yield* cuttableLink(redis.port)
        const a = yield* instance(linkA.url, "a", probe)
        const [b, c] = yield* instances(redis.url, probe, ["b", "c"])
        yield* eventually(() => trades(c.received).length >= 5, 5_000, "c follows a")
        expect(probe.starts).toEqual(["a"])

        const cutAt = Date.now()
        linkA.cut()
        yield* eventually(() => probe.starts.length === 2, 5_000, "a takeover")
        const takeoverMs = Date.now() - cutAt
        expect(takeoverMs).toBeLessThan(FAST.leaseTtlMs + FAST.renewEveryMs + 1_500)
        const next = probe.starts[1] ?? ""
        expect(["b", "c"]).toContain(next)
        const follower = next === "b" ? c : b
        yield* eventually(() => trades(follower.received).some((t) => t.by === next), 3_000, "events of the new owner")
        expect(statuses(follower.received)).toEqual(["reconnecting", "live"])
        expect(reasons(follower.received)).toEqual(["owner_changed", "recovered"])
        const afterTakeover = trades(follower.received).filter((t) => t.by === next)
        expect(afterTakeover[0]?.n).toBe(1)
        // a, cut off, serves its own subscriber from its own upstream (local mode), without interruption
        expect(yield* SubscriptionRef.get(a.conn.mode)).toBe("local")
        const aTrades = trades(a.received).length
        yield* eventually(() => trades(a.received).length > aTrades + 5, 2_000, "a's local upstream")

        // back on the network: a finds b or c owning the market and stops its upstream
        linkA.restore()
        yield* eventually(() => probe.running.size === 1 && probe.running.has(next), 5_000, "one upstream again")
        const before = trades(a.received).length
        yield* eventually(
          () =>
            trades(a.received)
              .slice(before)
              .some((t) => t.by === next),
          3_000,
          "a follows"
        )
        expect(probe.starts).toEqual(["a", next])
      }),
    40_000
  )

  clusterTest("an owner whose lease is taken stops publishing within one renewal period", ({ redis, raw }) =>
    Effect.gen(function* () {
      const probe = newProbe()
      const [a, b] = yield* instances(redis.url, probe, ["a", "b"])
      yield* eventually(() => trades(b.received).length >= 5, 5_000, "b follows a")
      const keys = leaseKeys(a.conn, MARKET)
      const heard: Array<{ from: string; at: number }> = []
      const spy = raw.duplicate()
      yield* Effect.addFinalizer(() => Effect.sync(() => spy.disconnect()))
      yield* Effect.promise(() => spy.subscribe(keys.channel))
      spy.on("message", (_channel: string, message: string) => {
        const envelope = JSON.parse(message) as { from: string }
        heard.push({ from: envelope.from, at: Date.now() })
      })

      // as if a's lease had expired and an intruder had taken it: a's next renewal finds another token
      const stolenAt = Date.now()
      yield* Effect.promise(() => raw.set(keys.lease, "intruder#1", "PX", 1_500))
      yield* eventually(() => !probe.running.has("a"), 3_000, "a stops")
      yield* Effect.sleep(200)
      const lastFromA = Math.max(...heard.filter((h) => h.from === "a").map((h) => h.at))
      expect(lastFromA - stolenAt).toBeLessThan(FAST.renewEveryMs + 150)
      // once the intruder's lease expires, a or b owns the market again: one upstream
      yield* eventually(() => probe.running.size === 1, 5_000, "a new owner")
      yield* Effect.sleep(2 * FAST.renewEveryMs)
      expect(probe.running.size).toBe(1)
    })
  )

  clusterTest("graceful shutdown hands the market over at once", ({ redis, raw }) =>
    Effect.gen(function* () {
      const probe = newProbe()
      const slow = { leaseTtlMs: 6_000, renewEveryMs: 2_000, idleGraceMs: 300 }
      const scopeA = yield* Scope.make()
      const a = yield* instance(redis.url, "a", probe, slow).pipe(Scope.extend(scopeA))
      const b = yield* instance(redis.url, "b", probe, slow)
      yield* eventually(() => trades(b.received).length >= 3, 5_000, "b follows a")
      expect(probe.starts).toEqual(["a"])
      const closedAt = Date.now()
      yield* Scope.close(scopeA, Exit.void)
      yield* eventually(() => probe.starts.length === 2, 5_000, "b takes over")
      // far sooner than the 6 s the lease would have taken to expire
      expect(Date.now() - closedAt).toBeLessThan(2_000)
      expect(probe.starts).toEqual(["a", "b"])
      expect(a.received.events[0]).toEqual({ kind: "ticker", payload: { by: "a", n: 0 }, snapshot: true })
      yield* eventually(() => statuses(b.received).join() === "reconnecting,live", 2_000, "b's status events")
      const key = leaseKeys(b.conn, MARKET).lease
      expect(yield* Effect.promise(() => raw.get(key))).toMatch(/^b#/)
    })
  )

  clusterTest(
    "an owner without subscribers keeps the upstream while another instance has some, and releases it after the idle grace",
    ({ redis, raw }) =>
      Effect.gen(function* () {
        const probe = newProbe()
        const [a, b] = yield* instances(redis.url, probe, ["a", "b"])
        yield* eventually(() => trades(b.received).length >= 3, 5_000, "b follows a")
        const key = leaseKeys(a.conn, MARKET).lease

        yield* Fiber.interrupt(a.consumer)
        yield* Effect.sleep(FAST.idleGraceMs + 3 * FAST.renewEveryMs)
        expect(probe.starts).toEqual(["a"])
        expect([...probe.running]).toEqual(["a"])
        expect((yield* a.upstreams.stats).markets).toEqual([{ market: MARKET, role: "owner", subscribers: 0 }])
        const count = trades(b.received).length
        yield* eventually(() => trades(b.received).length > count + 3, 2_000, "b still served")

        yield* Fiber.interrupt(b.consumer)
        yield* eventually(() => probe.running.size === 0, FAST.idleGraceMs + 5 * FAST.renewEveryMs, "upstream released")
        expect(yield* Effect.promise(() => raw.exists(key))).toBe(0)
        expect(probe.starts).toEqual(["a"])
        expect((yield* a.upstreams.stats).markets).toEqual([])
        expect((yield* b.upstreams.stats).markets).toEqual([])
      })
  )

  clusterTest(
    "Redis killed and restarted: every instance runs its own upstream (local mode), then one owner again",
    ({ redis }) =>
      Effect.gen(function* () {
        const probe = newProbe()
        const [a, b, c] = yield* instances(redis.url, probe, ["a", "b", "c"])
        const modes: Array<ClusterMode> = []
        yield* Effect.forkScoped(Stream.runForEach(b.conn.mode.changes, (m) => Effect.sync(() => modes.push(m))))
        yield* eventually(() => trades(c.received).length >= 3, 5_000, "c follows")
        expect(probe.running.size).toBe(1)

        yield* Effect.promise(() => redis.kill())
        yield* eventually(() => probe.running.size === 3, 5_000, "three local upstreams")
        const counts = [a, b, c].map((i) => trades(i.received).length)
        yield* eventually(
          () => [a, b, c].every((i, k) => trades(i.received).length > (counts[k] ?? 0) + 5),
          3_000,
          "events while redis is down"
        )

        yield* Effect.promise(() => redis.restart())
        yield* eventually(() => probe.running.size === 1, 8_000, "one owner after redis returns")
        const owner = [...probe.running][0] ?? ""
        const after = [a, b, c].map((i) => trades(i.received).length)
        yield* eventually(
          () =>
            [a, b, c].every((i, k) =>
              trades(i.received)
                .slice(after[k])
                .some((t) => t.by === owner)
            ),
          3_000,
          "every instance follows the owner"
        )
        expect(modes).toEqual(["cluster", "local", "cluster"])
        // told at the outage, and again by the instances that switch from their own upstream to the owner's channel
        for (const i of [a, b, c]) {
          expect(statuses(i.received)).toEqual(
            i.name === owner ? ["reconnecting", "live"] : ["reconnecting", "live", "reconnecting", "live"]
          )
        }
        for (const i of [a, b, c]) expect(yield* SubscriptionRef.get(i.conn.mode)).toBe("cluster")
      }),
    40_000
  )
})
