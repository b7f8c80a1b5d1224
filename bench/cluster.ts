import { readFileSync } from "node:fs"
import { Redis } from "ioredis"
import { startEmulator } from "../src/emulator/index.js"
import { startRedis } from "../test/support/redis.js"
import { medianOf, type Received, runClients, type Summary, summarize } from "./fanout.js"
import { fmt, machine, median, sleep, startServer, waitFor200 } from "./lib.js"

/** CPU seconds (user + system) a process has used so far, from /proc (Linux, clock ticks of 1/100 s). */
const cpuSeconds = (pid: number | undefined): number => {
  if (pid === undefined) return NaN
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const redisPid = async (url: string): Promise<number> => {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    const match = /^process_id:(\d+)/m.exec(await client.info("server"))
    return match === null ? NaN : Number(match[1])
  } finally {
    client.disconnect()
  }
}

interface Lag {
  readonly sum: number
  readonly count: number
  /** Cumulative counts per upper bound (seconds), as /metrics gives them. */
  readonly buckets: ReadonlyArray<readonly [number, number]>
}

interface InstanceMetrics {
  readonly owned: number
  readonly lag: Lag
}

/** The cluster figures of one instance's /metrics (NaN where the instance has none: cluster mode off or not wired). */
const scrape = async (url: string): Promise<InstanceMetrics> => {
  const text = await (await fetch(`${url}/metrics`)).text()
  const value = (name: string) => {
    const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text)
    return match === null ? NaN : Number(match[1])
  }
  // /metrics sorts its lines as text ("+Inf" first, "0.1" before "0.25"): back in numeric order
  const buckets = [...text.matchAll(/^cluster_pubsub_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)]
    .map((m) => [m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2])] as const)
    .sort(([a], [b]) => a - b)
  return {
    owned: value("cluster_owned_upstreams"),
    lag: {
      sum: value("cluster_pubsub_lag_seconds_sum"),
      count: value("cluster_pubsub_lag_seconds_count"),
      buckets
    }
  }
}

const lagBetween = (before: Lag, after: Lag): Lag => ({
  sum: after.sum - before.sum,
  count: after.count - before.count,
  buckets: after.buckets.map(([bound, n], i) => [bound, n - (before.buckets[i]?.[1] ?? 0)] as const)
})

const addLags = (lags: ReadonlyArray<Lag>): Lag => ({
  sum: lags.reduce((s, l) => s + l.sum, 0),
  count: lags.reduce((s, l) => s + l.count, 0),
  buckets: (lags[0]?.buckets ?? []).map(
    ([bound], i) => [bound, lags.reduce((s, l) => s + (l.buckets[i]?.[1] ?? 0), 0)] as const
  )
})

/** Mean, and the upper bounds of the histogram buckets holding the p50 and the p99, in ms. */
const lagFigures = (lag: Lag) => {
  const bucketOf = (p: number) => (lag.buckets.find(([, n]) => lag.count > 0 && n >= p * lag.count)?.[0] ?? NaN) * 1000
  return {
    events: lag.count,
    meanMs: lag.count > 0 ? (lag.sum / lag.count) * 1000 : NaN,
    p50AtMostMs: bucketOf(0.5),
    p99AtMostMs: bucketOf(0.99)
  }
}

interface Deployment {
  readonly urls: ReadonlyArray<string>
  /** Every process that serves the subscribers: the instances and, in cluster mode, redis-server. */
  readonly pids: ReadonlyArray<number | undefined>
  readonly stop: () => Promise<void>
}

interface Measured extends Summary {
  readonly upstreamSubscriptions: number
  /** CPU of the deployment's processes over the measured window, in cores (1 = one core busy). */
  readonly cpuCores: number
  /** Clients of the lease owner, and of the other instances (cluster mode only). */
  readonly owner: Summary | undefined
  readonly followers: Summary | undefined
  readonly lag: Lag | undefined
}

/**
 * Benchmark 6: the same WebSocket subscribers on binance BTC/USDT served by one instance (cluster mode off), then by
 * `instances` instances in cluster mode behind one private redis-server, the clients split evenly over the instances'
 * ports. Both stay up for the whole benchmark and each round measures them in turn (the idle one holds no upstream:
 * its grace is 1 s); every figure is the median of the rounds. The pub/sub overhead is read
 * from every instance's `cluster_pubsub_lag_seconds` (the owner's PUBLISH to an instance's receipt, the owner
 * counting its own copy) over the measured window.
 */
