import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { clientSuite, overHttp, toolClient } from "./clientSuite.js"
import { mockServices, startHttp } from "./support.js"

/** The SDK most MCP hosts are built on today: it validates structuredContent with Ajv's draft-07 class. */
const connect = async (url: string, headers?: Record<string, string>) => {
  const client = new Client({ name: "sdk1-http-test", version: "1.0.0" })
  const transport = new StreamableHTTPClientTransport(
    new URL(`${url}/mcp`),
    headers === undefined ? {} : { requestInit: { headers } }
  )
  await client.connect(transport)
  return client
}

describe("SDK 1.x client over Streamable HTTP, against ccxt and the exchange emulator", () => {
  clientSuite(
    overHttp(async (url) => {
      const client = await connect(url)
      return { client: toolClient(client), close: () => client.close() }
    })
  )
})

interface JsonRpcErrorBody {
  readonly jsonrpc: string
  readonly id: null
  readonly error: { readonly code: number; readonly message: string; readonly data?: Record<string, unknown> }
}

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
}

describe("/mcp answers 401 and 429 as JSON-RPC errors; REST keeps its own error bodies", () => {
  let server: { url: string; close: () => Promise<void> }
  const post = (headers: Record<string, string> = {}) =>
    fetch(`${server.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body: JSON.stringify(INITIALIZE)
    })

  beforeAll(async () => {
    const services = await Effect.runPromise(
      mockServices({
        API_KEYS: "key-one,key-two",
        RATE_LIMIT_ENABLED: "true",
        RATE_LIMIT_REQUESTS: "5",
        RATE_LIMIT_WINDOW: "600"
      })
    )
    server = await startHttp(services.layer)
  })

  afterAll(() => server.close())

  it("401 without a key or with a wrong one, with WWW-Authenticate; the SDK 1.x client reports it", async () => {
    for (const headers of [{}, { "x-api-key": "wrong" }]) {
      const response = await post(headers)
      expect(response.status).toBe(401)
      expect(response.headers.get("content-type")).toContain("application/json")
      expect(response.headers.get("www-authenticate")).toBe('Bearer realm="mcp-crypto-data-server"')
      const body = (await response.json()) as JsonRpcErrorBody
      expect(body).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32000, data: { code: "unauthorized" } } })
      expect(body.error.message).toContain("API key")
    }
    await expect(connect(server.url)).rejects.toThrow(/An API key is required/)
    const rest = await fetch(`${server.url}/v1/exchanges`)
    expect(rest.status).toBe(401)
    expect(await rest.json()).toMatchObject({ _tag: "Unauthorized", code: "unauthorized" })
  })

  it("429 over the inbound rate limit, with Retry-After and RateLimit headers", async () => {
    const key = { "x-api-key": "key-two" }
    const statuses: Array<number> = []
    let limited: Response | undefined
    for (let i = 0; i < 8 && limited === undefined; i++) {
      const response = await post(key)
      statuses.push(response.status)
      if (response.status === 429) limited = response
      else await response.body?.cancel()
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429])
    expect(limited?.headers.get("content-type")).toContain("application/json")
    expect(Number(limited?.headers.get("retry-after"))).toBeGreaterThan(0)
    expect(limited?.headers.get("ratelimit-limit")).toBe("5")
    expect(limited?.headers.get("ratelimit-remaining")).toBe("0")
    const body = (await limited?.json()) as JsonRpcErrorBody
    expect(body).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32000, data: { code: "rate_limited" } } })
    expect(body.error.data?.["retryAfter"]).toBe(Number(limited?.headers.get("retry-after")))
    expect(body.error.message).toContain("Rate limit of 5 requests")
  })
})
