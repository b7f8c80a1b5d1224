import { Effect, Metric } from "effect"
import type { ClusterConnection, ClusterRedisError } from "./Connection.js"
import { leaseKeys } from "./Lease.js"
import { clusterPubsubLag } from "./Metrics.js"

/** What an upstream yields: a kind and a JSON-encodable payload. `snapshot` events are kept as the market's state. */
export interface ClusterEvent {
  readonly kind: string
  readonly payload: unknown
  readonly snapshot?: boolean
}

export type ClusterStatus = "reconnecting" | "live"

/** Why cluster mode told subscribers their source changed. */
export type ClusterStatusReason = "owner_changed" | "redis_unavailable" | "source_changed" | "recovered"

/** kind "status", payload { status, reason, timestamp }: the hub completes it into its StatusEvent. */
export const statusEvent = (status: ClusterStatus, reason: ClusterStatusReason): ClusterEvent => ({
  kind: "status",
  payload: { status, reason, timestamp: Date.now() }
})

/** One message on a market's channel. `ts` is the publisher's clock, for the pub/sub lag. */
export type Envelope =
  | {
      readonly t: "event"
      readonly from: string
      readonly ts: number
      readonly kind: string
      readonly payload: unknown
      readonly snapshot?: boolean
    }
  | { readonly t: "release"; readonly from: string }

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> => typeof u === "object" && u !== null

export const decodeEnvelope = (message: string): Envelope | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(message)
  } catch {
    return undefined
  }
  if (!isRecord(parsed) || typeof parsed.from !== "string") return undefined
  if (parsed.t === "release") return { t: "release", from: parsed.from }
  if (parsed.t !== "event" || typeof parsed.ts !== "number" || typeof parsed.kind !== "string") return undefined
  const { from, ts, kind, payload } = parsed
  return { t: "event", from, ts, kind, payload, ...(parsed.snapshot === true ? { snapshot: true } : {}) }
}

// Publish and keep the snapshot in one round trip; the snapshot hash expires if the owner stops writing it.
const PUBLISH_SNAPSHOT = `redis.call("HSET", KEYS[2], ARGV[2], ARGV[1])
redis.call("PEXPIRE", KEYS[2], ARGV[3])
return redis.call("PUBLISH", KEYS[1], ARGV[1])`

/** The per-market channel and last-snapshot hash. */
export interface Bus {
  readonly channel: string
  readonly publish: (event: ClusterEvent) => Effect.Effect<void, ClusterRedisError>
  /** The last snapshot event of each kind, as the owner stored them. */
  readonly snapshots: Effect.Effect<ReadonlyArray<ClusterEvent>, ClusterRedisError>
  /** Envelopes on the channel until the scope closes; records the lag of each event. */
  readonly listen: (onEnvelope: (envelope: Envelope) => void) => ReturnType<ClusterConnection["listen"]>
}

export const makeBus = (conn: ClusterConnection, market: string, snapshotTtlMs: number): Bus => {
  const { channel } = leaseKeys(conn, market)
  const snapshotKey = conn.key(`snapshot:${market}`)
  const ttl = Math.max(1_000, Math.round(snapshotTtlMs))
  return {
    channel,
    publish: (event) =>
      Effect.suspend(() => {
        const envelope: Envelope = {
          t: "event",
          from: conn.instanceId,
          ts: Date.now(),
          kind: event.kind,
          payload: event.payload,
          ...(event.snapshot === true ? { snapshot: true } : {})
        }
        const message = JSON.stringify(envelope)
        return event.snapshot
          ? conn.run("bus.publish", (c) => c.eval(PUBLISH_SNAPSHOT, 2, channel, snapshotKey, message, event.kind, ttl))
          : conn.run("bus.publish", (c) => c.publish(channel, message))
      }).pipe(Effect.asVoid),
    snapshots: conn
      .run("bus.snapshots", (c) => c.hgetall(snapshotKey))
      .pipe(
        Effect.map((hash) =>
          Object.values(hash).flatMap((message) => {
            const envelope = decodeEnvelope(message)
            return envelope?.t === "event" ? [{ kind: envelope.kind, payload: envelope.payload, snapshot: true }] : []
          })
        )
      ),
    listen: (onEnvelope) =>
      conn.listen(channel, (message) => {
        const envelope = decodeEnvelope(message)
        if (envelope === undefined) return
        if (envelope.t === "event") {
          Effect.runSync(Metric.update(clusterPubsubLag, Math.max(0, Date.now() - envelope.ts) / 1000))
        }
        onEnvelope(envelope)
      })
  }
}
