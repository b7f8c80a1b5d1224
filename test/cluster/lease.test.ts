import { describe, expect } from "@effect/vitest"
import { Effect, Fiber, Option } from "effect"
import { makeBus } from "../../src/Cluster/Bus.js"
import { leaseKeys, makeLease } from "../../src/Cluster/Lease.js"
import { makePresence } from "../../src/Cluster/Presence.js"
import { clusterTest, connectEach, eventually, PREFIX } from "./support.js"

const MARKET = "binance ticker BTC/USDT "

describe("cluster lease, presence and bus (real redis-server)", () => {
  clusterTest("acquire, renew, lose, release and hand over", ({ redis, raw }) =>
    Effect.gen(function* () {
      const [a, b] = yield* connectEach(redis.url, ["instance-a", "instance-b"])
      const leaseA = makeLease(a, MARKET, 1_000)
      const leaseB = makeLease(b, MARKET, 1_000)
      const key = leaseKeys(a, MARKET).lease

      expect(yield* leaseA.acquire).toEqual(Option.some(""))
      expect(yield* Effect.promise(() => raw.get(key))).toBe(leaseA.token)
      const ttl = yield* Effect.promise(() => raw.pttl(key))
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(1_000)
      expect(yield* leaseB.acquire).toEqual(Option.none())
      expect(yield* leaseA.renew).toBe(true)
      expect(yield* leaseB.renew).toBe(false)
      expect(yield* leaseB.release).toBe(false)
      expect(yield* Effect.promise(() => raw.get(key))).toBe(leaseA.token)

      // released: B takes it and learns who held the market before
      const released: Array<string> = []
      yield* makeBus(b, MARKET, 30_000).listen((e) => released.push(`${e.t}:${e.from}`))
      expect(yield* leaseA.release).toBe(true)
      expect(yield* Effect.promise(() => raw.exists(key))).toBe(0)
      yield* eventually(() => released.length === 1, 2_000, "release message")
      expect(released).toEqual(["release:instance-a"])
      expect(yield* leaseB.acquire).toEqual(Option.some("instance-a"))

      // another token in the key (B's expired and C took it): B's renewal reports the loss
      yield* Effect.promise(() => raw.set(key, "instance-c#1", "PX", 5_000))
      expect(yield* leaseB.renew).toBe(false)
      expect(yield* leaseB.holder).toEqual(Option.some("instance-c#1"))

      // expiry: nobody renews, the key goes after its TTL and A can take it again
      yield* Effect.promise(() => raw.set(key, "instance-c#1", "PX", 150))
      yield* Effect.sleep(300)
      expect(yield* leaseA.acquire).toEqual(Option.some("instance-b"))
    })
  )

  clusterTest("presence lists instances with a heartbeat younger than the TTL", ({ redis }) =>
    Effect.gen(function* () {
      const [a, b] = yield* connectEach(redis.url, ["instance-a", "instance-b"])
      const presenceA = makePresence(a, MARKET, 400)
      const presenceB = makePresence(b, MARKET, 400)
      expect(yield* presenceA.present).toEqual([])
      yield* presenceA.beat
      yield* presenceB.beat
      expect([...(yield* presenceA.present)].sort()).toEqual(["instance-a", "instance-b"])
      yield* presenceB.leave
      expect(yield* presenceA.present).toEqual(["instance-a"])
      yield* Effect.sleep(600)
      expect(yield* presenceB.present).toEqual([])
    })
  )

  clusterTest(
    "bus: each event once on the channel, snapshots kept per kind for late joiners, channel refcounted",
    ({ redis, raw }) =>
      Effect.gen(function* () {
        const [a, b] = yield* connectEach(redis.url, ["instance-a", "instance-b"])
        const busA = makeBus(a, MARKET, 30_000)
        const busB = makeBus(b, MARKET, 30_000)
        const seen: Array<unknown> = []
        const second: Array<unknown> = []
        const listener = yield* Effect.fork(
          Effect.scoped(
            Effect.zipRight(
              busB.listen((e) => second.push(e.t)),
              Effect.never
            )
          )
        )
        yield* busB.listen((e) => seen.push(e.t === "event" ? [e.from, e.kind, e.payload, e.snapshot === true] : e.t))
        expect(yield* Effect.promise(() => raw.pubsub("NUMSUB", busA.channel))).toEqual([busA.channel, 1])

        yield* busA.publish({ kind: "ticker", payload: { last: 1 }, snapshot: true })
        yield* busA.publish({ kind: "trade", payload: { price: 2 } })
        yield* busA.publish({ kind: "ticker", payload: { last: 3 }, snapshot: true })
        yield* busA.publish({ kind: "book", payload: { bids: [[1, 1]] }, snapshot: true })
        yield* eventually(() => seen.length === 4, 2_000, "four events")
        expect(seen).toEqual([
          ["instance-a", "ticker", { last: 1 }, true],
          ["instance-a", "trade", { price: 2 }, false],
          ["instance-a", "ticker", { last: 3 }, true],
          ["instance-a", "book", { bids: [[1, 1]] }, true]
        ])
        expect(second).toEqual(["event", "event", "event", "event"])
        const snapshots = [...(yield* busB.snapshots)].sort((x, y) => x.kind.localeCompare(y.kind))
        expect(snapshots).toEqual([
          { kind: "book", payload: { bids: [[1, 1]] }, snapshot: true },
          { kind: "ticker", payload: { last: 3 }, snapshot: true }
        ])
        // one listener gone, the other keeps the subscription
        yield* Fiber.interrupt(listener)
        yield* Effect.sleep(100)
        expect(yield* Effect.promise(() => raw.pubsub("NUMSUB", busA.channel))).toEqual([busA.channel, 1])
        expect(yield* Effect.promise(() => raw.keys(`${PREFIX}*`))).toEqual([`${PREFIX}snapshot:${MARKET}`])
      })
  )
})
