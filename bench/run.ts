/**
 * `npm run bench`: every comparison measured side by side in one run on this machine, printed as markdown.
 * Loopback only and bounded in time (about 9 minutes with the defaults). BENCH_SECONDS sets each load's duration,
 * BENCH_WS and BENCH_SSE the fan-out subscribers, BENCH_CLUSTER_SUBSCRIBERS, BENCH_CLUSTER_INSTANCES and
 * BENCH_CLUSTER_ROUNDS the cluster comparison. BENCH_ONLY=cluster,fanout (section names: cached, coalescing, fanout,
 * coldstart, history, cluster) runs only those sections.
 */
import { cachedTicker, cachedTickerTable } from "./cachedTicker.js"
import { clusterSection } from "./cluster.js"
import { coalescing } from "./coalescing.js"
import { coldStart } from "./coldStart.js"
import { fanout } from "./fanout.js"
import { fmt, machine } from "./lib.js"
import { storeBench, storeBenchTable } from "./store.js"

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const wsClients = Number(process.env.BENCH_WS ?? 5000)
const sseClients = Number(process.env.BENCH_SSE ?? 1000)
const clusterSubscribers = Number(process.env.BENCH_CLUSTER_SUBSCRIBERS ?? 6000)
const clusterInstances = Number(process.env.BENCH_CLUSTER_INSTANCES ?? 3)
const clusterRounds = Number(process.env.BENCH_CLUSTER_ROUNDS ?? 3)
const sections = ["cached", "coalescing", "fanout", "coldstart", "history", "cluster"]
const only = (process.env.BENCH_ONLY ?? "").split(",").filter((name) => name !== "")
const unknown = only.filter((name) => !sections.includes(name))
if (unknown.length > 0)
  throw new Error(`BENCH_ONLY: unknown section ${unknown.join(", ")} (one of ${sections.join(", ")})`)
const m = machine()
const print = (line = "") => process.stdout.write(line + "\n")

print(
  `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}. Load generator and server`
)
print("share the machine (loopback).")
print()

/** Prints the section's heading and body unless BENCH_ONLY leaves it out. */
const section = async (name: string, heading: string, body: () => Promise<unknown>) => {
  if (only.length > 0 && !only.includes(name)) return
  print(`#### ${heading}`)
  print()
  await body()
  print()
}

await section("cached", "1. Cached ticker", async () => print(cachedTickerTable(await cachedTicker(seconds, 5))))

await section("coalescing", "2. Coalescing", async () => {
  const c = await coalescing(1000)
  print("| concurrent cold requests | answered 200 | upstream ticker requests | upstream market loads |")
  print("| ---: | ---: | ---: | ---: |")
  print(`| ${c.concurrency} | ${c.ok} | ${c.tickerRequests} | ${c.marketLoads} |`)
})

await section("fanout", "3. Fan-out", async () => {
  const f = await fanout(wsClients, sseClients, seconds * 2, 3)
  print(
    `${f.wsClients} WebSocket + ${f.sseClients} SSE subscribers on binance BTC/USDT, the emulator pushing every ${f.pushMs} ms, threshold 0. Server,`
  )
  print("baseline broadcaster and the clients (`bench/fanout-clients.mjs`) each run in their own process. Medians of")
  print(
    `${f.rounds.served.length} rounds of ${f.seconds} s; p99 per round: server ${f.rounds.served.map((r) => fmt(r.p99)).join(", ")} ms, baseline ${f.rounds.baseline.map((r) => fmt(r.p99)).join(", ")} ms.`
  )
  print()
  print("| | messages/s delivered | tick-to-client p50 ms | p99 ms | upstream subscriptions | memory per subscriber |")
  print("| --- | ---: | ---: | ---: | ---: | ---: |")
  print(
    `| server | ${fmt(f.served.perSecond)} | ${fmt(f.served.p50)} | ${fmt(f.served.p99)} | ${f.upstreamSubscriptions} | ${fmt(f.bytesPerSubscriber / 1024, 1)} KB |`
  )
  print(
    `| bare \`ws\` broadcast, same payload and clients (baseline) | ${fmt(f.baseline.perSecond)} | ${fmt(f.baseline.p50)} | ${fmt(f.baseline.p99)} | — | — |`
  )
  print(`| server vs baseline | ${fmt((f.served.perSecond / f.baseline.perSecond) * 100)} % | | | | |`)
})

await section("coldstart", "4. Cold start", async () => {
  const s = await coldStart(5)
  print("| process start → first 200 from /v1/health | median ms | runs ms | vs baseline |")
  print("| --- | ---: | --- | ---: |")
  print(
    `| bare node:http (baseline) | ${fmt(s.baselineMedian)} | ${s.baseline.map((x) => fmt(x)).join(", ")} | 1.00× |`
  )
  print(
    `| server | ${fmt(s.serverMedian)} | ${s.server.map((x) => fmt(x)).join(", ")} | ${fmt(s.serverMedian / s.baselineMedian, 2)}× |`
  )
})

await section("history", "5. Candle history", async () => print(storeBenchTable(await storeBench())))

await section("cluster", "6. Cluster", async () =>
  print(await clusterSection(clusterSubscribers, clusterInstances, seconds * 2, clusterRounds))
)
