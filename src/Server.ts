import { HttpLayerRouter, HttpServer, HttpServerError } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Deferred, Duration, Effect, Layer, Option, Runtime, Schedule } from "effect"
import { createServer, type IncomingMessage, type Server, ServerResponse } from "node:http"
import type { Socket } from "node:net"
import type { Duplex } from "node:stream"
import { AppConfig } from "./AppConfig.js"
import { AppRoutes } from "./Routes.js"
import { HotCache, HotCacheLive } from "./Http/HotCache.js"
import { RateLimiterLive } from "./Http/RateLimit.js"
import { installJsonClientErrors } from "./Resilience/ClientErrors.js"
import { ServicesLive } from "./Services.js"
import { makeStreamGateway } from "./Streams/Gateway.js"
import { makeStreamAdmission, StreamHubLive } from "./Streams/Http.js"
import { StreamHub } from "./Streams/StreamHub.js"

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

export interface FrontDoorOptions {
  readonly port: number
  readonly host: string
  /** How long in-flight requests and live streams get to finish on shutdown, together. */
  readonly drainTimeout: Duration.Duration
}

type NodeHandler = (request: IncomingMessage, response: ServerResponse) => void

/** An upgrade no stream route takes is answered like any request, on its socket (a 404, a 400). */
const answerOnSocket = (request: IncomingMessage, socket: Duplex, handle: NodeHandler) => {
  const response = new ServerResponse(request)
  response.assignSocket(socket as Socket)
  response.once("finish", () => socket.end())
  handle(request, response)
}

const listen = (server: Server, options: FrontDoorOptions) =>
  Effect.async<void, HttpServerError.ServeError>((resume) => {
    const onError = (cause: Error) => resume(Effect.fail(new HttpServerError.ServeError({ cause })))
    server.once("error", onError)
    server.listen({ port: options.port, host: options.host }, () => {
      server.off("error", onError)
      resume(Effect.void)
    })
  })

const addressOf = (server: Server): HttpServer.Address => {
  const address = server.address()
  return typeof address === "string" || address === null
    ? { _tag: "UnixAddress", path: String(address) }
    : {
        _tag: "TcpAddress",
        hostname: address.address === "::" ? "0.0.0.0" : address.address,
        port: address.port
      }
}

/**
 * The one front door: it owns the Node server. Every request goes, in this order, to the hot cache (fresh market
 * answers, no Effect stack), the stream gateway (SSE), then Effect's handler for `routes`; every upgrade to the
 * gateway (WebSocket stream routes) or else Effect's handler. It listens on acquire; on release it stops accepting
 * connections, ends the live streams (SSE gets a closing notice, WebSockets close with 1001), lets in-flight requests
 * finish while the services still run, and cuts whatever is left at `drainTimeout`. Node's close() alone would wait
 * for keep-alive and streaming connections indefinitely.
 */
export const FrontDoor = <A, E, R>(routes: Layer.Layer<A, E, R>, options: FrontDoorOptions) =>
  Layer.scoped(
    HttpServer.HttpServer,
    Effect.gen(function* () {
      const hub = yield* StreamHub
      const config = yield* AppConfig
      const hot = Option.getOrUndefined(yield* Effect.serviceOption(HotCache))
      const deadline = yield* Effect.serviceOption(ShutdownDeadline)
      const app = yield* HttpLayerRouter.toHttpEffect(routes)
      const effectHandler = yield* NodeHttpServer.makeHandler(app)

      let inFlight = 0
      const viaEffect: NodeHandler = (request, response) => {
        inFlight += 1
        response.once("close", () => {
          inFlight -= 1
        })
        effectHandler(request, response)
      }
      const admitStream = yield* makeStreamAdmission
      const runtime = yield* Effect.runtime<never>()
      const gateway = makeStreamGateway(hub, config, (request, onVerdict) =>
        Runtime.runCallback(runtime)(admitStream(request), {
          onExit: (exit) => {
            if (exit._tag === "Success") onVerdict(exit.value)
            else request.socket.destroy()
          }
        })
      )

      const server = installJsonClientErrors(createServer())
      server.on("request", (request: IncomingMessage, response: ServerResponse) => {
        if (hot !== undefined && hot.serve(request, response, () => viaEffect(request, response))) return
        if (gateway.request(request, response)) return
        viaEffect(request, response)
      })
      server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (!gateway.upgrade(request, socket, head)) answerOnSocket(request, socket, viaEffect)
      })

      const idle = Effect.suspend(() => (inFlight === 0 ? Effect.void : Effect.fail("busy"))).pipe(
        Effect.retry(Schedule.spaced("20 millis")),
        // finalizers run uninterruptibly: without this the drain deadline could not stop the wait
        Effect.interruptible
      )
      yield* Effect.acquireRelease(listen(server, options), () =>
        Effect.gen(function* () {
          if (Option.isSome(deadline)) deadline.value.start()
          // one deadline for streams and requests together
          const until = Date.now() + Duration.toMillis(options.drainTimeout)
          const remaining = () => Duration.millis(Math.max(0, until - Date.now()))
          const closed = yield* Deferred.make<void>()
          server.close(() => Deferred.unsafeDone(closed, Effect.void))
          server.closeIdleConnections()
          yield* hub.shutdownWithin(remaining())
          if (inFlight > 0) yield* Effect.logInfo("draining in-flight requests", { requests: inFlight })
          yield* idle.pipe(Effect.timeout(remaining()), Effect.ignore)
          server.closeAllConnections()
          yield* Deferred.await(closed).pipe(Effect.interruptible, Effect.timeout("1 second"), Effect.ignore)
        })
      )
      return HttpServer.make({
        address: addressOf(server),
        serve: () => Effect.dieMessage("the front door serves its own routes")
      })
    })
  )

/** The HTTP server on HOST:PORT with every route and service. */
export const ServerLive = (config: AppConfig) =>
  FrontDoor(AppRoutes, { port: config.port, host: config.host, drainTimeout: config.shutdownTimeout }).pipe(
    // the same layer AppRoutes uses, hence the same hub: the front door ends its streams on shutdown
    Layer.provide(StreamHubLive),
    Layer.provide(RateLimiterLive),
    // the same RateLimiterLive GlobalMiddleware uses, hence one instance: both paths count in it
    Layer.provideMerge(HotCacheLive.pipe(Layer.provide(RateLimiterLive))),
    Layer.provideMerge(ServicesLive),
    Layer.provide(NodeHttpServer.layerContext),
    Layer.provideMerge(ShutdownDeadlineLive(config.shutdownTimeout)),
    Layer.provide(Layer.succeed(AppConfig, config))
  )
