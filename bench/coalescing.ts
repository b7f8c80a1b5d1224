import { request } from "node:http"
import { startEmulator } from "../src/emulator/index.js"
import { startServer } from "./lib.js"

const get = (url: string) =>
  new Promise<number>((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
    })
    req.on("error", reject)
    req.end()
  })

/** Benchmark 2: 1,000 concurrent cold requests for one ticker, counted at the emulator. */
export const coalescing = async (concurrency = 1000) => {
  const emulator = await startEmulator({ clock: "frozen" })
  const server = await startServer({
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
    REDIS_ENABLED: "false",
    RATE_LIMIT_ENABLED: "false",
    CCXT_THROTTLE: "false"
  })
  try {
    emulator.resetCounts()
    const statuses = await Promise.all(
      Array.from({ length: concurrency }, () => get(`${server.url}/v1/markets/ticker?exchange=binance&symbol=ETH/USDT`))
    )
    return {
      concurrency,
      ok: statuses.filter((s) => s === 200).length,
      tickerRequests: emulator.requestCount("binance", "/api/v3/ticker/24hr"),
      marketLoads: emulator.requestCount("binance", "/api/v3/exchangeInfo")
    }
  } finally {
    await server.stop()
    await emulator.close()
  }
}
