import { HttpLayerRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import {
  Client,
  InMemoryTransport,
  type CallToolResult,
  type JsonSchemaType,
  type Tool
} from "@modelcontextprotocol/client"
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/client/validators/ajv"
import { Effect, Layer, ManagedRuntime, type Ref } from "effect"
import { createServer } from "node:http"
import { expect } from "vitest"
import { AppConfig } from "../../src/AppConfig.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import type { ResponseCache } from "../../src/Cache/ResponseCache.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import type { Exchange } from "../../src/Exchange/Exchange.js"
import { makeExchangeLive } from "../../src/Exchange/Live.js"
import { AppRoutes } from "../../src/Http.js"
import { McpRoutes } from "../../src/Mcp/Http.js"
import { makeMcpServerFactory } from "../../src/Mcp/Server.js"
import { makeMockExchange } from "../support/mockExchange.js"

export const TOOL_NAMES = [
  "list_exchanges",
  "describe_exchange",
  "search_markets",
  "get_ticker",
  "get_tickers",
  "get_orderbook",
  "get_ohlcv",
  "get_trades",
  "compare_prices"
] as const

/** Exchange + caches + config, with the mock Exchange; `calls` counts upstream calls by method. */
export const mockServices = (env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const mock = yield* makeMockExchange
    const layer = Layer.mergeAll(
      mock.layer,
      ResponseCacheLive.pipe(Layer.provide(MemoryKvCacheLive({ maxEntries: 1000 })))
    ).pipe(Layer.provideMerge(AppConfig.fromRecord({ REDIS_ENABLED: "false", RATE_LIMIT_ENABLED: "false", ...env })))
    return { layer, calls: mock.calls }
  })

/** The real Exchange service (ccxt) pointed at the emulator. */
export const emulatorServices = (emulatorEnv: Record<string, string>, env: Record<string, string> = {}) =>
  Layer.mergeAll(
    makeExchangeLive(),
    ResponseCacheLive.pipe(Layer.provide(MemoryKvCacheLive({ maxEntries: 1000 })))
  ).pipe(
    Layer.provideMerge(
      AppConfig.fromRecord({
        ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
        REDIS_ENABLED: "false",
        CCXT_THROTTLE: "false",
        RATE_LIMIT_ENABLED: "false",
        EXCHANGE_TIMEOUT: "5",
        ...emulatorEnv,
        ...env
      })
    )
  )

export type Services = Layer.Layer<AppConfig | Exchange | ResponseCache, unknown>

/** An official MCP client connected in memory to a server instance built over `services`. */
export const connectInMemory = async (services: Services) => {
  const runtime = ManagedRuntime.make(services)
  const factory = await runtime.runPromise(makeMcpServerFactory)
  const server = factory()
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair()
  await server.connect(serverTransport)
  const client = new Client({ name: "test-client", version: "1.0.0" })
  await client.connect(clientTransport)
  return {
    client,
    runtime,
    close: async () => {
      await client.close()
      await server.close()
      await runtime.dispose()
    }
  }
}

/** REST and MCP on one router over a real loopback socket, as the server composes them. */
export const httpServer = (services: Services) =>
  HttpLayerRouter.serve(Layer.mergeAll(AppRoutes, McpRoutes), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(services),
    Layer.provideMerge(MemoryKvCacheLive({ maxEntries: 1000 })),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))
  )

export const startHttp = async (services: Services) => {
  const runtime = ManagedRuntime.make(httpServer(services))
  const address = await runtime.runPromise(Effect.map(HttpServer.HttpServer, (s) => s.address))
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  return { runtime, url: `http://127.0.0.1:${address.port}`, close: () => runtime.dispose() }
}

const validator = new AjvJsonSchemaValidator()

/** structuredContent checked against the tool's own outputSchema, and the text mirroring it exactly. */
export const expectValidResult = (tool: Tool | undefined, result: CallToolResult): Record<string, unknown> => {
  expect(tool?.outputSchema).toBeDefined()
  expect(result.isError ?? false).toBe(false)
  const structured = result.structuredContent as Record<string, unknown>
  const check = validator.getValidator((tool?.outputSchema ?? {}) as JsonSchemaType)(structured)
  expect(check.valid ? "" : (check.errorMessage ?? "invalid")).toBe("")
  expect(result.content).toHaveLength(1)
  const [content] = result.content
  expect(content?.type).toBe("text")
  expect(content?.type === "text" ? JSON.parse(content.text) : undefined).toEqual(structured)
  return structured
}

/** An error result: isError, {code, message, retryable, hint} in structuredContent and, identically, in the text. */
export const expectToolError = (result: CallToolResult, code: string) => {
  expect(result.isError).toBe(true)
  const structured = result.structuredContent as {
    code: string
    message: string
    retryable: boolean
    hint: string
    suggestions?: ReadonlyArray<string>
    retryAfter?: number
  }
  expect(structured.code).toBe(code)
  expect(typeof structured.message).toBe("string")
  expect(typeof structured.retryable).toBe("boolean")
  expect(structured.hint.length).toBeGreaterThan(0)
  const [content] = result.content
  expect(content?.type === "text" ? JSON.parse(content.text) : undefined).toEqual(structured)
  return structured
}

export const metaOf = (structured: Record<string, unknown>) =>
  structured["meta"] as { asOf: string; cached: boolean; ageMs: number; truncated: boolean; notice?: string }

export type CallCounts = Ref.Ref<Record<string, number>>

/** 10:17:23.456 UTC: mid-minute, so the newest candle and the 24 h window edges are partial. */
export const EMULATOR_T0 = Date.UTC(2024, 0, 1, 10, 17, 23, 456)

export const ohlcvRows = (
  candles: ReadonlyArray<{ timestamp: number; open: number; high: number; low: number; close: number; volume: number }>
) => candles.map((c) => [c.timestamp, c.open, c.high, c.low, c.close, c.volume])
