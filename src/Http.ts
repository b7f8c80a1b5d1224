import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect, Layer } from "effect"
import { Api } from "./Api.js"
import { HealthLive } from "./Health/Http.js"
import { DocsRoutes } from "./Http/Docs.js"
import { GlobalMiddleware } from "./Http/Middleware.js"
import { MetricsResponse } from "./Http/Observability.js"
import { CompatLive, MarketsLive } from "./Markets/Http.js"
import { McpRoutes } from "./Mcp/Http.js"
import { prometheusText } from "./Metrics.js"
import { NAME, VERSION } from "./Version.js"

const IndexRoute = HttpLayerRouter.add(
  "GET",
  "/",
  HttpServerResponse.unsafeJson({
    name: NAME,
    version: VERSION,
    docs: "/docs",
    redoc: "/redoc",
    openapi: "/openapi.json",
    mcp: "/mcp",
    metrics: "/metrics",
    health: "/v1/health"
  })
)

const MetricsRoute = HttpLayerRouter.add("GET", "/metrics", Effect.map(prometheusText, MetricsResponse))

export const ApiRoutes = HttpLayerRouter.addHttpApi(Api, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide([HealthLive, MarketsLive, CompatLive])
)

/** Every route of the server (REST, docs, MCP over HTTP); needs Exchange, ResponseCache, KvCache and AppConfig. */
export const AppRoutes = Layer.mergeAll(ApiRoutes, DocsRoutes, IndexRoute, MetricsRoute, McpRoutes, GlobalMiddleware)
