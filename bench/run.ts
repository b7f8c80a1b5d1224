/**
 * `npm run bench`: every comparison measured side by side in one run on this machine, printed as markdown.
 * Loopback only and bounded in time (about 7 minutes with the defaults). BENCH_SECONDS sets each load's duration,
 * BENCH_WS and BENCH_SSE the fan-out subscribers.
 */
import { cachedTicker, cachedTickerTable } from "./cachedTicker.js"
import { coalescing } from "./coalescing.js"
import { coldStart } from "./coldStart.js"
import { fanout } from "./fanout.js"
import { fmt, machine } from "./lib.js"
import { storeBench, storeBenchTable } from "./store.js"

const seconds = Number(process.env.BENCH_SECONDS ?? 5)
const wsClients = Number(process.env.BENCH_WS ?? 5000)
const sseClients = Number(process.env.BENCH_SSE ?? 1000)
const m = machine()
const print = (line = "") => process.stdout.write(line + "\n")

print(
  `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}. Load generator and server`
)
print("share the machine (loopback).")
print()

print("#### 1. Cached ticker")
print()
print(cachedTickerTable(await cachedTicker(seconds, 5)))
print()

print("#### 2. Coalescing")
print()
const c = await coalescing(1000)
print("| concurrent cold requests | answered 200 | upstream ticker requests | upstream market loads |")
print("| ---: | ---: | ---: | ---: |")
print(`| ${c.concurrency} | ${c.ok} | ${c.tickerRequests} | ${c.marketLoads} |`)
print()

print("#### 3. Fan-out")
print()
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
print()

print("#### 4. Cold start")
print()
const s = await coldStart(5)
print("| process start → first 200 from /v1/health | median ms | runs ms | vs baseline |")
print("| --- | ---: | --- | ---: |")
print(`| bare node:http (baseline) | ${fmt(s.baselineMedian)} | ${s.baseline.map((x) => fmt(x)).join(", ")} | 1.00× |`)
print(
  `| server | ${fmt(s.serverMedian)} | ${s.server.map((x) => fmt(x)).join(", ")} | ${fmt(s.serverMedian / s.baselineMedian, 2)}× |`
)
print()

print("#### 5. Candle history")
print()
print(storeBenchTable(await storeBench()))
