import { Effect, Option, type Scope, Stream } from "effect"
import type { StatusEvent, SubscriptionRef, UpstreamMessage } from "../Streams/Events.js"
import type { ClusterEvent } from "./Bus.js"

const UPSTREAM_KINDS: ReadonlySet<string> = new Set([
  "ticker_sample",
  "trades",
  "orderbook",
  "ohlcv",
  "status",
  "error"
])

// the hub's state-carrying messages; the error is kept too, so a late joiner learns the upstream failed
const SNAPSHOT_KINDS: ReadonlySet<string> = new Set(["ticker_sample", "orderbook", "ohlcv", "error"])

/** An upstream message of the stream hub as a cluster event (kind = event_type, published once per event). */
export const toClusterEvent = (message: UpstreamMessage): ClusterEvent =>
  SNAPSHOT_KINDS.has(message.event_type)
    ? { kind: message.event_type, payload: message, snapshot: true }
    : { kind: message.event_type, payload: message }

const field = (payload: unknown, name: string): unknown =>
  typeof payload === "object" && payload !== null ? Reflect.get(payload, name) : undefined

const isUpstreamMessage = (payload: unknown): payload is UpstreamMessage => {
  const kind = field(payload, "event_type")
  return typeof kind === "string" && UPSTREAM_KINDS.has(kind)
}

/**
 * A cluster event back as the hub's message: the owner's messages as they were, the cluster's own status events
 * (owner changed, Redis away) completed with the subscription's fields. None for anything else.
 */
export const fromClusterEvent = (event: ClusterEvent, ref: SubscriptionRef): Option.Option<UpstreamMessage> => {
  if (isUpstreamMessage(event.payload)) return Option.some(event.payload)
  const status = field(event.payload, "status")
  if (event.kind !== "status" || (status !== "reconnecting" && status !== "live")) return Option.none()
  const reason = field(event.payload, "reason")
  const timestamp = field(event.payload, "timestamp")
  const message: StatusEvent = {
    ...ref,
    event_type: "status",
    status,
    reason: `cluster: ${typeof reason === "string" ? reason : "source changed"}`,
    attempt: 0,
    timestamp: typeof timestamp === "number" ? timestamp : Date.now()
  }
  return Option.some(message)
}

/**
 * The hub's `runUpstream(exchange, settings, spec, publish)` as the `runLocal` stream ClusterUpstreams.attach takes:
 * the upstream runs in the stream's scope and stops when the stream is interrupted.
 */
export const runLocalOf = (
  run: (publish: (message: UpstreamMessage) => Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
): Stream.Stream<ClusterEvent> =>
  Stream.asyncScoped<ClusterEvent>((emit) =>
    // its own scope, as in the hub: the watcher closes after the loop stopped, not under its feet
    Effect.forkScoped(
      Effect.scoped(
        run((message) => Effect.promise(() => emit.single(toClusterEvent(message))).pipe(Effect.asVoid))
      ).pipe(Effect.zipRight(Effect.promise(() => emit.end())))
    )
  )
