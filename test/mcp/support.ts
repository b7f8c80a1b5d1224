import { HttpLayerRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Client, InMemoryTransport } from "@modelcontextprotocol/client"
import { Effect, Layer, ManagedRuntime, type Ref } from "effect"
import { createServer } from "node:http"
import { createRequire } from "node:module"
import { expect } from "vitest"
import { AppConfig } from "../../src/AppConfig.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import type { ResponseCache } from "../../src/Cache/ResponseCache.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { MarketQueriesLive } from "../../src/Markets/Queries.js"
import type { Exchange } from "../../src/Exchange/Exchange.js"
import { makeExchangeLive } from "../../src/Exchange/Live.js"
import { AppRoutes } from "../../src/Routes.js"
import { McpRoutes } from "../../src/Mcp/Http.js"
import type { ToolError } from "../../src/Mcp/Result.js"
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
  const runtime = ManagedRuntime.make(MarketQueriesLive.pipe(Layer.provideMerge(services)))
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
    Layer.provide(MarketQueriesLive),
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

interface AjvValidate {
  (data: unknown): boolean
  readonly errors?: ReadonlyArray<{ readonly instancePath: string; readonly message?: string }> | null
}
type AjvClass = new (options: Record<string, unknown>) => { compile: (schema: object) => AjvValidate }

/**
 * Ajv 8 as the SDK 1.x client has it (the top-level ajv is 6): the draft-07 class most MCP hosts validate with, and
 * the 2020-12 class. Strict mode makes either refuse a keyword it does not know, such as 2020-12's prefixItems.
 */
const ajvOfSdk1 = createRequire(createRequire(import.meta.url).resolve("@modelcontextprotocol/sdk/validation/ajv"))
const DRAFTS: ReadonlyArray<readonly [string, AjvClass]> = [
  ["draft-07", (ajvOfSdk1("ajv") as { default: AjvClass }).default],
  ["2020-12", (ajvOfSdk1("ajv/dist/2020") as { default: AjvClass }).default]
]
const validators = DRAFTS.map(([draft, Ajv]) => [draft, new Ajv({ strict: true, allErrors: true })] as const)

/** The schema compiled by both drafts; validate answers the errors of each ("" when valid). */
export const compileBothDrafts = (schema: object) => {
  const compiled = validators.map(([draft, ajv]) => [draft, ajv.compile(schema)] as const)
  return (value: unknown): Record<string, string> =>
    Object.fromEntries(
      compiled.map(([draft, validate]) => [
        draft,
        validate(value) ? "" : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`).join("; ")
      ])
    )
}

const compiledSchemas = new WeakMap<object, ReturnType<typeof compileBothDrafts>>()
const validateBothDrafts = (schema: object, value: unknown) => {
  let validate = compiledSchemas.get(schema)
  if (validate === undefined) {
    validate = compileBothDrafts(schema)
    compiledSchemas.set(schema, validate)
  }
  return validate(value)
}

/** What both SDK generations give for a listed tool and a tool result. */
export interface ToolLike {
  readonly name: string
  readonly inputSchema: object
  readonly outputSchema?: object | undefined
}
export interface ResultLike {
  readonly content?: unknown
  readonly structuredContent?: unknown
  readonly isError?: unknown
}

const textOf = (result: ResultLike): string => {
  const content = result.content as ReadonlyArray<{ type: string; text?: string }>
  expect(content).toHaveLength(1)
  expect(content[0]?.type).toBe("text")
  return content[0]?.text ?? ""
}

/**
 * structuredContent valid against the tool's own outputSchema under draft-07 and 2020-12 alike, and the text
 * mirroring it exactly.
 */
export const expectValidResult = (tool: ToolLike | undefined, result: ResultLike): Record<string, unknown> => {
  expect(tool?.outputSchema).toBeDefined()
  expect(result.isError ?? false).toBe(false)
  const structured = result.structuredContent as Record<string, unknown>
  expect(validateBothDrafts(tool?.outputSchema ?? {}, structured)).toEqual({ "draft-07": "", "2020-12": "" })
  expect(JSON.parse(textOf(result))).toEqual(structured)
  return structured
}

/**
 * An error result: isError, {code, message, retryable, hint} as JSON in the text, and no structuredContent (which
 * SDK 1.x clients would check against the outputSchema).
 */
export const expectToolError = (result: ResultLike, code: string): ToolError => {
  expect(result.isError).toBe(true)
  expect(result.structuredContent).toBeUndefined()
  const body = JSON.parse(textOf(result)) as ToolError
  expect(body.code).toBe(code)
  expect(typeof body.message).toBe("string")
  expect(typeof body.retryable).toBe("boolean")
  expect(body.hint.length).toBeGreaterThan(0)
  return body
}

export const metaOf = (structured: Record<string, unknown>) =>
  structured["meta"] as { asOf: string; cached: boolean; ageMs: number; truncated: boolean; notice?: string }

export type CallCounts = Ref.Ref<Record<string, number>>

/** 10:17:23.456 UTC: mid-minute, so the newest candle and the 24 h window edges are partial. */
export const EMULATOR_T0 = Date.UTC(2024, 0, 1, 10, 17, 23, 456)

export const ohlcvRows = (
  candles: ReadonlyArray<{ timestamp: number; open: number; high: number; low: number; close: number; volume: number }>
) => candles.map((c) => [c.timestamp, c.open, c.high, c.low, c.close, c.volume])
