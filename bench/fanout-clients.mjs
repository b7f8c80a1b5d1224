// Fan-out load generator, in its own process so that neither the server nor the emulator shares its event loop.
// Opens WS_CLIENTS WebSockets (WS_URL) and SSE_CLIENTS SSE streams (SSE_URL), waits SETTLE_MS, then records for
// SECONDS the latency (now - event timestamp) of every ticker event; prints one JSON line with the summary.
// WS_URLS (comma-separated) instead of WS_URL spreads the WebSockets evenly over several servers, client i on URL
// i mod n, and adds `byUrl` (the same summary per URL, in order) to the result.
import { request } from "node:http"
import process from "node:process"
import { setTimeout } from "node:timers"
import { WebSocket } from "ws"

const wsClients = Number(process.env.WS_CLIENTS ?? 0)
const sseClients = Number(process.env.SSE_CLIENTS ?? 0)
const seconds = Number(process.env.SECONDS ?? 10)
const settleMs = Number(process.env.SETTLE_MS ?? 3000)
const wsUrls = process.env.WS_URLS === undefined ? [process.env.WS_URL] : process.env.WS_URLS.split(",")
let measuring = false
let messages = 0
const latencies = []
const byUrl = process.env.WS_URLS === undefined ? [] : wsUrls.map(() => [])
const stamp = /"timestamp":(\d+)/

const record = (text, perUrl) => {
  if (!measuring || !text.includes('"ticker"')) return
  const match = stamp.exec(text)
  if (match === null) return
  messages++
  const latency = Date.now() - Number(match[1])
  latencies.push(latency)
  perUrl?.push(latency)
}

let opened = 0
const openWs = () =>
  new Promise((resolve, reject) => {
    const slot = opened++ % wsUrls.length
    const ws = new WebSocket(wsUrls[slot], { perMessageDeflate: false })
    ws.on("message", (data) => record(String(data), byUrl[slot]))
    ws.once("open", () => resolve(ws))
    ws.once("error", reject)
  })

const openSse = () =>
  new Promise((resolve, reject) => {
    const req = request(process.env.SSE_URL, { headers: { accept: "text/event-stream" } }, (res) => {
      res.setEncoding("utf8")
      let buffer = ""
      res.on("data", (chunk) => {
        buffer += chunk
        let end = buffer.indexOf("\n\n")
        while (end >= 0) {
          record(buffer.slice(0, end))
          buffer = buffer.slice(end + 2)
          end = buffer.indexOf("\n\n")
        }
      })
      resolve(req)
    })
    req.on("error", reject)
    req.end()
  })

const inBatches = async (count, open) => {
  const out = []
  for (let i = 0; i < count; i += 250) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(250, count - i) }, open))))
  }
  return out
}

const sockets = await inBatches(wsClients, openWs)
const streams = await inBatches(sseClients, openSse)
process.stdout.write(JSON.stringify({ connected: sockets.length + streams.length }) + "\n")
await new Promise((resolve) => setTimeout(resolve, settleMs))
measuring = true
await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
measuring = false
for (const ws of sockets) ws.terminate()
for (const req of streams) req.destroy()
const summary = (values) => {
  values.sort((a, b) => a - b)
  const at = (p) => (values.length === 0 ? null : values[Math.min(values.length - 1, Math.floor(p * values.length))])
  return { messages: values.length, p50: at(0.5), p99: at(0.99) }
}
const result = { ...summary(latencies), messages }
if (byUrl.length > 0) result.byUrl = byUrl.map(summary)
process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0))
