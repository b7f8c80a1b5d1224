import { Effect, Metric, MetricBoundaries, MetricState } from "effect"

/** Seconds; from 1 ms to about 16 s. */
const latencyBoundaries = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 15 })

export const httpRequests = Metric.counter("http_requests_total", {
  description: "HTTP requests by route, method and status",
  incremental: true
})
export const httpRequestDuration = Metric.histogram(
  "http_request_duration_seconds",
  latencyBoundaries,
  "HTTP request latency by route"
)

export const cacheEvents = Metric.counter("cache_events_total", {
  description: "Market response cache lookups by result (hit, miss, stale)",
  incremental: true
})

export const upstreamCalls = Metric.counter("upstream_requests_total", {
  description: "Calls to exchanges and CoinMarketCap by source, method and outcome",
  incremental: true
})
export const upstreamErrors = Metric.counter("upstream_errors_total", {
  description: "Failed upstream calls by source, method and error code",
  incremental: true
})
export const upstreamDuration = Metric.histogram(
  "upstream_request_duration_seconds",
  latencyBoundaries,
  "Upstream call latency by source and method"
)

export const circuitOpen = Metric.gauge("upstream_circuit_open", {
  description: "1 while an exchange's circuit is open (banned or failing), else 0"
})

export const rateLimitRejections = Metric.counter("rate_limit_rejections_total", {
  description: "Requests rejected by the inbound rate limit",
  incremental: true
})

export const openConnections = Metric.gauge("stream_connections", {
  description: "Open streaming connections by transport (sse, ws)"
})
export const streamSubscriptions = Metric.gauge("stream_subscriptions", {
  description: "Client subscriptions to live streams"
})
export const upstreamStreams = Metric.gauge("upstream_streams", {
  description: "Live upstream streams (one per exchange, channel and symbol)"
})
export const streamMessagesConflated = Metric.counter("stream_messages_conflated_total", {
  description: "Stream messages replaced by a newer one before a slow client read them",
  incremental: true
})
export const streamMessagesDropped = Metric.counter("stream_messages_dropped_total", {
  description: "Stream messages dropped for slow clients",
  incremental: true
})

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

const labels = (tags: ReadonlyArray<{ readonly key: string; readonly value: string }>, extra?: string) => {
  const parts = tags.map((t) => `${t.key}="${escapeLabel(t.value)}"`)
  if (extra !== undefined) parts.push(extra)
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

const num = (n: number | bigint) => {
  const v = typeof n === "bigint" ? Number(n) : n
  return Number.isFinite(v) ? String(v) : v > 0 ? "+Inf" : v < 0 ? "-Inf" : "NaN"
}

/** Every metric of the default registry in the Prometheus text exposition format (0.0.4). */
export const prometheusText: Effect.Effect<string> = Effect.map(Metric.snapshot, (pairs) => {
  const families = new Map<string, { type: string; help: string; lines: Array<string> }>()
  const family = (name: string, type: string, help: string) => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type, help, lines: [] }
      families.set(name, f)
    }
    return f
  }
  for (const { metricKey, metricState } of pairs) {
    const name = metricKey.name
    const help = metricKey.description._tag === "Some" ? metricKey.description.value : name
    const tags = metricKey.tags
    if (MetricState.isCounterState(metricState)) {
      family(name, "counter", help).lines.push(`${name}${labels(tags)} ${num(metricState.count)}`)
    } else if (MetricState.isGaugeState(metricState)) {
      family(name, "gauge", help).lines.push(`${name}${labels(tags)} ${num(metricState.value)}`)
    } else if (MetricState.isHistogramState(metricState)) {
      const f = family(name, "histogram", help)
      for (const [bound, count] of metricState.buckets) {
        f.lines.push(`${name}_bucket${labels(tags, `le="${num(bound)}"`)} ${count}`)
      }
      f.lines.push(`${name}_sum${labels(tags)} ${num(metricState.sum)}`)
      f.lines.push(`${name}_count${labels(tags)} ${metricState.count}`)
    }
  }
  const out: Array<string> = []
  for (const [name, f] of [...families.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    out.push(`# HELP ${name} ${f.help.replace(/\n/g, " ")}`, `# TYPE ${name} ${f.type}`, ...f.lines.sort())
  }
  return out.join("\n") + "\n"
})
