import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Layer } from "effect"
import { Api } from "./Api.js"
import { HealthLive } from "./Health/Http.js"
import { DocsRoutes } from "./Http/Docs.js"
import { GlobalMiddleware } from "./Http/Middleware.js"
import { CompatLive, MarketsLive } from "./Markets/Http.js"
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
    health: "/v1/health"
  })
)

export const ApiRoutes = HttpLayerRouter.addHttpApi(Api, { openapiPath: "/openapi.json" }).pipe(
  Layer.provide([HealthLive, MarketsLive, CompatLive])
)

/** Every route of the server; needs the services (Exchange, ResponseCache, KvCache, AppConfig). */
export const AppRoutes = Layer.mergeAll(ApiRoutes, DocsRoutes, IndexRoute, GlobalMiddleware)
