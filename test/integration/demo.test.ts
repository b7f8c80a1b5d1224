import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type ChildProcess, spawn } from "node:child_process"
import { freePort } from "../support/redis.js"

const waitFor = async (url: string, deadline: number): Promise<Response> => {
  for (;;) {
    try {
      return await fetch(url)
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

describe("npm run demo", () => {
  let child: ChildProcess
  let port: number
  let stdout = ""

  beforeAll(async () => {
    port = await freePort()
    child = spawn(process.execPath, ["--import", "tsx", "src/demoMain.ts"], {
      // HOST unset: the default listens on IPv4 and IPv6
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "HOST")),
        PORT: String(port),
        REDIS_ENABLED: "false"
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    await waitFor(`http://127.0.0.1:${port}/v1/health`, Date.now() + 20_000)
  }, 30_000)

  afterAll(async () => {
    if (child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once("exit", resolve))
    child.kill("SIGTERM")
    await exited
  })

  it("serves market data of the three simulated exchanges with no network", async () => {
    for (const [exchange, symbol] of [
      ["binance", "BTC/USDT"],
      ["kraken", "ETH/USD"],
      ["coinbaseexchange", "SOL/USD"]
    ]) {
      const res = await fetch(
        `http://127.0.0.1:${port}/v1/markets/ticker?exchange=${exchange}&symbol=${encodeURIComponent(symbol ?? "")}`
      )
      expect(res.status).toBe(200)
      const body = (await res.json()) as { exchange: string; symbol: string; last: number }
      expect([body.exchange, body.symbol]).toEqual([exchange, symbol])
      expect(body.last).toBeGreaterThan(0)
    }
    const exchanges = (await (await fetch(`http://127.0.0.1:${port}/v1/exchanges`)).json()) as {
      exchanges: ReadonlyArray<{ id: string }>
    }
    expect(exchanges.exchanges.map((e) => e.id)).toEqual(["binance", "kraken", "coinbaseexchange"])
  }, 30_000)

  it("the default HOST answers over IPv6 and IPv4 alike", async () => {
    for (const host of ["[::1]", "127.0.0.1"]) {
      expect((await fetch(`http://${host}:${port}/v1/health`)).status).toBe(200)
    }
  })

  it("says where it listens in a plain message with URLs a person can click", () => {
    const url = `http://localhost:${port}`
    const messages = stdout
      .trim()
      .split("\n")
      .flatMap((line) => {
        const parsed: unknown = JSON.parse(line)
        return typeof parsed === "object" && parsed !== null && "message" in parsed ? [parsed.message] : []
      })
    expect(messages).toContain(`listening on ${url} (API docs ${url}/docs, dashboard ${url}/)`)
  })

  it("logs JSON lines only", () => {
    const lines = stdout
      .trim()
      .split("\n")
      .filter((l) => l.length > 0)
    expect(lines.length).toBeGreaterThan(0)
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow()
  })
})
