import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect, Layer, Metric } from "effect"
import { Api } from "./Api.js"
import { HealthLive } from "./Health/Http.js"
import { HistoryLive } from "./History/Http.js"
import { DocsRoutes } from "./Http/Docs.js"
import { DashboardRoutes } from "./Http/Dashboard.js"
import { GlobalMiddleware } from "./Http/Middleware.js"
import { MetricsResponse } from "./Http/Observability.js"
import { CompatLive, MarketsLive } from "./Markets/Http.js"
import { McpRoutes } from "./Mcp/Http.js"
import { openConnections, prometheusText, streamSubscriptions, upstreamStreams } from "./Metrics.js"
import { StreamHubLive, StreamRoutes } from "./Streams/Http.js"
import { StreamHub } from "./Streams/StreamHub.js"
import { NAME, VERSION } from "./Version.js"

/** The JSON index; browsers asking for HTML get the dashboard at the same URL (Dashboard.ts), hence Vary: Accept. */
const IndexRoute = HttpLayerRouter.add(
  "GET",
  "/",
  HttpServerResponse.unsafeJson(
    {
      name: NAME,
      version: VERSION,
      docs: "/docs",
      redoc: "/redoc",
      openapi: "/openapi.json",
      mcp: "/mcp",
      metrics: "/metrics",
      health: "/v1/health"
    },
    { headers: { vary: "Accept" } }
  )
)

const MetricsRoute = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const hub = yield* StreamHub
    // stream gauges are read from the hub when scraped rather than tracked on every connect and subscribe
    const refreshStreamGauges = Effect.flatMap(hub.stats, (stats) =>
      Effect.all([
        Metric.set(
          Metric.tagged(openConnections, "transport", "sse"),
          stats.connections.filter((c) => c.transport === "sse").length
        ),
        Metric.set(
          Metric.tagged(openConnections, "transport", "ws"),
          stats.connections.filter((c) => c.transport === "ws").length
        ),
        Metric.set(
          streamSubscriptions,
          stats.connections.reduce((n, c) => n + c.subscriptions, 0)
        ),
        Metric.set(upstreamStreams, stats.upstreams)
      ])
    )
    yield* router.add(
      "GET",
      "/metrics",
      refreshStreamGauges.pipe(Effect.zipRight(prometheusText), Effect.map(MetricsResponse))
    )
  })
)

export const ApiRoutes = HttpLayerRouter.addHttpApi(Api, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide([HealthLive, MarketsLive, CompatLive, HistoryLive])
)

/** Every route of the server (REST, docs, MCP over HTTP); needs Exchange, ResponseCache, KvCache and AppConfig. */
export const AppRoutes = Layer.mergeAll(
  ApiRoutes,
  DocsRoutes,
  IndexRoute,
  StreamRoutes,
  McpRoutes,
  MetricsRoute,
  GlobalMiddleware
).pipe(Layer.provideMerge(StreamHubLive), Layer.provideMerge(DashboardRoutes)) // built first: the page loads before any API key
