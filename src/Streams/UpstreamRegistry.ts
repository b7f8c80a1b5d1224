import { Data, Deferred, Duration, Effect, Exit, FiberId, FiberSet, Option, RcMap, Scope, Stream } from "effect"
import { AppConfig } from "../AppConfig.js"
import { fromClusterEvent, runLocalOf } from "../Cluster/HubAdapter.js"
import { ClusterUpstreams } from "../Cluster/Live.js"
import { NotSupported, UnsupportedInterval } from "../Domain/Errors.js"
import { Exchange, type StreamChannel } from "../Exchange/Exchange.js"
import {
  type StatusEvent,
  type Subscription,
  type SubscriptionEvent,
  subscriptionRef,
  type UpstreamMessage,
  upstreamKey
} from "./Events.js"
import { makeSubscriptionFilter } from "./Operators.js"
import { MAX_STREAM_DEPTH, runUpstream, type UpstreamSpec } from "./Upstream.js"

export const DEFAULT_STREAM_DEPTH = 10
export const DEFAULT_STREAM_INTERVAL = "1m"

/** A subscription as a client states it; `UpstreamRegistry.validate` turns it into a `Subscription`. */
export interface SubscriptionRequest {
  readonly channel: StreamChannel
  readonly exchange: string
  readonly symbol: string
  readonly interval?: string | undefined
  readonly depth?: number | undefined
  readonly threshold?: number | undefined
}

/** Where one subscription's events go, synchronously, as its upstream publishes them. */
export interface SubscriptionSink {
  /** It applies the ticker threshold itself, where it sends (see `makeSubscriptionFilter`). */
  readonly thresholdAtSend?: boolean
  readonly event: (event: SubscriptionEvent) => void
  /** After the error event that ends the subscription. */
  readonly end: () => void
}

/** Ends one subscription's attachment to its upstream; the effect releases the upstream when it was the last. */
export type Detach = () => Effect.Effect<void>

class UpstreamKey extends Data.Class<UpstreamSpec> {}

type Listener = (message: UpstreamMessage) => void

interface Upstream {
  /**
   * Adds a listener for live messages, first handing it the current snapshot (ticker, book, candle) and status, for
   * a late joiner.
   */
  readonly add: (listener: Listener) => void
  readonly remove: (listener: Listener) => void
  /** The upstream failed for good: the next subscriber starts afresh. */
  readonly failed: () => boolean
}

/**
 * The hub's hold on a running upstream while subscribers are attached: one scope per upstream, not per subscriber
 * (thousands of subscribers would each keep a scope, finalizers and fiber refs alive).
 */
interface Holder {
  readonly key: string
  /** Undefined while the upstream starts. */
  upstream: Upstream | undefined
  readonly started: Deferred.Deferred<Upstream>
  readonly scope: Scope.CloseableScope
  count: number
}

const isSnapshot = (m: UpstreamMessage) =>
  m.event_type === "ticker_sample" || m.event_type === "orderbook" || m.event_type === "ohlcv"

/**
 * The upstream side of the streams: one upstream per (exchange, channel, symbol[, interval]), shared by every
 * subscriber in the process, started by the first subscriber, kept while any remains and for STREAM_IDLE_GRACE after
 * the last one leaves. Its messages are fanned out synchronously, each subscriber's filter applied in that loop;
 * upstreams reconnect on the retries' backoff. The gateway side (connections, heartbeats, shutdown) is the StreamHub.
 * In cluster mode (ClusterUpstreams provided) a market's messages come through the cluster, whichever instance runs
 * its upstream, and the cluster keeps an unused upstream for the idle grace instead of this registry.
 */
