// The practical limit of this machine for a fan-out: a bare `ws` server broadcasting one ticker-shaped JSON payload,
// stamped with the current time, to every client every PUSH_MS.
import process from "node:process"
import { setInterval } from "node:timers"
import { WebSocketServer } from "ws"

const wss = new WebSocketServer({ port: Number(process.env.PORT), host: "127.0.0.1", perMessageDeflate: false })
const template = {
  event_type: "ticker",
  exchange: "binance",
  symbol: "BTC/USDT",
  bid: 46059.12,
  ask: 46059.15,
  last: 46059.13,
  price_change_percent: 0
}
setInterval(
  () => {
    const payload = JSON.stringify({ ...template, timestamp: Date.now() })
    for (const client of wss.clients) client.send(payload)
  },
  Number(process.env.PUSH_MS ?? 250)
)
