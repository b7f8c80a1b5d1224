import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Duration, Effect, Layer, Option, Runtime, Schedule } from "effect"
import { createServer, type Server } from "node:http"
import { AppConfig } from "./AppConfig.js"
import { Cmc } from "./Cmc/Cmc.js"
import { KvCacheLive } from "./Cache/Live.js"
import { ResponseCacheLive } from "./Cache/ResponseCacheLive.js"
import { ExchangeLive } from "./Exchange/Live.js"
import { AppRoutes } from "./Http.js"
import { HotCache, HotCacheLive, type HotCacheService } from "./Http/HotCache.js"
import { RateLimiterLive } from "./Http/RateLimit.js"
import { installJsonClientErrors } from "./Resilience/ClientErrors.js"
import { ResilientExchangeLive } from "./Resilience/ResilientExchange.js"
import { CandleHistoryLive } from "./Store/Service.js"
import { StreamHubLive } from "./Streams/Http.js"
import { installStreamGatewayWith } from "./Streams/Gateway.js"
import { StreamHub } from "./Streams/StreamHub.js"

/**
 * The service graph behind the routes, all reading AppConfig: the Exchange (CCXT behind retries, per-exchange
 * budgets and circuits), the caches, and CoinMarketCap for the ticker fallback.
 */
export const ServicesLive = Layer.mergeAll(
  CandleHistoryLive.pipe(Layer.provideMerge(ResilientExchangeLive), Layer.provide(ExchangeLive)),
  ResponseCacheLive.pipe(Layer.provideMerge(KvCacheLive)),
  Cmc.Default
)

/** How long past SHUTDOWN_TIMEOUT a shutdown may run before the process ends regardless. */
export const SHUTDOWN_SLACK = Duration.millis(500)

/**
 * The process's last resort: once shutdown starts, it ends within the deadline plus SHUTDOWN_SLACK even when some
 * finalizer waits on an upstream (ccxt calls, Redis, a request fiber that will not stop). Built first and so released
 * last: a shutdown that completes in time clears the timer.
 */
export class ShutdownDeadline extends Context.Tag("app/ShutdownDeadline")<
  ShutdownDeadline,
  { readonly start: () => void }
>() {}

export const ShutdownDeadlineLive = (timeout: Duration.Duration) =>
  Layer.scoped(
    ShutdownDeadline,
    Effect.gen(function* () {
      const runtime = yield* Effect.runtime<never>()
      let timer: ReturnType<typeof setTimeout> | undefined
      yield* Effect.addFinalizer(() => Effect.sync(() => clearTimeout(timer)))
      const expire = () => {
        Runtime.runSync(runtime)(
          Effect.logError("shutdown deadline passed; exiting", { shutdownTimeoutMs: Duration.toMillis(timeout) })
        )
        // the log writers flush on "exit"
        process.exit(1)
      }
      return {
        start: () => {
          if (timer !== undefined) return
          timer = setTimeout(expire, Duration.toMillis(Duration.sum(timeout, SHUTDOWN_SLACK)))
          timer.unref()
        }
      }
    })
  )

/**
 * A Node HTTP server on `port`/`host` that shuts down gracefully. Released before the services it serves: it stops
 * accepting connections, ends the live streams (SSE gets a closing notice, WebSockets close with 1001; see
 * Streams/Gateway.ts, installed here in front of the app), lets in-flight requests finish for up to
 * `drainTimeout` while their services still run, then cuts whatever is left. Node's close() alone would wait for
 * keep-alive and streaming connections indefinitely.
 */
export const NodeServerLive = (options: {
  readonly port: number
  readonly host: string
  readonly drainTimeout: Duration.Duration
  readonly hot?: HotCacheService
}) => {
  let server: Server | undefined
  let inFlight = 0
  const create = () => {
    server = installJsonClientErrors(createServer())
    if (options.hot !== undefined) options.hot.install(server)
    server.on("request", (_request, response) => {
      inFlight += 1
      response.once("close", () => {
        inFlight -= 1
      })
    })
    return server
  }
  const idle = Effect.suspend(() => (inFlight === 0 ? Effect.void : Effect.fail("busy"))).pipe(
    Effect.retry(Schedule.spaced("20 millis")),
    // finalizers run uninterruptibly: without this the drain deadline could not stop the wait
    Effect.interruptible
  )
  const drain = Layer.scopedDiscard(
    Effect.gen(function* () {
      const hub = yield* StreamHub
      const deadline = yield* Effect.serviceOption(ShutdownDeadline)
      if (server !== undefined) yield* installStreamGatewayWith(server)
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          if (Option.isSome(deadline)) deadline.value.start()
          const current = server
          if (current === undefined) return
          // one deadline for streams and requests together
          const until = Date.now() + Duration.toMillis(options.drainTimeout)
          const remaining = () => Duration.millis(Math.max(0, until - Date.now()))
          current.close()
          current.closeIdleConnections()
          yield* hub.shutdownWithin(remaining())
          if (inFlight > 0) yield* Effect.logInfo("draining in-flight requests", { requests: inFlight })
          yield* idle.pipe(Effect.timeout(remaining()), Effect.ignore)
          current.closeAllConnections()
        })
      )
    })
  )
  // built after the server, so released (draining) before its own close
  return Layer.provideMerge(drain, NodeHttpServer.layer(create, { port: options.port, host: options.host }))
}

/** The HTTP server on HOST:PORT with every route and service. */
export const ServerLive = (config: AppConfig) =>
  Layer.unwrapEffect(
    Effect.map(HotCache, (hot) =>
      HttpLayerRouter.serve(AppRoutes, { disableLogger: true, disableListenLog: true }).pipe(
        // built after the services, so that on shutdown requests drain while the services still run
        Layer.provide(
          NodeServerLive({ port: config.port, host: config.host, drainTimeout: config.shutdownTimeout, hot })
        ),
        // the same layer StreamRoutes uses, hence the same hub: the server ends its streams on shutdown
        Layer.provide(StreamHubLive)
      )
    )
  ).pipe(
    // the same RateLimiterLive GlobalMiddleware uses, hence one instance: both paths count in it
    Layer.provideMerge(HotCacheLive.pipe(Layer.provide(RateLimiterLive))),
    Layer.provideMerge(ServicesLive),
    Layer.provideMerge(ShutdownDeadlineLive(config.shutdownTimeout)),
    Layer.provide(Layer.succeed(AppConfig, config))
  )