export class UpstreamRegistry extends Effect.Service<UpstreamRegistry>()("app/UpstreamRegistry", {
  scoped: Effect.gen(function* () {
    const exchange = yield* Exchange
    const config = yield* AppConfig
    const cluster = yield* Effect.serviceOption(ClusterUpstreams)
    // a subscriber's failure is logged on the registry's runtime, so the line goes through the configured logger
    const failures = yield* FiberSet.make()
    const runDetached = yield* FiberSet.runtime(failures)<never>()
    const settings = {
      stallTimeout: config.streamStallTimeout,
      pollInterval: config.streamPollInterval,
      initialBackoff: config.initialBackoff,
      maxBackoff: config.maxBackoff,
      backoffMultiplier: config.backoffMultiplier
    }

    const unwatchable = new Map<string, string>()

    const openUpstream = (key: UpstreamKey) =>
      Effect.gen(function* () {
        const listeners = new Set<Listener>()
        let failed = false
        let snapshot: UpstreamMessage | undefined
        let status: StatusEvent | undefined
        // one synchronous loop over the subscribers: no queue, no fiber per subscriber
        const publish = (message: UpstreamMessage) =>
          Effect.sync(() => {
            if (isSnapshot(message) || message.event_type === "error") snapshot = message
            if (message.event_type === "status") status = message.status === "reconnecting" ? message : undefined
            for (const listener of listeners) listener(message)
          })
        const spec: UpstreamSpec = {
          channel: key.channel,
          exchange: key.exchange,
          symbol: key.symbol,
          interval: key.interval
        }
        const run = (to: (message: UpstreamMessage) => Effect.Effect<void>) =>
          runUpstream(exchange, settings, spec, to, unwatchable)
        const ref = subscriptionRef(spec)
        const upstream = Option.match(cluster, {
          // its own scope: the watcher closes after the loop stopped, not under its feet
          onNone: () => Effect.scoped(run(publish)),
          onSome: (clustered) =>
            clustered.attach(upstreamKey(spec), runLocalOf(run)).pipe(
              Stream.filterMap((event) => fromClusterEvent(event, ref)),
              // an error is the upstream's last message, as when it runs here
              Stream.takeUntil((message) => message.event_type === "error"),
              Stream.runForEach(publish)
            )
        })
        yield* Effect.logInfo("stream upstream started")
        yield* Effect.addFinalizer(() => Effect.logInfo("stream upstream stopped"))
        yield* upstream.pipe(
          // a failed upstream leaves the map, so that the next subscriber tries afresh
          Effect.zipRight(
            Effect.suspend(() => {
              failed = true
              return RcMap.invalidate(upstreams, key).pipe(Effect.forkDaemon)
            })
          ),
          // a fiber inherits its parent's interruptibility: whoever subscribed first, the loop must stop on release
          Effect.interruptible,
          Effect.forkScoped
        )
        return {
          add: (listener) => {
            if (snapshot !== undefined) listener(snapshot)
            if (status !== undefined) listener(status)
            listeners.add(listener)
          },
          remove: (listener) => void listeners.delete(listener),
          failed: () => failed
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
      idleTimeToLive: Option.isSome(cluster) ? Duration.zero : config.streamIdleGrace
    })
    let subscribers = 0

    const validate = Effect.fn("UpstreamRegistry.validate")(function* (request: SubscriptionRequest) {
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

    const holders = new Map<string, Holder>()

    /**
     * A share of the subscription's upstream, started if none runs (or the last one failed). Single-flight per key:
     * the holder is registered before its upstream starts, so subscribers arriving meanwhile (a reconnect storm while
     * the market list loads) wait for that one start instead of racing their own (RcMap.get alone lets concurrent
     * first gets of one key each run the lookup).
     */
    const hold = (subscription: Subscription): Effect.Effect<readonly [Holder, Upstream]> =>
      Effect.suspend(() => {
        const k = upstreamKey(subscription)
        const held = holders.get(k)
        if (held !== undefined && !(held.upstream?.failed() ?? false)) {
          held.count += 1
          return Effect.map(Deferred.await(held.started), (upstream) => [held, upstream] as const)
        }
        const holder: Holder = {
          key: k,
          upstream: undefined,
          started: Deferred.unsafeMake<Upstream>(FiberId.none),
          scope: Effect.runSync(Scope.make()),
          count: 1
        }
        holders.set(k, holder)
        return RcMap.get(
          upstreams,
          new UpstreamKey({
            channel: subscription.channel,
            exchange: subscription.exchange,
            symbol: subscription.symbol,
            interval: subscription.interval
          })
        ).pipe(
          Scope.extend(holder.scope),
          Effect.map((upstream) => {
            holder.upstream = upstream
            Deferred.unsafeDone(holder.started, Exit.succeed(upstream))
            return [holder, upstream] as const
          }),
          Effect.uninterruptible
        )
      })

    const release = (holder: Holder): Effect.Effect<void> => {
      holder.count -= 1
      if (holder.count > 0) return Effect.void
      if (holders.get(holder.key) === holder) holders.delete(holder.key)
      // the upstream's idle grace starts now
      return Scope.close(holder.scope, Exit.void)
    }

    /**
     * Feeds one subscription's events to `sink`, in its upstream's own loop, until detached. After an error event the
     * sink is ended and hears nothing more.
     */
    const attach = (subscription: Subscription, sink: SubscriptionSink): Effect.Effect<Detach> =>
      Effect.map(hold(subscription), ([holder, upstream]): Detach => {
        const filter = makeSubscriptionFilter(subscription, sink)
        let ended = false
        let attached = true
        const listener: Listener = (message) => {
          if (ended) return
          const event = filter(message)
          if (event === undefined) return
          if (event.event_type === "error") ended = true
          // one subscriber's failure must not cost the others their event
          try {
            sink.event(event)
            if (ended) sink.end()
          } catch (defect) {
            ended = true
            // on the hub's runtime, so the line goes through the configured (JSON) logger
            runDetached(Effect.logError("stream subscriber failed", { defect: String(defect) }))
          }
        }
        subscribers += 1
        upstream.add(listener)
        return () => {
          if (!attached) return Effect.void
          attached = false
          subscribers -= 1
          upstream.remove(listener)
          return release(holder)
        }
      })

    return {
      validate,
      attach,
      stats: Effect.map(RcMap.keys(upstreams), (keys) => ({ upstreams: keys.length, subscribers }))
    } as const
  })
}) {}
