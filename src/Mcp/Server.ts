import { McpServer, type ToolAnnotations } from "@modelcontextprotocol/server"
import { Effect, Runtime } from "effect"
import { NAME, VERSION } from "../Version.js"
import { makeMcpTools } from "./Tools.js"

export const INSTRUCTIONS = [
  "Read-only cryptocurrency market data from the exchanges list_exchanges returns (ids such as binance, kraken).",
  "Symbols are unified BASE/QUOTE, e.g. BTC/USDT or ETH/USD. Quote currencies differ between exchanges: when a " +
    "symbol is not found, use search_markets (and its nextCursor as cursor to page) to find the exact one.",
  "get_ohlcv intervals look like 1m, 5m, 15m, 1h, 4h, 1d (describe_exchange lists an exchange's own); times are " +
    "milliseconds since epoch, and since also accepts ISO 8601. Page forward with since = nextSince.",
  "Every result carries meta: asOf (when fetched upstream), cached, ageMs, truncated. Results are capped near 80k " +
    "characters; when truncated, ask for less. Errors carry code, message, retryable and hint: follow the hint."
].join("\n")

const READ_ONLY: ToolAnnotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: true
}

/**
 * A factory of MCP server instances over the shared services. The HTTP entry builds one instance per request and
 * the stdio entry one per connection; the tools, their schemas and the runtime are built once.
 */
export const makeMcpServerFactory = Effect.gen(function* () {
  const tools = yield* makeMcpTools
  const runtime = yield* Effect.runtime<never>()
  const run = Runtime.runPromise(runtime)
  return (): McpServer => {
    const server = new McpServer(
      { name: NAME, version: VERSION, title: "Crypto market data" },
      { instructions: INSTRUCTIONS }
    )
    for (const tool of tools) {
      server.registerTool(
        tool.name,
        {
          title: tool.title,
          description: tool.description,
          inputSchema: tool.inputSchema,
          outputSchema: tool.outputSchema,
          annotations: { title: tool.title, ...READ_ONLY }
        },
        (args, ctx) => run(tool.call(args), { signal: ctx.mcpReq.signal })
      )
    }
    return server
  }
})
