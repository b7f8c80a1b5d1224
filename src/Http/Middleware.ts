import { HttpLayerRouter, HttpServerRequest, type HttpServerResponse } from "@effect/platform"
import { Cause, Effect, Layer, Option, Schema } from "effect"
import { InternalError, InvalidParameter, RouteNotFound } from "../Domain/Errors.js"
import { mcpErrorsAsJsonRpc } from "../Mcp/JsonRpc.js"
import { AppConfig } from "../AppConfig.js"
import { corsMiddleware, makeCorsPolicy } from "./Cors.js"
import { errorResponse } from "./Responses.js"
import { HotCache } from "./HotCache.js"
import { observe } from "./Observability.js"
import { RateLimiterLive } from "./RateLimit.js"
import { pathOf } from "./RouteTable.js"
import { makeAdmission } from "./Security.js"

const DecodeErrorBody = Schema.parseJson(
  Schema.Struct({
    _tag: Schema.Literal("HttpApiDecodeError"),
    issues: Schema.Array(
      Schema.Struct({ path: Schema.Array(Schema.Union(Schema.String, Schema.Number)), message: Schema.String })
    )
  })
)
const decodeDecodeErrorBody = Schema.decodeUnknownOption(DecodeErrorBody)
const textDecoder = new TextDecoder()

/** HttpApi answers bad parameters with its own error shape; clients get ours: a stable code and one clear message. */
const toInvalidParameter = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  if (response.status !== 400 || response.body._tag !== "Uint8Array") return response
  return Option.match(decodeDecodeErrorBody(textDecoder.decode(response.body.body)), {
    onNone: () => response,
    onSome: ({ issues }) => {
      const issue = issues[0]
      const parameter = issue?.path[0] === undefined ? undefined : String(issue.path[0])
      const message =
        issue === undefined
          ? "Invalid request"
          : parameter === undefined
            ? issue.message
            : issue.message === "is missing"
              ? `Missing required query parameter "${parameter}"`
              : `Invalid query parameter "${parameter}": ${issue.message}`
      return errorResponse(new InvalidParameter(parameter === undefined ? { message } : { message, parameter }))
    }
  })
}

const notFound = (request: HttpServerRequest.HttpServerRequest) =>
  errorResponse(new RouteNotFound({ message: `No route for ${request.method} ${pathOf(request.url)}; see /docs` }))

const isRouteNotFound = (e: unknown): boolean =>
  typeof e === "object" && e !== null && "_tag" in e && e._tag === "RouteNotFound"

/** Every failure becomes a JSON error; a defect is logged and answered with 500 without internals. */
export const handleErrors = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  app.pipe(
    Effect.map(toInvalidParameter),
    Effect.catchAllCause((cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
      return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        if (Option.exists(Cause.failureOption(cause), isRouteNotFound)) return Effect.succeed(notFound(request))
        // the path only: a query may carry an api_key
        return Effect.logError(
          "unhandled request failure",
          { method: request.method, path: pathOf(request.url) },
          cause
        ).pipe(Effect.as(errorResponse(new InternalError({ message: "Internal server error" }))))
      })
    })
  )

/**
 * The global middleware, outermost first: the request log and metrics, the origin policy (CORS preflights, CORS and
 * security headers on every answer), error normalization, then authentication and rate limiting. Its RateLimiterLive
 * is memoized with the hot path's (ServerLive), so both count in one instance.
 */
export const GlobalMiddleware = HttpLayerRouter.middleware(
  Effect.gen(function* () {
    const admission = yield* makeAdmission
    const cors = corsMiddleware(makeCorsPolicy((yield* AppConfig).corsOrigins))
    const hot = yield* Effect.serviceOption(HotCache)
    const remember = Option.isSome(hot) ? hot.value.remember : undefined
    return (app: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>) =>
      Effect.gen(function* () {
        // one verdict per request: the log line's client and the key and rate-limit checks
        const verdict = admission.verdictOf(yield* HttpServerRequest.HttpServerRequest)
        return yield* observe(verdict, cors(mcpErrorsAsJsonRpc(handleErrors(admission.guard(verdict, app)))), remember)
      })
  }),
  { global: true }
).pipe(Layer.provide(RateLimiterLive))
