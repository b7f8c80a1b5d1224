import { Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import { createServer } from "node:net"
import { createInterface } from "node:readline"
import { describe, expect, it } from "vitest"
import { startEmulator } from "../../src/emulator/index.js"
import { Exchange } from "../../src/Exchange/Exchange.js"
import { ofType, openSse, openWs } from "./clients.js"
import { startStreamServer } from "./server.js"
import { makeMockExchange } from "../support/mockExchange.js"

/** The mock exchange (one ticker update a second), whose REST ticker for ETH/USDT takes 800 ms. */
const SlowTickerExchange = Layer.effect(
  Exchange,
  Effect.gen(function* () {
    const base = yield* Effect.provide(Exchange, (yield* makeMockExchange).layer)
    return {
      ...base,
      ticker: (market) =>
        market.symbol === "ETH/USDT"
          ? Effect.zipRight(Effect.sleep("800 millis"), base.ticker(market))
          : base.ticker(market)
    }
  })
)

describe("shutdown", () => {
  it("ends SSE streams, closes WebSockets with 1001 and lets in-flight requests finish", async () => {
    const server = await startStreamServer({ STREAM_HEARTBEAT_INTERVAL: "30" }, SlowTickerExchange)
    const query = "exchange=binance&symbol=BTC/USDT"
    const sse = await openSse(`${server.http}/v1/stream/ticker?${query}`)
    const single = await openWs(`${server.ws}/ws/ticker?${query}`)
    const multi = await openWs(`${server.ws}/ws`)
    multi.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol: "BTC/USDT" })
    await Promise.all([sse.next("ticker"), single.next(ofType("ticker")), multi.next(ofType("ticker"))])

    const inflight = fetch(`${server.http}/v1/markets/ticker?exchange=binance&symbol=ETH/USDT`)
    await new Promise((resolve) => setTimeout(resolve, 150))
    const started = Date.now()
    await server.close()
    // well before the 3 s drain deadline: nothing had to be cut
    expect(Date.now() - started).toBeLessThan(3000)

    const response = await inflight
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ symbol: "ETH/USDT", last: 2500 })
    await sse.ended
    expect(sse.frames.at(-1)?.data).toMatchObject({
      event_type: "status",
      status: "closing",
      reason: "server shutting down"
    })
    expect(await single.closed).toEqual({ code: 1001, reason: "server shutting down" })
    expect(await multi.closed).toEqual({ code: 1001, reason: "server shutting down" })
  })
})

/** A port nothing listens on right now (PORT=0 is not a valid setting). */
const freePort = () =>
  new Promise<number>((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

describe("the shutdown deadline", () => {
  it("holds while a request waits on a slow upstream: the process exits within SHUTDOWN_TIMEOUT and a little", async () => {
    const emulator = await startEmulator()
    // every ticker takes far longer than the deadline (and than EXCHANGE_TIMEOUT)
    emulator.inject({ kind: "delay", exchange: "binance", endpoint: "/api/v3/ticker", delayMs: 60_000 })
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: {
        ...process.env,
        ...emulator.env(),
        ENABLED_EXCHANGES: "binance",
        REDIS_ENABLED: "false",
        DATABASE_URL: "none",
        CCXT_THROTTLE: "false",
        HOST: "127.0.0.1",
        PORT: String(await freePort()),
        EXCHANGE_TIMEOUT: "30",
        SHUTDOWN_TIMEOUT: "2",
        LOG_LEVEL: "info"
      },
      stdio: ["ignore", "pipe", "inherit"]
    })
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    try {
      const lines = createInterface({ input: child.stdout })
      const port = await new Promise<number>((resolve, reject) => {
        lines.on("line", (line) => {
          const match = /"port":(\d+)/.exec(line)
          if (line.includes("listening") && match !== null) resolve(Number(match[1]))
        })
        void exited.then(() => reject(new Error("the server exited before listening")))
      })
      const stuck = fetch(`http://127.0.0.1:${port}/v1/markets/ticker?exchange=binance&symbol=BTC/USDT`).then(
        (response) => response.status,
        () => "cut" as const
      )
      // the request is waiting on the emulator
      while (
        emulator.requestCount("binance", "/api/v3/ticker") + emulator.requestCount("binance", "/api/v3/ticker/24hr") ===
        0
      ) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      const signalled = Date.now()
      child.kill("SIGTERM")
      await exited
      const took = Date.now() - signalled
      // SHUTDOWN_TIMEOUT (2 s) plus SHUTDOWN_SLACK (0.5 s) plus process start-to-exit costs; 13.6 s before
      expect(took).toBeLessThan(3500)
      expect(await stuck).toBe("cut")
    } finally {
      child.kill("SIGKILL")
      await emulator.close()
    }
  }, 90_000)
})
