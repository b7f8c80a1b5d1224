/**
 * `npm run bench`: every comparison measured side by side in one run on this machine, printed as markdown.
 * Loopback only, bounded in time (about 2 minutes with the defaults). BENCH_SECONDS sets the load duration.
 */
import { cachedTicker, cachedTickerTable } from "./cachedTicker.js"
import { coalescing } from "./coalescing.js"
import { coldStart } from "./coldStart.js"
import { fmt, machine } from "./lib.js"

const seconds = Number(process.env.BENCH_SECONDS ?? 10)
const m = machine()
const out: Array<string> = []
const print = (line = "") => {
  out.push(line)
  process.stdout.write(line + "\n")
}

print(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}`)
print()

print("### 1. Cached ticker")
print()
print(cachedTickerTable(await cachedTicker(seconds)))
print()

print("### 2. Coalescing")
print()
const c = await coalescing(1000)
print("| concurrent cold requests | answered 200 | upstream ticker requests | upstream market loads | wall time ms |")
print("| ---: | ---: | ---: | ---: | ---: |")
print(`| ${c.concurrency} | ${c.ok} | ${c.tickerRequests} | ${c.marketLoads} | ${fmt(c.elapsedMs)} |`)
print()

print("### 4. Cold start")
print()
const s = await coldStart(5)
print("| process start → first 200 from /v1/health | median ms | runs ms | vs baseline |")
print("| --- | ---: | --- | ---: |")
print(`| bare node:http (baseline) | ${fmt(s.baselineMedian)} | ${s.baseline.map((x) => fmt(x)).join(", ")} | 1.00× |`)
print(
  `| server | ${fmt(s.serverMedian)} | ${s.server.map((x) => fmt(x)).join(", ")} | ${fmt(s.serverMedian / s.baselineMedian, 2)}× |`
)
