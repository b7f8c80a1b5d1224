import { Config, Duration } from "effect"
import { redisUrl, seconds, streamIdleGrace } from "../AppConfig.js"
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"

export interface ClusterSettings {
  readonly enabled: boolean
  readonly redisUrl: string
  /** Prepended to every cluster key and channel. */
  readonly keyPrefix: string
  /** A lease not renewed for this long expires and another instance may take the market over. */
  readonly leaseTtlMs: number
  /** Owners renew (and contenders retry) every TTL / 3: a missed renewal still leaves two tries before expiry. */
  readonly renewEveryMs: number
  /** How long an owner without local subscribers keeps the upstream while no instance has subscribers. */
  readonly idleGraceMs: number
  /** This process, unique across the cluster and readable in Redis (host, pid and a random part). */
  readonly instanceId: string
}

export const makeInstanceId = (): string => `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`

/** CLUSTER_ENABLED: whether ClusterModeLive adds the cluster services at all. */
export const clusterEnabled: Config.Config<boolean> = Config.boolean("CLUSTER_ENABLED").pipe(Config.withDefault(false))

/** Cluster settings from the environment: CLUSTER_ENABLED, CLUSTER_LEASE_TTL, CLUSTER_KEY_PREFIX, REDIS_URL, STREAM_IDLE_GRACE. */
export const ClusterConfig: Config.Config<ClusterSettings> = Config.all({
  enabled: clusterEnabled,
  redisUrl,
  keyPrefix: Config.string("CLUSTER_KEY_PREFIX").pipe(Config.withDefault("mcds:cluster:")),
  // 3 s + one 1 s renewal period: a dead owner is replaced within about 4 s, inside the promised 5 s
  leaseTtlMs: seconds("CLUSTER_LEASE_TTL", 3, 0.3).pipe(Config.map(Duration.toMillis)),
  idleGraceMs: streamIdleGrace.pipe(Config.map(Duration.toMillis))
}).pipe(
  Config.map((c): ClusterSettings => ({
    ...c,
    renewEveryMs: Math.max(100, Math.floor(c.leaseTtlMs / 3)),
    instanceId: makeInstanceId()
  }))
)
