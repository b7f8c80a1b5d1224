import {
  Effect,
  Either,
  Exit,
  Fiber,
  FiberSet,
  Metric,
  Option,
  PubSub,
  Queue,
  Scope,
  Stream,
  SubscriptionRef
} from "effect"
import { type Bus, type ClusterEvent, makeBus, statusEvent } from "./Bus.js"
import type { ClusterSettings } from "./Config.js"
import type { ClusterConnection, ClusterMode } from "./Connection.js"
import { type Lease, makeLease } from "./Lease.js"
import {
  clusterLeaseTakeovers,
  clusterLocalMode,
  clusterOwnedUpstreams,
  clusterRemoteSubscriptions
} from "./Metrics.js"
import { makePresence, type Presence } from "./Presence.js"

/** owner: runs the upstream and publishes it; follower: consumes another owner's channel; local: Redis is away. */
export type MarketRole = "owner" | "follower" | "local"

export interface ClusterStats {
  readonly mode: ClusterMode
  readonly instanceId: string
  readonly markets: ReadonlyArray<{
    readonly market: string
    readonly role: MarketRole | "starting"
    readonly subscribers: number
  }>
}

export interface ClusterUpstreamsApi {
  readonly instanceId: string
  readonly mode: SubscriptionRef.SubscriptionRef<ClusterMode>
  /**
   * Every event of `market` for one local consumer: the market's snapshots first (from this instance or Redis), then
   * live events, whichever instance runs `runLocal`. This instance runs it while it owns the market's lease (and
   * publishes each event once), or while Redis is away (local mode). Owner changes come as status events,
   * `reconnecting` then `live` before the next event. Call it once per local upstream; it never fails.
   */
  readonly attach: (market: string, runLocal: Stream.Stream<ClusterEvent>) => Stream.Stream<ClusterEvent>
  readonly stats: Effect.Effect<ClusterStats>
}

interface Session {
  readonly market: string
  readonly runLocal: Stream.Stream<ClusterEvent>
  readonly lease: Lease
  readonly bus: Bus
  readonly presence: Presence
  readonly pubsub: PubSub.PubSub<ClusterEvent>
  readonly wake: Queue.Queue<void>
  readonly snapshots: Map<string, ClusterEvent>
  readonly scope: Scope.CloseableScope
  refs: number
  role: MarketRole | "none"
  upstream: Fiber.RuntimeFiber<void> | undefined
  awaitingLive: boolean
  idleSince: number | undefined
  ended: boolean
}

const roleGauge = (role: MarketRole | "none") =>
  role === "owner"
    ? Option.some(clusterOwnedUpstreams)
    : role === "follower"
      ? Option.some(clusterRemoteSubscriptions)
      : Option.none()

