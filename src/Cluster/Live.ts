import { type ConfigError, Context, Effect, Layer, Option, SubscriptionRef } from "effect"
import { type MakeLimiters, OutboundLimiters } from "../Resilience/Limiter.js"
import { makeSharedCircuit, makeSharedLazyLimiters, type SharedPause } from "./Budget.js"
import { clusterEnabled, ClusterConfig, type ClusterSettings } from "./Config.js"
import { registerClusterMetrics } from "./Metrics.js"
import { type ClusterConnection, type ClusterMode, makeClusterConnection } from "./Connection.js"
import { type ClusterStats, type ClusterUpstreamsApi, makeClusterUpstreams } from "./Upstreams.js"

/** The process's cluster settings and its two Redis connections, shared by the upstreams and the shared budget. */
export class Cluster extends Context.Tag("app/Cluster")<
  Cluster,
  { readonly settings: ClusterSettings; readonly connection: ClusterConnection }
>() {}

export const ClusterLive = Layer.scoped(
  Cluster,
  Effect.gen(function* () {
    const settings = yield* ClusterConfig
    const connection = yield* makeClusterConnection({
      url: settings.redisUrl,
      keyPrefix: settings.keyPrefix,
      instanceId: settings.instanceId
    })
    return { settings, connection }
  })
)

/** The outbound budget of each exchange counted in Redis across every instance (local while Redis is away). */
export const ClusterOutboundLimitersLive = Layer.effect(
  OutboundLimiters,
  Effect.map(Cluster, ({ connection }) => ({
    make: (...args: Parameters<MakeLimiters>) => makeSharedLazyLimiters(connection, ...args)
  }))
)

export class ClusterUpstreams extends Context.Tag("app/ClusterUpstreams")<ClusterUpstreams, ClusterUpstreamsApi>() {}

export const ClusterUpstreamsLive = Layer.scoped(
  ClusterUpstreams,
  Effect.flatMap(Cluster, ({ settings, connection }) =>
    Effect.zipRight(registerClusterMetrics, makeClusterUpstreams(connection, settings))
  )
)

/**
 * Cluster mode when CLUSTER_ENABLED=true: the Cluster (settings, Redis connections), ClusterUpstreams and the shared
 * OutboundLimiters, which the stream registry, ResilientExchange and /v1/health look up as optional services.
 * Without it this layer adds nothing and opens no connection: a single instance composes exactly as before.
 */
export const ClusterModeLive: Layer.Layer<never, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(clusterEnabled, (enabled) =>
    enabled
      ? Layer.mergeAll(ClusterUpstreamsLive, ClusterOutboundLimitersLive).pipe(Layer.provideMerge(ClusterLive))
      : Layer.empty
  )
)

export interface ClusterHealth extends ClusterStats {
  /** The shared pause of each exchange (null: none), as every instance sees it; empty in local mode. */
  readonly circuits: Readonly<Record<string, SharedPause | null>>
}

/** What /v1/health shows in cluster mode; never fails (local mode while Redis is away). */
export const clusterHealth = (
  upstreams: ClusterUpstreamsApi,
  connection: ClusterConnection,
  exchanges: ReadonlyArray<string>
): Effect.Effect<ClusterHealth> =>
  Effect.gen(function* () {
    const stats = yield* upstreams.stats
    const mode: ClusterMode = yield* SubscriptionRef.get(connection.mode)
    // one concurrent read per exchange: the replies share the connection's round trips
    const pauses =
      mode === "cluster"
        ? yield* Effect.forEach(
            exchanges,
            (exchange) =>
              Effect.map(
                Effect.orElseSucceed(makeSharedCircuit(connection, exchange).pause, () => Option.none()),
                (pause) => [exchange, Option.getOrNull(pause)] as const
              ),
            { concurrency: "unbounded" }
          )
        : []
    return { ...stats, mode, circuits: Object.fromEntries(pauses) }
  })
