import { Data, Deferred, Effect, PubSub, RcMap, Ref, type Scope, Stream } from "effect"
import { AppConfig } from "../AppConfig.js"
import { NotSupported, UnsupportedInterval } from "../Domain/Errors.js"
import { Exchange, type StreamChannel } from "../Exchange/Exchange.js"
import type { HeartbeatEvent, StatusEvent, Subscription, SubscriptionEvent, UpstreamMessage } from "./Events.js"
import type { OutboxStats } from "./Outbox.js"
import { forSubscription, heartbeats } from "./Operators.js"
import { MAX_STREAM_DEPTH, runUpstream, type UpstreamSpec } from "./Upstream.js"

export const DEFAULT_STREAM_DEPTH = 10
export const DEFAULT_STREAM_INTERVAL = "1m"

/** A subscription as a client states it; `StreamHub.validate` turns it into a `Subscription`. */
export interface SubscriptionRequest {
  readonly channel: StreamChannel
  readonly exchange: string
  readonly symbol: string
  readonly interval?: string | undefined
  readonly depth?: number | undefined
  readonly threshold?: number | undefined
}

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

export interface ConnectionRegistration {
  readonly id: number
  /** Completes when the server starts shutting down: the connection should say goodbye and end. */
  readonly closing: Effect.Effect<void>
  /** Counts a slow-consumer close in the stats. */
  readonly closedSlow: Effect.Effect<void>
}

/** Messages buffered per subscriber between the upstream and the connection; it moves them on at once. */
const SUBSCRIBER_BUFFER = 64

class UpstreamKey extends Data.Class<UpstreamSpec> {}

interface Upstream {
  /** Live messages, preceded by the current snapshot (ticker, book, candle) and status for a late joiner. */
  readonly subscribe: Effect.Effect<Stream.Stream<UpstreamMessage>, never, Scope.Scope>
}

const isSnapshot = (m: UpstreamMessage) =>
  m.event_type === "ticker_sample" || m.event_type === "orderbook" || m.event_type === "ohlcv"

/**
 * One upstream per (exchange, channel, symbol[, interval]), shared by every subscriber in the process: started by the
 * first subscriber, kept while any remains and for STREAM_IDLE_GRACE after the last one leaves.
 */
