import { Client, StreamableHTTPClientTransport, type Tool } from "@modelcontextprotocol/client"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startEmulator, type Emulator } from "../../src/emulator/index.js"
import { clientSuite, overHttp, toolClient } from "./clientSuite.js"
import {
  EMULATOR_T0,
  emulatorServices,
  expectValidResult,
  metaOf,
  mockServices,
  startHttp,
  TOOL_NAMES
} from "./support.js"

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
}

const post = (url: string, headers: Record<string, string> = {}, body: unknown = INITIALIZE) =>
  fetch(`${url}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify(body)
  })

const connect = async (url: string, options: { modern?: boolean; headers?: Record<string, string> } = {}) => {
  const client = new Client(
    { name: "http-test", version: "1.0.0" },
    options.modern === true ? { versionNegotiation: { mode: "auto" } } : {}
  )
  const transport = new StreamableHTTPClientTransport(
    new URL(`${url}/mcp`),
    options.headers === undefined ? {} : { requestInit: { headers: options.headers } }
  )
  await client.connect(transport)
  return client
}

describe("MCP over Streamable HTTP on loopback, against the exchange emulator", () => {
  let emulator: Emulator
  let server: { url: string; close: () => Promise<void> }
  let client: Client
  let tools: ReadonlyArray<Tool>

  beforeAll(async () => {
    emulator = await startEmulator({ clock: "frozen", startTime: EMULATOR_T0 })
    server = await startHttp(emulatorServices(emulator.env()))
    client = await connect(server.url)
    tools = (await client.listTools()).tools
  })

  afterAll(async () => {
    await client.close()
    await server.close()
    await emulator.close()
  })

  it("lists the tools and answers calls that match the model", async () => {
    expect(tools.map((t) => t.name)).toEqual([...TOOL_NAMES])
    const expected = emulator.model.ticker24h("binance", "BTC/USDT")
    const ticker = expectValidResult(
      tools.find((t) => t.name === "get_ticker"),
      await client.callTool({ name: "get_ticker", arguments: { exchange: "binance", symbol: "BTC/USDT" } })
    )
    expect(ticker).toMatchObject({ last: expected.last, bid: expected.bid, ask: expected.ask, timestamp: EMULATOR_T0 })
  })

  it("REST and MCP share the cache: a REST call then an MCP call for the same ticker make one upstream request", async () => {
    emulator.resetCounts() // binance's markets are loaded by now; SOL/USDT was never asked for
    const rest = await fetch(`${server.url}/v1/markets/ticker?exchange=binance&symbol=SOL/USDT`)
    expect(rest.status).toBe(200)
    expect(rest.headers.get("x-cache")).toBe("MISS")
    const restBody = (await rest.json()) as { last: number }
    const mcp = expectValidResult(
      tools.find((t) => t.name === "get_ticker"),
      await client.callTool({ name: "get_ticker", arguments: { exchange: "binance", symbol: "sol-usdt" } })
    )
    expect(metaOf(mcp).cached).toBe(true)
    expect(mcp["last"]).toBe(restBody.last)
    expect(emulator.requestCount("binance", "/api/v3/ticker/24hr")).toBe(1)
  })

  it("and the other way round: MCP first, then REST is a cache hit", async () => {
    emulator.resetCounts()
    const mcp = expectValidResult(
      tools.find((t) => t.name === "get_orderbook"),
      await client.callTool({ name: "get_orderbook", arguments: { exchange: "binance", symbol: "BTC/USDT", limit: 5 } })
    )
    expect(metaOf(mcp).cached).toBe(false)
    const rest = await fetch(`${server.url}/v1/markets/orderbook?exchange=binance&symbol=BTC/USDT&limit=5`)
    expect(rest.headers.get("x-cache")).toBe("HIT")
    const body = (await rest.json()) as { bids: Array<{ price: number; amount: number }> }
    expect(body.bids.map((l) => [l.price, l.amount])).toEqual(mcp["bids"])
    expect(emulator.requestCount("binance", "/api/v3/depth")).toBe(1)
  })

  it("serves protocol revision 2026-07-28 clients too (server/discover, stateless)", async () => {
    const modern = await connect(server.url, { modern: true })
    try {
      expect(modern.getProtocolEra()).toBe("modern")
      expect(modern.getInstructions()).toContain("BASE/QUOTE")
      const listed = (await modern.listTools()).tools
      expect(listed.map((t) => t.name)).toEqual([...TOOL_NAMES])
      const result = await modern.callTool({ name: "list_exchanges", arguments: {} })
      expectValidResult(
        listed.find((t) => t.name === "list_exchanges"),
        result
      )
    } finally {
      await modern.close()
    }
  })

  it("GET and DELETE are 405 (no session streams); only POST reaches the handler", async () => {
    for (const method of ["GET", "DELETE", "PUT"]) {
      const response = await fetch(`${server.url}/mcp`, { method, headers: { accept: "text/event-stream" } })
      expect(response.status, method).toBe(405)
      expect(response.headers.get("allow")).toBe("POST")
      expect(response.headers.get("content-type")).toContain("application/json")
      const body = (await response.json()) as { jsonrpc: string; error: { code: number; message: string } }
      expect(body).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32000 } })
      expect(body.error.message).toContain("POST")
    }
  })

  it("a foreign Origin is refused with 403 JSON; localhost origins and origin-less clients pass", async () => {
    const foreign = await post(server.url, { origin: "https://evil.example" })
    expect(foreign.status).toBe(403)
    expect(foreign.headers.get("content-type")).toContain("application/json")
    const body = (await foreign.json()) as { error: { message: string } }
    expect(body.error.message).toContain("evil.example")
    expect((await post(server.url, { origin: "null" })).status).toBe(403)
    expect((await post(server.url, { origin: "http://localhost:5173" })).status).toBe(200)
    expect((await post(server.url, { origin: "http://127.0.0.1:8000" })).status).toBe(200)
    expect((await post(server.url)).status).toBe(200)
  })
})

describe("the client suite with the SDK 2.x client over Streamable HTTP", () => {
  clientSuite(
    overHttp(async (url) => {
      const client = await connect(url)
      return { client: toolClient(client), close: () => client.close() }
    })
  )
})

describe("/mcp behind the server's API keys and origin allowlist", () => {
  let server: { url: string; close: () => Promise<void> }

  beforeAll(async () => {
    const services = await Effect.runPromise(
      mockServices({ API_KEYS: "key-one,key-two", MCP_ALLOWED_ORIGINS: "https://app.example.com:8443" })
    )
    server = await startHttp(services.layer)
  })

  afterAll(() => server.close())

  it("without a valid key: 401; with one (X-API-Key or Bearer) the client works", async () => {
    const missing = await post(server.url)
    expect(missing.status).toBe(401)
    expect(await missing.json()).toMatchObject({ jsonrpc: "2.0", error: { data: { code: "unauthorized" } } })
    expect((await post(server.url, { "x-api-key": "wrong" })).status).toBe(401)
    for (const headers of [{ "x-api-key": "key-one" }, { authorization: "Bearer key-two" }]) {
      const client = await connect(server.url, { headers })
      try {
        const result = await client.callTool({
          name: "get_ticker",
          arguments: { exchange: "binance", symbol: "BTC/USDT" }
        })
        expect(result.isError ?? false).toBe(false)
      } finally {
        await client.close()
      }
    }
  })

  it("MCP_ALLOWED_ORIGINS replaces the localhost default", async () => {
    const key = { "x-api-key": "key-one" }
    expect((await post(server.url, { ...key, origin: "https://app.example.com" })).status).toBe(200)
    expect((await post(server.url, { ...key, origin: "http://localhost:3000" })).status).toBe(403)
  })
})
