import { request } from "node:http"
import { readFileSync } from "node:fs"
import { WebSocket, WebSocketServer } from "ws"
import { startEmulator } from "../src/emulator/index.js"
import { freePort, percentile, sleep, startServer } from "./lib.js"

interface Sample {
  latencies: Array<number>
  messages: number
}

const rssOf = (pid: number | undefined): number => {
  if (pid === undefined) return NaN
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const match = /VmRSS:\s+(\d+) kB/.exec(status)
  return match === null ? NaN : Number(match[1]) * 1024
}

const record = (sample: Sample, measuring: () => boolean, text: string) => {
  if (!measuring()) return
  const event = JSON.parse(text) as { event_type?: string; timestamp?: number }
  if (event.event_type !== "ticker" || typeof event.timestamp !== "number") return
  sample.messages++
  sample.latencies.push(Date.now() - event.timestamp)
}

const openWs = (url: string, sample: Sample, measuring: () => boolean) =>
  new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.on("message", (data) => record(sample, measuring, String(data)))
    ws.once("open", () => resolve(ws))
    ws.once("error", reject)
  })

const openSse = (url: string, sample: Sample, measuring: () => boolean) =>
  new Promise<() => void>((resolve, reject) => {
    const req = request(url, { headers: { accept: "text/event-stream" } }, (res) => {
      let buffer = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        buffer += chunk
        let end = buffer.indexOf("\n\n")
        while (end >= 0) {
          const frame = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          for (const line of frame.split("\n")) if (line.startsWith("data: ")) record(sample, measuring, line.slice(6))
          end = buffer.indexOf("\n\n")
        }
      })
      resolve(() => req.destroy())
    })
    req.on("error", reject)
    req.end()
  })

const inBatches = async <A>(count: number, batch: number, open: () => Promise<A>): Promise<Array<A>> => {
  const out: Array<A> = []
  for (let i = 0; i < count; i += batch) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(batch, count - i) }, open))))
  }
  return out
}

const summarize = (sample: Sample, seconds: number) => {
  const sorted = sample.latencies.sort((a, b) => a - b)
  return { perSecond: sample.messages / seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
}

/**
 * Benchmark 3: `ws` and `sse` subscribers on one symbol of the live emulator. Latency is the time from the
 * exchange's event (its `E` timestamp) to the client; the baseline is a bare `ws` server broadcasting the same
 * payload to the same number of clients at the same rate.
 */
export const fanout = async (wsClients: number, sseClients: number, seconds: number) => {
  const pushMs = 250
  const emulator = await startEmulator({ clock: "live", startTime: Date.now(), wsPushIntervalMs: pushMs })
  const server = await startServer({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
    REDIS_ENABLED: "false",
    RATE_LIMIT_ENABLED: "false",
    CCXT_THROTTLE: "false",
    STREAM_HEARTBEAT_INTERVAL: "30"
  })
  let measuring = false
  const isMeasuring = () => measuring
  const served: Sample = { latencies: [], messages: 0 }
  const wsUrl = `${server.url.replace("http", "ws")}/ws/ticker?exchange=binance&symbol=BTC/USDT&threshold=0`
  const sseUrl = `${server.url}/v1/stream/ticker?exchange=binance&symbol=BTC/USDT&threshold=0`
  try {
    const warm = await openWs(wsUrl, served, isMeasuring)
    await sleep(2_000)
    const rssBefore = rssOf(server.process.pid)
    const sockets = await inBatches(wsClients, 250, () => openWs(wsUrl, served, isMeasuring))
    const sse = await inBatches(sseClients, 250, () => openSse(sseUrl, served, isMeasuring))
    await sleep(3_000)
    measuring = true
    await sleep(seconds * 1000)
    measuring = false
    const rssAfter = rssOf(server.process.pid)
    const upstreamSubscriptions = emulator.wsSubscriptions("binance")
    for (const ws of [warm, ...sockets]) ws.terminate()
    for (const close of sse) close()
    const result = summarize(served, seconds)

    // baseline: a bare ws broadcast of a same-sized payload to the same number of WebSocket clients
    const port = await freePort()
    const wss = new WebSocketServer({ port, host: "127.0.0.1", perMessageDeflate: false })
    const bare: Sample = { latencies: [], messages: 0 }
    let bareMeasuring = false
    const clients = await inBatches(wsClients + sseClients, 250, () =>
      openWs(`ws://127.0.0.1:${port}`, bare, () => bareMeasuring)
    )
    const template = {
      event_type: "ticker",
      exchange: "binance",
      symbol: "BTC/USDT",
      bid: 46059.12,
      ask: 46059.15,
      last: 46059.13,
      price_change_percent: 0
    }
    const timer = setInterval(() => {
      const payload = JSON.stringify({ ...template, timestamp: Date.now() })
      for (const client of wss.clients) client.send(payload)
    }, pushMs)
    await sleep(1_000)
    bareMeasuring = true
    await sleep(seconds * 1000)
    bareMeasuring = false
    clearInterval(timer)
    for (const ws of clients) ws.terminate()
    await new Promise<void>((resolve) => wss.close(() => resolve()))
    const baseline = summarize(bare, seconds)

    return {
      wsClients,
      sseClients,
      seconds,
      pushMs,
      served: result,
      baseline,
      upstreamSubscriptions,
      bytesPerSubscriber: (rssAfter - rssBefore) / (wsClients + sseClients)
    }
  } finally {
    await server.stop()
    await emulator.close()
  }
}
