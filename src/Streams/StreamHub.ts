import { Duration, Effect, FiberSet, Stream } from "effect"
import { AppConfig } from "../AppConfig.js"
import type { HeartbeatEvent } from "./Events.js"
import type { OutboxStats } from "./Outbox.js"
import { heartbeats } from "./Operators.js"
import { UpstreamRegistry } from "./UpstreamRegistry.js"

export {
  DEFAULT_STREAM_DEPTH,
  DEFAULT_STREAM_INTERVAL,
  type Detach,
  type SubscriptionRequest,
  type SubscriptionSink
} from "./UpstreamRegistry.js"

const HEARTBEAT_SLOTS = 10

export interface ConnectionStats extends OutboxStats {
  readonly id: number
  readonly transport: "sse" | "ws"
  readonly subscriptions: number
  /** Bytes written to the socket and not yet sent. */
  readonly bufferedBytes: number
}

export interface HubStats {
  /** Running upstreams, including those in their idle grace. */
  readonly upstreams: number
  /** Subscriptions currently attached to an upstream. */
  readonly subscribers: number
  readonly connections: ReadonlyArray<ConnectionStats>
  /** Connections closed because they fell too far behind. */
  readonly slowClosed: number
}

/** What a connection tells the hub when it registers. */
export interface ConnectionHooks {
  stats(id: number): ConnectionStats
  /** Every connection's heartbeat, from one timer for all. */
  heartbeat(event: HeartbeatEvent): void
  /** The server is shutting down: the connection should say goodbye and end. */
  closing(): void
  /** The shutdown's grace is over: the connection must go now. */
  terminate(): void
}

/**
 * The gateway side of the streams: the connections (registered so that shutdown can end them and one timer beats for
 * all), their heartbeats, slow consumers and shutdown; subscriptions go to the UpstreamRegistry it depends on.
 */
export class StreamHub extends Effect.Service<StreamHub>()("app/StreamHub", {
  dependencies: [UpstreamRegistry.Default],
  scoped: Effect.gen(function* () {
    const config = yield* AppConfig
    const registry = yield* UpstreamRegistry

    // connections, so that shutdown can end them and wait for them, and so that one timer beats for all of them
    const connections = new Map<number, ConnectionHooks>()
    const allGone = yield* Effect.makeLatch(true)
    let nextId = 0
    let slowClosed = 0
    let shuttingDown = false

    // each connection beats once per interval, a tenth of them at a time: writing thousands of heartbeats at one
    // instant would hold up the market data due then
    let beat = 0
    yield* heartbeats(Duration.unsafeDivide(config.streamHeartbeatInterval, HEARTBEAT_SLOTS)).pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          const slot = beat++ % HEARTBEAT_SLOTS
          for (const [id, connection] of connections) {
            if (id % HEARTBEAT_SLOTS === slot) connection.heartbeat(event)
          }
        })
      ),
      Effect.forkScoped
    )

    /** Tracks a connection until `unregister`: shutdown ends it, the heartbeat timer beats for it. */
    const register = (hooks: ConnectionHooks): number => {
      nextId += 1
      connections.set(nextId, hooks)
      allGone.unsafeClose()
      // after the connection finished setting itself up
      if (shuttingDown) queueMicrotask(() => hooks.closing())
      return nextId
    }

    const unregister = (id: number): void => {
      if (!connections.delete(id)) return
      if (connections.size === 0) allGone.unsafeOpen()
    }

    const stats: Effect.Effect<HubStats> = Effect.gen(function* () {
      const upstreams = yield* registry.stats
      return {
        upstreams: upstreams.upstreams,
        subscribers: upstreams.subscribers,
        connections: Array.from(connections, ([id, hooks]) => hooks.stats(id)),
        slowClosed
      }
    })

    /**
     * Asks every live connection to end (SSE: a closing notice, WebSocket: 1001), waits for them up to `within`
     * (default SHUTDOWN_TIMEOUT), then cuts the rest.
     */
    const shutdownWithin = (within: Duration.Duration) =>
      Effect.gen(function* () {
        if (shuttingDown) return
        shuttingDown = true
        if (connections.size === 0) return
        yield* Effect.logInfo("closing live streams", { connections: connections.size })
        for (const connection of connections.values()) connection.closing()
        // finalizers run uninterruptibly: without this the timeout could not stop the wait
        yield* allGone.await.pipe(Effect.interruptible, Effect.timeout(within), Effect.ignore)
        for (const connection of connections.values()) connection.terminate()
      })
    const shutdown = shutdownWithin(config.shutdownTimeout)
    // the brief effects of connections (subscribing, logs, closing scopes), started from socket callbacks
    const connectionFibers = yield* FiberSet.make()
    const runDetached = yield* FiberSet.runtime(connectionFibers)<never>()
    // the hub is released before the registry it depends on: connections end first, then their upstreams
    yield* Effect.addFinalizer(() => shutdown)

    return {
      validate: registry.validate,
      attach: registry.attach,
      /** Runs an effect from plain callbacks (socket events) in the hub's context, without a runtime per connection. */
      runDetached: (effect: Effect.Effect<void>): void => void runDetached(effect),
      register,
      unregister,
      /** Counts a connection closed for falling too far behind. */
      closedSlow: (): void => {
        slowClosed += 1
      },
      stats,
      shutdown,
      shutdownWithin
    } as const
  })
}) {}
