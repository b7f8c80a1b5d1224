import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Option, Schema } from "effect"
import { pathOf } from "../Http/RouteTable.js"

export const MCP_PATH = "/mcp"

/** Answers outside the MCP handler, in the JSON-RPC error shape MCP clients read. */
export const jsonRpcError = (
  status: number,
  message: string,
  headers: Record<string, string> = {},
  data?: Readonly<Record<string, unknown>>
) =>
  HttpServerResponse.unsafeJson(
    {
      jsonrpc: "2.0",
      error: data === undefined ? { code: -32000, message } : { code: -32000, message, data },
      id: null
    },
    { status, headers: { "cache-control": "no-store", ...headers } }
  )

const RestErrorBody = Schema.parseJson(
  Schema.Struct({ code: Schema.String, message: Schema.String, retryAfter: Schema.optional(Schema.Number) })
)
const decodeRestErrorBody = Schema.decodeUnknownOption(RestErrorBody)
const textDecoder = new TextDecoder()

/** A REST error answer (`{code, message}`) as a JSON-RPC error with the same status and headers; others as they are. */
const restErrorAsJsonRpc = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  if (response.status < 400 || response.body._tag !== "Uint8Array") return response
  return Option.match(decodeRestErrorBody(textDecoder.decode(response.body.body)), {
    onNone: () => response,
    onSome: ({ code, message, retryAfter }) =>
      jsonRpcError(
        response.status,
        message,
        response.headers,
        retryAfter === undefined ? { code } : { code, retryAfter }
      )
  })
}

/**
 * For the global middleware: what it answers on /mcp before the MCP handler runs (401 without a valid API key, 429
 * over the rate limit, 500) becomes a JSON-RPC error, the shape MCP clients read; other routes are untouched.
 */
export const mcpErrorsAsJsonRpc = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    pathOf(request.url) === MCP_PATH ? Effect.map(app, restErrorAsJsonRpc) : app
  )