export class StreamHub extends Effect.Service<StreamHub>()("app/StreamHub", {
  scoped: Effect.gen(function* () {
    const exchange = yield* Exchange
    const config = yield* AppConfig
    const settings = {
      stallTimeout: config.streamStallTimeout,
      pollInterval: config.streamPollInterval,
      initialBackoff: config.initialBackoff,
      maxBackoff: config.maxBackoff,
      backoffMultiplier: config.backoffMultiplier
    }

    const openUpstream = (key: UpstreamKey) =>
      Effect.gen(function* () {
        const pubsub = yield* Effect.acquireRelease(PubSub.sliding<UpstreamMessage>(SUBSCRIBER_BUFFER), PubSub.shutdown)
        const lock = yield* Effect.makeSemaphore(1)
        let snapshot: UpstreamMessage | undefined
        let status: StatusEvent | undefined
        const publish = (message: UpstreamMessage) =>
          lock.withPermits(1)(
            Effect.suspend(() => {
              if (isSnapshot(message) || message.event_type === "error") snapshot = message
              if (message.event_type === "status") status = message.status === "reconnecting" ? message : undefined
              return PubSub.publish(pubsub, message)
            })
          )
        const spec: UpstreamSpec = {
          channel: key.channel,
          exchange: key.exchange,
          symbol: key.symbol,
          interval: key.interval
        }
        yield* Effect.logInfo("stream upstream started")
        yield* Effect.addFinalizer(() => Effect.logInfo("stream upstream stopped"))
        yield* runUpstream(exchange, settings, spec, publish).pipe(
          // its own scope: the watcher closes after the loop stopped, not under its feet
          Effect.scoped,
          // a failed upstream leaves the map, so that the next subscriber tries afresh
          Effect.zipRight(RcMap.invalidate(upstreams, key).pipe(Effect.forkDaemon)),
          Effect.forkScoped
        )
        return {
          subscribe: lock.withPermits(1)(
            Effect.map(PubSub.subscribe(pubsub), (dequeue) => {
              const initial = [snapshot, status].filter((m): m is UpstreamMessage => m !== undefined)
              return Stream.concat(Stream.fromIterable(initial), Stream.fromQueue(dequeue))
            })
          )
        } satisfies Upstream
      }).pipe(
        Effect.annotateLogs({
          exchange: key.exchange,
          channel: key.channel,
          symbol: key.symbol,
          ...(key.interval === null ? {} : { interval: key.interval })
        })
      )

    const upstreams: RcMap.RcMap<UpstreamKey, Upstream> = yield* RcMap.make({
      lookup: openUpstream,
      idleTimeToLive: config.streamIdleGrace
    })
    const subscribers = yield* Ref.make(0)

    const validate = Effect.fn("StreamHub.validate")(function* (request: SubscriptionRequest) {
      const market = yield* exchange.resolve(request.exchange, request.symbol)
      const info = yield* exchange.describe(market.exchange)
      const watchable = yield* exchange.canWatch(market.exchange, request.channel)
      if (!watchable && !info.capabilities[request.channel]) {
        return yield* new NotSupported({
          message: `${market.exchange} offers no ${request.channel} data, streamed or polled`,
          exchange: market.exchange,
          method: request.channel
        })
      }
      let interval: string | null = null
      if (request.channel === "ohlcv") {
        interval = request.interval ?? DEFAULT_STREAM_INTERVAL
        if (!info.intervals.includes(interval)) {
          return yield* new UnsupportedInterval({
            message:
              `${market.exchange} does not offer "${interval}" candles. ` +
              `Supported intervals: ${info.intervals.length > 0 ? info.intervals.join(", ") : "none"}`,
            interval,
            supported: info.intervals
          })
        }
      }
      return {
        channel: request.channel,
        exchange: market.exchange,
        symbol: market.symbol,
        interval,
        depth: Math.min(MAX_STREAM_DEPTH, request.depth ?? DEFAULT_STREAM_DEPTH),
        threshold: request.threshold ?? config.tickerDeltaThreshold
      } satisfies Subscription
    })

    /** The events of one subscription: its upstream's, filtered for it. Ends after an error event. */
    const subscribe = (subscription: Subscription): Stream.Stream<SubscriptionEvent> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const key = new UpstreamKey({
            channel: subscription.channel,
            exchange: subscription.exchange,
            symbol: subscription.symbol,
            interval: subscription.interval
          })
          const upstream = yield* RcMap.get(upstreams, key)
          yield* Effect.acquireRelease(
            Ref.update(subscribers, (n) => n + 1),
            () => Ref.update(subscribers, (n) => n - 1)
          )
          const messages = yield* upstream.subscribe
          return messages.pipe(forSubscription(subscription))
        })
      ).pipe(
        Stream.withSpan("StreamHub.subscribe", {
          attributes: { exchange: subscription.exchange, channel: subscription.channel, symbol: subscription.symbol }
        })
      )

    // connections, so that shutdown can end them and wait for them
    const closing = yield* Deferred.make<void>()
    const connections = new Map<number, Effect.Effect<ConnectionStats>>()
    const allGone = yield* Effect.makeLatch(true)
    let nextId = 0
    let slowClosed = 0

    const register = (stats: (id: number) => Effect.Effect<ConnectionStats>) =>
      Effect.acquireRelease(
        Effect.sync((): ConnectionRegistration => {
          nextId += 1
          const id = nextId
          connections.set(id, stats(id))
          allGone.unsafeClose()
          return {
            id,
            closing: Deferred.await(closing),
            closedSlow: Effect.sync(() => {
              slowClosed += 1
            })
          }
        }),
        (registration) =>
          Effect.sync(() => {
            connections.delete(registration.id)
            if (connections.size === 0) allGone.unsafeOpen()
          })
      )

    const stats: Effect.Effect<HubStats> = Effect.gen(function* () {
      const all = yield* Effect.all(Array.from(connections.values()))
      return {
        upstreams: (yield* RcMap.keys(upstreams)).length,
        subscribers: yield* Ref.get(subscribers),
        connections: all,
        slowClosed
      }
    })

    /** Asks every live connection to end (SSE: a closing notice, WebSocket: 1001) and waits for them. */
    const shutdown = Effect.gen(function* () {
      if (!(yield* Deferred.succeed(closing, undefined)) || connections.size === 0) return
      yield* Effect.logInfo("closing live streams", { connections: connections.size })
      yield* allGone.await.pipe(Effect.timeout(config.shutdownTimeout), Effect.ignore)
    })
    // runs before the upstreams close (finalizers run in reverse): connections end first, then their upstreams
    yield* Effect.addFinalizer(() => shutdown)

    return {
      validate,
      subscribe,
      heartbeats: heartbeats(config.streamHeartbeatInterval) satisfies Stream.Stream<HeartbeatEvent>,
      register,
      stats,
      shutdown
    } as const
  })
}) {}
