import { HttpApp, HttpLayerRouter, type HttpServerRequest, type HttpServerResponse } from "@effect/platform"
import { createMcpHandler, validateOriginHeader } from "@modelcontextprotocol/server"
import { Effect, Option, Runtime } from "effect"
import { AppConfig } from "../AppConfig.js"
import { jsonRpcError, MCP_PATH } from "./JsonRpc.js"
import { makeMcpServerFactory } from "./Server.js"

export { MCP_PATH } from "./JsonRpc.js"

type Guard = (request: HttpServerRequest.HttpServerRequest) => Option.Option<HttpServerResponse.HttpServerResponse>

/** Browsers send Origin; a page from another site must not reach a local server (DNS rebinding, CSRF). */
const originGuard =
  (allowed: ReadonlyArray<string>): Guard =>
  (request) => {
    if (allowed.includes("*")) return Option.none()
    const result = validateOriginHeader(request.headers["origin"], [...allowed])
    return result.ok
      ? Option.none()
      : Option.some(jsonRpcError(403, `Forbidden: ${result.message}; allowed origins are set by MCP_ALLOWED_ORIGINS`))
  }

/** Stateless Streamable HTTP: every exchange is one POST; there is no session stream to GET or DELETE. */
const methodGuard: Guard = (request) =>
  request.method === "POST"
    ? Option.none()
    : Option.some(
        jsonRpcError(405, `Method ${request.method} not allowed: POST JSON-RPC messages to ${MCP_PATH}`, {
          allow: "POST"
        })
      )

/**
 * MCP over Streamable HTTP at /mcp, on the same router (and so behind the same global middleware: API keys when
 * API_KEYS is set, the inbound rate limit, error normalization) as the REST API. Requires Exchange, ResponseCache
 * and AppConfig.
 */
export const McpRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const factory = yield* makeMcpServerFactory
    const runtime = yield* Effect.runtime<never>()
    const report = (error: Error) =>
      Runtime.runFork(runtime)(
        Effect.logDebug("mcp request rejected or failed", error.message).pipe(Effect.annotateLogs({ component: "mcp" }))
      )
    const handler = createMcpHandler(factory, { onerror: report })
    yield* Effect.addFinalizer(() => Effect.promise(() => handler.close()))
    const serve = HttpApp.fromWebHandler((request) => handler.fetch(request)).pipe(
      Effect.catchAll((error) =>
        Effect.logError("mcp handler failed", error).pipe(
          Effect.annotateLogs({ component: "mcp" }),
          Effect.as(jsonRpcError(500, "Internal server error"))
        )
      )
    )
    const guards: ReadonlyArray<Guard> = [originGuard(config.mcpAllowedOrigins), methodGuard]
    yield* router.add("*", MCP_PATH, (request) =>
      Option.match(Option.firstSomeOf(guards.map((guard) => guard(request))), {
        onNone: () => serve,
        onSome: Effect.succeed
      })
    )
  })
)
