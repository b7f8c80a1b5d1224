import { describe, expect } from "@effect/vitest"
import { Effect, Exit, Option, SubscriptionRef } from "effect"
import { makeSharedCircuit, makeSharedLimiter } from "../../src/Cluster/Budget.js"
import type { ClusterConnection } from "../../src/Cluster/Connection.js"
import { RateLimited, UpstreamUnavailable } from "../../src/Domain/Errors.js"
import { Rejected } from "../../src/Resilience/Circuit.js"
import type { Budget, OutboundLimiter } from "../../src/Resilience/Limiter.js"
import { clusterTest, connect, connectEach, eventually, PREFIX } from "./support.js"

const BUDGET: Budget = { requestsPerSecond: 10, from: "config" }

/** A local limiter that lets everything through and counts what it was given (what runs while Redis is away). */
const countingLocal = () => {
  const counter = { calls: 0 }
  const limiter: OutboundLimiter = {
    budget: BUDGET,
    run: (_cost, effect) => Effect.suspend(() => ((counter.calls += 1), effect))
  }
  return { counter, limiter }
}

/** The error a refused call carries to the client; fails the test if the call was not refused by the limiter. */
const rejection = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected a refusal")
  const error = exit.cause.error
  if (!(error instanceof Rejected)) throw new Error(`expected ResilienceRejected, got ${String(error)}`)
  return error.error
}

const shared = (conn: ClusterConnection, maxWaitMs: number) =>
  makeSharedLimiter(conn, "binance", BUDGET, maxWaitMs, countingLocal().limiter)

/** Instances a and b with a shared limiter each (waiting at most `maxWaitMs`), and a call that counts its runs. */
const twoInstances = (url: string, maxWaitMs: number) =>
  Effect.gen(function* () {
    const [connA, connB] = yield* connectEach(url, ["a", "b"])
    const runs = { count: 0 }
    const call = Effect.sync(() => (runs.count += 1))
    return { connA, connB, a: shared(connA, maxWaitMs), b: shared(connB, maxWaitMs), runs, call }
  })

describe("shared outbound budget and pause (real redis-server)", () => {
  clusterTest("three instances together stay within the exchange's budget", ({ redis }) =>
    Effect.gen(function* () {
      const limiters = (yield* connectEach(redis.url, ["a", "b", "c"])).map((conn) => shared(conn, 10_000))
      const sent: Array<number> = []
      const call = Effect.sync(() => sent.push(Date.now()))
      yield* Effect.forEach(
        limiters.flatMap((l) => Array.from({ length: 12 }, () => l.run(1, call))),
        (e) => e,
        { concurrency: "unbounded" }
      )
      expect(sent.length).toBe(36)
      sent.sort((x, y) => x - y)
      // a bucket of 10 refilled at 10/s: never more than 10 + 10 calls in any second (+1 for clock rounding)
      for (const start of sent) {
        expect(sent.filter((t) => t >= start && t < start + 1_000).length).toBeLessThanOrEqual(21)
      }
      // the 26 calls beyond the first burst needed the refill: about 2.6 s, however the instances shared them
      expect((sent.at(-1) ?? 0) - (sent[0] ?? 0)).toBeGreaterThanOrEqual(2_300)
    })
  )

  clusterTest("a call that would wait longer than the maximum is refused with 429 upstream_rate_limited", ({ redis }) =>
    Effect.gen(function* () {
      const { a, b, runs, call } = yield* twoInstances(redis.url, 200)
      yield* Effect.forEach(
        Array.from({ length: 10 }, () => a.run(1, call)),
        (e) => e,
        { concurrency: "unbounded" }
      )
      expect(runs.count).toBe(10)
      // the bucket is empty: b's 5 units would be ready in about 0.5 s, longer than its 200 ms
      const exit = yield* Effect.exit(b.run(5, call))
      expect(runs.count).toBe(10)
      const refused = rejection(exit)
      expect(refused).toBeInstanceOf(RateLimited)
      expect([refused.code, refused.retryAfter]).toEqual(["upstream_rate_limited", 1])
    })
  )

  clusterTest("a 418 ban or a 429 seen by one instance pauses every instance", ({ redis }) =>
    Effect.gen(function* () {
      const { connA, connB, a, b, runs, call } = yield* twoInstances(redis.url, 3_000)

      // a 429 asking for 1 s: b's next call waits it out (within its 3 s maximum) and then goes
      const tooMany = new RateLimited({
        code: "upstream_rate_limited",
        message: "429",
        source: "binance",
        retryAfter: 1
      })
      expect(Exit.isFailure(yield* Effect.exit(a.run(1, Effect.fail(tooMany))))).toBe(true)
      const paused = yield* makeSharedCircuit(connB, "binance").pause
      expect(Option.map(paused, (p) => p.reason)).toEqual(Option.some("rate_limited"))
      const started = Date.now()
      yield* b.run(1, call)
      expect(runs.count).toBe(1)
      expect(Date.now() - started).toBeGreaterThanOrEqual(800)

      // a ban for 60 s: every instance refuses at once, without calling the exchange, and health can show it
      const banned = new UpstreamUnavailable({
        code: "upstream_banned",
        message: "418",
        source: "binance",
        retryAfter: 60
      })
      expect(Exit.isFailure(yield* Effect.exit(b.run(1, Effect.fail(banned))))).toBe(true)
      const exit = yield* Effect.exit(a.run(1, call))
      expect(runs.count).toBe(1)
      const refused = rejection(exit)
      expect(refused).toBeInstanceOf(UpstreamUnavailable)
      expect([refused.code, refused.retryAfter]).toEqual(["upstream_banned", 60])
      const seenByA = yield* makeSharedCircuit(connA, "binance").pause
      expect(Option.map(seenByA, (p) => p.reason)).toEqual(Option.some("banned"))
      expect(Option.getOrThrow(seenByA).retryAfterMs).toBeGreaterThan(55_000)
      // a shorter 429 afterwards does not shorten the ban
      yield* makeSharedCircuit(connA, "binance").report({ reason: "rate_limited", retryAfterMs: 1_000 })
      expect(Option.map(yield* makeSharedCircuit(connB, "binance").pause, (p) => p.reason)).toEqual(
        Option.some("banned")
      )
    })
  )

  clusterTest(
    "while Redis is down each instance uses its own budget, and the shared one again when Redis returns",
    ({ redis, raw }) =>
      Effect.gen(function* () {
        const conn = yield* connect(redis.url, "a")
        const { counter, limiter: local } = countingLocal()
        const limiter = makeSharedLimiter(conn, "binance", BUDGET, 1_000, local)
        let ran = 0
        const call = Effect.sync(() => (ran += 1))
        yield* limiter.run(1, call)
        expect([ran, counter.calls]).toEqual([1, 0])

        yield* Effect.promise(() => redis.kill())
        yield* eventually(() => !conn.isUp(), 5_000, "local mode")
        expect(yield* SubscriptionRef.get(conn.mode)).toBe("local")
        yield* limiter.run(1, call)
        expect([ran, counter.calls]).toEqual([2, 1])

        yield* Effect.promise(() => redis.restart())
        yield* eventually(() => conn.isUp(), 8_000, "cluster mode")
        yield* limiter.run(1, call)
        expect([ran, counter.calls]).toEqual([3, 1])
        expect(yield* Effect.promise(() => raw.exists(`${PREFIX}budget:binance`))).toBe(1)
      })
  )
})
