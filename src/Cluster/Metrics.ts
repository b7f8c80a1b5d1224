import { Effect, Metric, MetricBoundaries } from "effect"

export const clusterOwnedUpstreams = Metric.gauge("cluster_owned_upstreams", {
  description: "Markets whose upstream this instance runs for the whole cluster"
})

export const clusterRemoteSubscriptions = Metric.gauge("cluster_remote_subscriptions", {
  description: "Markets this instance follows on another instance's Redis channel"
})

export const clusterLeaseTakeovers = Metric.counter("cluster_lease_takeovers_total", {
  description: "Leases this instance took over from another owner (expired or released)",
  incremental: true
})

export const clusterPubsubLag = Metric.histogram(
  "cluster_pubsub_lag_seconds",
  MetricBoundaries.fromIterable([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]),
  "Time from an owner publishing an event to an instance receiving it (publisher's clock)"
)

export const clusterLocalMode = Metric.gauge("cluster_local_mode", {
  description: "1 while Redis is unreachable and this instance runs its own upstreams and budget"
})

/** Puts every cluster metric on /metrics from the start (a metric is listed once it was first touched). */
export const registerClusterMetrics = Effect.all(
  [
    Metric.value(clusterOwnedUpstreams),
    Metric.value(clusterRemoteSubscriptions),
    Metric.value(clusterLeaseTakeovers),
    Metric.value(clusterPubsubLag),
    Metric.value(clusterLocalMode)
  ],
  { discard: true }
)