export const clusterBench = async (subscribers: number, instances: number, seconds: number, rounds: number) => {
  const pushMs = 250
  const settleMs = 3000
  const emulator = await startEmulator({ clock: "live", startTime: Date.now(), wsPushIntervalMs: pushMs })
  const redis = await startRedis()
  const market = "exchange=binance&symbol=BTC/USDT"
  const query = `${market}&threshold=0`
  const common = {
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
    RATE_LIMIT_ENABLED: "false",
    CCXT_THROTTLE: "false",
    STREAM_HEARTBEAT_INTERVAL: "30",
    // the set-up not being measured drops its upstream before the other one's is counted
    STREAM_IDLE_GRACE: "1"
  }

  const single = async (): Promise<Deployment> => {
    const server = await startServer({ ...common, REDIS_ENABLED: "false" })
    return { urls: [server.url], pids: [server.process.pid], stop: server.stop }
  }

  const cluster = async (): Promise<Deployment> => {
    const env = {
      ...common,
      REDIS_ENABLED: "true",
      REDIS_URL: redis.url,
      CLUSTER_ENABLED: "true"
    }
    const servers = await Promise.all(Array.from({ length: instances }, () => startServer(env)))
    return {
      urls: servers.map((s) => s.url),
      pids: [...servers.map((s) => s.process.pid), await redisPid(redis.url)],
      stop: async () => {
        await Promise.all(servers.map((s) => s.stop()))
      }
    }
  }

  /** Markets loaded on every instance first: steady state is measured here, cold start in section 4. */
  const warm = (deployment: Deployment) =>
    Promise.all(deployment.urls.map((url) => waitFor200(`${url}/v1/markets/ticker?${market}`, performance.now())))

  const measure = async (deployment: Deployment): Promise<Measured> => {
    const clients = runClients({
      WS_CLIENTS: String(subscribers),
      SSE_CLIENTS: "0",
      WS_URLS: deployment.urls.map((url) => `${url.replace("http", "ws")}/ws/ticker?${query}`).join(","),
      SECONDS: String(seconds),
      SETTLE_MS: String(settleMs)
    })
    try {
      await clients.connected
      // the clients record from settleMs to settleMs + seconds after connecting; CPU and lag are read inside that
      await sleep(settleMs + 250)
      const cpuBefore = deployment.pids.map(cpuSeconds)
      const metricsBefore = await Promise.all(deployment.urls.map(scrape))
      const start = performance.now()
      await sleep((seconds * 1000) / 2)
      const upstreamSubscriptions = emulator.wsSubscriptions("binance")
      await sleep((seconds * 1000) / 2 - 500)
      const elapsed = (performance.now() - start) / 1000
      const cpuAfter = deployment.pids.map(cpuSeconds)
      const metricsAfter = await Promise.all(deployment.urls.map(scrape))
      const received = (await clients.result) as Received & { readonly byUrl?: ReadonlyArray<Received> }
      const cpuCores = cpuAfter.reduce((s, after, i) => s + after - (cpuBefore[i] ?? NaN), 0) / elapsed
      const owners = metricsAfter.flatMap((m, i) => (m.owned === 1 ? [i] : []))
      const byUrl = received.byUrl ?? []
      // several instances' clients: the slowest instance's percentiles (the raw latencies stay in the clients)
      const pooled = (picked: ReadonlyArray<Received>): Summary | undefined =>
        picked.length === 0
          ? undefined
          : {
              perSecond: picked.reduce((s, r) => s + r.messages, 0) / seconds,
              p50: Math.max(...picked.map((r) => r.p50)),
              p99: Math.max(...picked.map((r) => r.p99))
            }
      const clustered = deployment.urls.length > 1 && owners.length === 1
      return {
        ...summarize(received, seconds),
        upstreamSubscriptions,
        cpuCores,
        owner: clustered ? pooled(byUrl.filter((_, i) => owners.includes(i))) : undefined,
        followers: clustered ? pooled(byUrl.filter((_, i) => !owners.includes(i))) : undefined,
        lag:
          deployment.urls.length > 1
            ? addLags(metricsAfter.map((after, i) => lagBetween((metricsBefore[i] ?? after).lag, after.lag)))
            : undefined
      }
    } finally {
      clients.stop()
    }
  }

  const deployments: Array<Deployment> = []
  try {
    const one = await single()
    deployments.push(one)
    const several = await cluster()
    deployments.push(several)
    await warm(one)
    await warm(several)
    const singles: Array<Measured> = []
    const clusters: Array<Measured> = []
    for (let round = 0; round < rounds; round++) {
      singles.push(await measure(one))
      await sleep(1_500)
      clusters.push(await measure(several))
      await sleep(1_500)
    }
    const optional = (runs: ReadonlyArray<Summary | undefined>) => {
      const present = runs.filter((r): r is Summary => r !== undefined)
      return present.length === 0 ? undefined : medianOf(present)
    }
    const figures = (runs: ReadonlyArray<Measured>) => ({
      ...medianOf(runs),
      upstreamSubscriptions: median(runs.map((r) => r.upstreamSubscriptions)),
      cpuCores: median(runs.map((r) => r.cpuCores)),
      p99s: runs.map((r) => r.p99)
    })
    return {
      subscribers,
      instances,
      seconds,
      rounds,
      pushMs,
      single: figures(singles),
      cluster: figures(clusters),
      owner: optional(clusters.map((r) => r.owner)),
      followers: optional(clusters.map((r) => r.followers)),
      lag: lagFigures(addLags(clusters.flatMap((r) => (r.lag === undefined ? [] : [r.lag]))))
    }
  } finally {
    await Promise.all(deployments.map((d) => d.stop()))
    await redis.stop()
    await emulator.close()
  }
}