export const makeClusterUpstreams = (
  conn: ClusterConnection,
  settings: Pick<ClusterSettings, "leaseTtlMs" | "renewEveryMs" | "idleGraceMs">
): Effect.Effect<ClusterUpstreamsApi, never, Scope.Scope> =>
  Effect.gen(function* () {
    const fibers = yield* FiberSet.make()
    const lock = yield* Effect.makeSemaphore(1)
    const sessions = new Map<string, Session>()
    const annotations = { component: "cluster", instance: conn.instanceId }

    const deliver = (s: Session, event: ClusterEvent) => {
      const publish = (e: ClusterEvent) => Effect.runSync(PubSub.publish(s.pubsub, e))
      if (event.kind === "status") {
        const status =
          typeof event.payload === "object" && event.payload !== null ? Reflect.get(event.payload, "status") : undefined
        if (status === "reconnecting") {
          if (s.awaitingLive) return
          s.awaitingLive = true
        } else if (status === "live") {
          if (!s.awaitingLive) return
          s.awaitingLive = false
        }
        publish(event)
        return
      }
      if (s.awaitingLive) {
        s.awaitingLive = false
        publish(statusEvent("live", "recovered"))
      }
      if (event.snapshot === true) s.snapshots.set(event.kind, event)
      publish(event)
    }

    const setRole = (s: Session, next: MarketRole | "none") =>
      Effect.gen(function* () {
        if (s.role === next) return
        const before = roleGauge(s.role)
        const after = roleGauge(next)
        s.role = next
        if (Option.isSome(before)) yield* Metric.incrementBy(before.value, -1)
        if (Option.isSome(after)) yield* Metric.increment(after.value)
      })

    // the owner publishes each event once and gets it back on the channel like everyone; without Redis it keeps it local
    const sink = (s: Session) => (event: ClusterEvent) =>
      s.role === "owner" && conn.isUp()
        ? s.bus.publish(event).pipe(Effect.catchAll(() => Effect.sync(() => deliver(s, event))))
        : Effect.sync(() => deliver(s, event))

    const startUpstream = (s: Session) =>
      Effect.gen(function* () {
        if (s.upstream !== undefined) return
        const fiber = yield* FiberSet.run(
          fibers,
          Stream.runForEach(s.runLocal, sink(s)).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                if (s.upstream === fiber) s.upstream = undefined
              })
            )
          )
        )
        s.upstream = fiber
      })

    const stopUpstream = (s: Session) =>
      Effect.suspend(() => {
        const fiber = s.upstream
        s.upstream = undefined
        return fiber === undefined ? Effect.void : Fiber.interrupt(fiber)
      })

    /** Subscribers are told the source changes, then get the current owner's snapshots to rebuild their state. */
    const resync = (s: Session) =>
      Effect.gen(function* () {
        if (s.refs === 0) return
        deliver(s, statusEvent("reconnecting", "source_changed"))
        s.snapshots.clear()
        const snapshots = yield* Effect.orElseSucceed(s.bus.snapshots, (): ReadonlyArray<ClusterEvent> => [])
        for (const event of snapshots) deliver(s, event)
      })

    const tick = (s: Session): Effect.Effect<"continue" | "end"> =>
      Effect.gen(function* () {
        if (!conn.isUp()) {
          if (s.role !== "local") {
            yield* setRole(s, "local")
            if (s.refs > 0) deliver(s, statusEvent("reconnecting", "redis_unavailable"))
          }
          if (s.refs === 0) return "end"
          yield* startUpstream(s)
          return "continue"
        }
        if (s.role === "owner") {
          const renewed = yield* Effect.either(s.lease.renew)
          if (Either.isLeft(renewed)) return "continue"
          if (renewed.right) {
            if (s.refs > 0) {
              s.idleSince = undefined
              yield* Effect.ignore(s.presence.beat)
              return "continue"
            }
            yield* Effect.ignore(s.presence.leave)
            const present = yield* Effect.either(s.presence.present)
            const others = Either.isRight(present) ? present.right.filter((id) => id !== conn.instanceId) : ["?"]
            const now = Date.now()
            if (others.length > 0) s.idleSince = undefined
            else s.idleSince ??= now
            return s.idleSince !== undefined && now - s.idleSince >= settings.idleGraceMs ? "end" : "continue"
          }
          // expired or taken: stop publishing now, then contend like everyone else
          yield* stopUpstream(s)
          yield* setRole(s, "follower")
          yield* resync(s)
          yield* Effect.logWarning("lost the lease of a market; its upstream stopped here").pipe(
            Effect.annotateLogs({ ...annotations, market: s.market })
          )
        }
        if (s.refs === 0) return "end"
        yield* Effect.ignore(s.presence.beat)
        const acquired = yield* Effect.either(s.lease.acquire)
        if (Either.isLeft(acquired)) return "continue"
        if (Option.isSome(acquired.right)) {
          const previous = acquired.right.value
          yield* setRole(s, "owner")
          s.idleSince = undefined
          if (previous !== "" && previous !== conn.instanceId) {
            yield* Metric.increment(clusterLeaseTakeovers)
            yield* Effect.ignore(s.bus.publish(statusEvent("reconnecting", "owner_changed")))
            yield* Effect.logInfo("took over a market's upstream").pipe(
              Effect.annotateLogs({ ...annotations, market: s.market, previous })
            )
          }
          // a local-mode upstream still running goes on, now publishing
          yield* startUpstream(s)
          return "continue"
        }
        yield* setRole(s, "follower")
        if (s.upstream !== undefined) {
          // from our own upstream (local mode) to the owner's channel: start again from the owner's snapshots
          yield* stopUpstream(s)
          yield* resync(s)
        }
        return "continue"
      })

    const cleanup = (s: Session) =>
      Effect.gen(function* () {
        yield* stopUpstream(s)
        // graceful handover: the release message wakes the contenders at once
        if (s.role === "owner" && conn.isUp()) yield* Effect.ignore(s.lease.release)
        if (conn.isUp()) yield* Effect.ignore(s.presence.leave)
        yield* setRole(s, "none")
        yield* Scope.close(s.scope, Exit.void)
        yield* PubSub.shutdown(s.pubsub)
      })

    const drive = (s: Session): Effect.Effect<void> =>
      Effect.gen(function* () {
        while (true) {
          const next = yield* tick(s)
          if (next === "end") {
            const ended = yield* lock.withPermits(1)(
              Effect.sync(() => {
                if (s.refs > 0) return false
                s.ended = true
                if (sessions.get(s.market) === s) sessions.delete(s.market)
                return true
              })
            )
            if (ended) return
          }
          yield* Effect.raceFirst(Effect.sleep(settings.renewEveryMs), Queue.take(s.wake))
        }
      }).pipe(Effect.ensuring(Effect.suspend(() => cleanup(s))))

    const wake = (s: Session) => Effect.runSync(Queue.offer(s.wake, undefined))

    const open = (market: string, runLocal: Stream.Stream<ClusterEvent>) =>
      Effect.gen(function* () {
        const s: Session = {
          market,
          runLocal,
          lease: makeLease(conn, market, settings.leaseTtlMs),
          bus: makeBus(conn, market, Math.max(30_000, settings.leaseTtlMs * 10)),
          presence: makePresence(conn, market, settings.leaseTtlMs),
          pubsub: yield* PubSub.unbounded<ClusterEvent>(),
          wake: yield* Queue.sliding<void>(1),
          snapshots: new Map(),
          scope: yield* Scope.make(),
          refs: 1,
          role: "none",
          upstream: undefined,
          awaitingLive: false,
          idleSince: undefined,
          ended: false
        }
        yield* s.bus
          .listen((envelope) => {
            if (envelope.t === "release") return wake(s)
            // another owner publishes: check our lease now rather than at the next renewal
            if (s.role === "owner" && envelope.from !== conn.instanceId) wake(s)
            // while this instance runs its own upstream without publishing it, the channel is not its source
            if (s.upstream !== undefined && s.role !== "owner") return
            deliver(
              s,
              envelope.snapshot === true
                ? { kind: envelope.kind, payload: envelope.payload, snapshot: true }
                : { kind: envelope.kind, payload: envelope.payload }
            )
          })
          .pipe(Scope.extend(s.scope))
        sessions.set(market, s)
        return s
      })

    const attach = (market: string, runLocal: Stream.Stream<ClusterEvent>): Stream.Stream<ClusterEvent> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const [s, fresh] = yield* lock.withPermits(1)(
            Effect.gen(function* () {
              const existing = sessions.get(market)
              if (existing !== undefined && !existing.ended) {
                existing.refs += 1
                return [existing, false] as const
              }
              return [yield* open(market, runLocal), true] as const
            })
          )
          const subscription = yield* PubSub.subscribe(s.pubsub)
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              s.refs -= 1
              wake(s)
            })
          )
          const initial =
            s.snapshots.size > 0
              ? [...s.snapshots.values()]
              : conn.isUp()
                ? yield* Effect.orElseSucceed(s.bus.snapshots, (): ReadonlyArray<ClusterEvent> => [])
                : []
          if (fresh) yield* FiberSet.run(fibers, drive(s))
          else wake(s)
          return Stream.concat(Stream.fromIterable(initial), Stream.fromQueue(subscription))
        })
      )

    // wake every market when Redis goes or returns, so roles follow at once rather than at the next renewal
    yield* FiberSet.run(
      fibers,
      conn.mode.changes.pipe(
        Stream.runForEach((mode) =>
          Effect.zipRight(
            Metric.set(clusterLocalMode, mode === "local" ? 1 : 0),
            Effect.sync(() => sessions.forEach(wake))
          )
        )
      )
    )

    const stats = Effect.gen(function* () {
      const mode = yield* SubscriptionRef.get(conn.mode)
      return {
        mode,
        instanceId: conn.instanceId,
        markets: [...sessions.values()].map((s) => ({
          market: s.market,
          role: s.role === "none" ? ("starting" as const) : s.role,
          subscribers: s.refs
        }))
      } satisfies ClusterStats
    })

    return { instanceId: conn.instanceId, mode: conn.mode, attach, stats } satisfies ClusterUpstreamsApi
  })
