import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Layer } from "effect"
import { createServer } from "node:http"
import { AppConfig } from "./AppConfig.js"
import { KvCacheLive } from "./Cache/Live.js"
import { ResponseCacheLive } from "./Cache/ResponseCacheLive.js"
import { ExchangeLive } from "./Exchange/Live.js"
import { AppRoutes } from "./Http.js"

/** The service graph behind the routes: Exchange and the caches, all reading AppConfig. */
export const ServicesLive = Layer.mergeAll(ExchangeLive, ResponseCacheLive.pipe(Layer.provideMerge(KvCacheLive)))

/** The HTTP server on HOST:PORT with every route and service. */
export const ServerLive = (config: AppConfig) =>
  HttpLayerRouter.serve(AppRoutes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(ServicesLive),
    Layer.provide(Layer.succeed(AppConfig, config)),
    Layer.provide(NodeHttpServer.layer(createServer, { port: config.port, host: config.host }))
  )