/** Section 6 of `npm run bench`, as markdown. */
export const clusterSection = async (subscribers: number, instances: number, seconds: number, rounds: number) => {
  const r = await clusterBench(subscribers, instances, seconds, rounds)
  const each = Math.round(r.subscribers / r.instances)
  const perRound = (p99s: ReadonlyArray<number>) => p99s.map((x) => fmt(x)).join(", ")
  const row = (label: string, s: { perSecond: number; p50: number; p99: number } | undefined, tail = "| | |") =>
    s === undefined
      ? `| ${label} | — | — | — ${tail}`
      : `| ${label} | ${fmt(s.perSecond)} | ${fmt(s.p50)} | ${fmt(s.p99)} ${tail}`
  return [
    `${r.subscribers} WebSocket subscribers (\`/ws/ticker\`) on binance BTC/USDT, the emulator pushing every ${r.pushMs} ms, threshold 0:`,
    `one instance (cluster mode off) against ${r.instances} instances in cluster mode behind one private redis-server`,
    `(${each} clients on each instance's port). Every instance, redis-server and the load generator run in their own`,
    `process, the emulator in the benchmark's; all of them share the machine's ${machine().cores} cores, so the cluster's extra`,
    `processes compete with the clients for the same CPU. Medians of ${r.rounds} round${r.rounds === 1 ? "" : "s"} of ${r.seconds} s, the two set-ups measured in`,
    `turn; p99 per round: one instance ${perRound(r.single.p99s)} ms, cluster ${perRound(r.cluster.p99s)} ms.`,
    "",
    "| | messages/s delivered | tick-to-client p50 ms | p99 ms | upstream subscriptions | CPU of servers + Redis |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    row(
      `1 instance × ${r.subscribers} (baseline)`,
      r.single,
      `| ${fmt(r.single.upstreamSubscriptions)} | ${fmt(r.single.cpuCores, 2)} cores |`
    ),
    row(
      `${r.instances} instances × ${each}, cluster mode`,
      r.cluster,
      `| ${fmt(r.cluster.upstreamSubscriptions)} | ${fmt(r.cluster.cpuCores, 2)} cores |`
    ),
    row("— clients of the lease owner", r.owner),
    row("— clients of the other instances (slowest one)", r.followers),
    `| cluster vs baseline | ${fmt((r.cluster.perSecond / r.single.perSecond) * 100)} % | ${fmt(r.cluster.p50 / r.single.p50, 2)}× | ${fmt(r.cluster.p99 / r.single.p99, 2)}× | | ${fmt(r.cluster.cpuCores / r.single.cpuCores, 2)}× |`,
    "",
    `Pub/sub overhead per event: the owner's PUBLISH to an instance's receipt, from every instance's`,
    `\`cluster_pubsub_lag_seconds\` over the measured windows (the owner counts its own copy; one clock, one machine):`,
    `mean ${fmt(r.lag.meanMs, 2)} ms, p50 ≤ ${fmt(r.lag.p50AtMostMs, 1)} ms and p99 ≤ ${fmt(r.lag.p99AtMostMs, 1)} ms (histogram buckets), over ${fmt(r.lag.events)} deliveries.`
  ].join("\n")
}
