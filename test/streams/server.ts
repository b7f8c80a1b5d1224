import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Duration, Effect, Layer, Logger, LogLevel, ManagedRuntime } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { MarketQueriesLive } from "../../src/Markets/Queries.js"
import type { Exchange } from "../../src/Exchange/Exchange.js"
import { ExchangeLive } from "../../src/Exchange/Live.js"
import { AppRoutes } from "../../src/Routes.js"
import { RateLimiterLive } from "../../src/Http/RateLimit.js"
import { FrontDoor } from "../../src/Server.js"
import { StreamHubLive, StreamRoutes } from "../../src/Streams/Http.js"
import { type HubStats, StreamHub } from "../../src/Streams/StreamHub.js"

/** Settings that keep the end-to-end tests fast; each test overrides what it exercises. */
export const FAST_STREAMS: Readonly<Record<string, string>> = {
  REDIS_ENABLED: "false",
  RATE_LIMIT_ENABLED: "false",
  EXCHANGE_TIMEOUT: "3",
  STREAM_HEARTBEAT_INTERVAL: "0.25",
  STREAM_IDLE_GRACE: "0.3",
  STREAM_POLL_INTERVAL: "0.1",
  STREAM_STALL_TIMEOUT: "2",
  INITIAL_BACKOFF: "0.05",
  MAX_BACKOFF: "0.2"
}

/** The REST and stream routes behind the front door on a free loopback port, as `src/Server.ts` composes them. */
export const streamServerLayer = (
  env: Readonly<Record<string, string>>,
  exchange: Layer.Layer<Exchange, never, AppConfig> = ExchangeLive,
  logs: Layer.Layer<never> = Logger.minimumLogLevel(LogLevel.Error)
) =>
  FrontDoor(Layer.mergeAll(AppRoutes, StreamRoutes), {
    port: 0,
    host: "127.0.0.1",
    drainTimeout: Duration.seconds(3)
  }).pipe(
    // the same layer value as inside StreamRoutes, so memoized: this exposes the routes' hub to the tests
    Layer.provideMerge(StreamHubLive),
    // the same layer the routes' middleware uses, hence one rate limiter for both paths
    Layer.provide(RateLimiterLive),
    Layer.provide(NodeHttpServer.layerContext),
    Layer.provide(MarketQueriesLive),
    Layer.provide(ResponseCacheLive),
    Layer.provideMerge(MemoryKvCacheLive({ maxEntries: 1000 })),
    Layer.provideMerge(exchange),
    Layer.provideMerge(AppConfig.fromRecord({ ...FAST_STREAMS, ...env })),
    Layer.provide(logs)
  )

export interface StreamServer {
  readonly http: string
  readonly ws: string
  readonly stats: () => Promise<HubStats>
  readonly close: () => Promise<void>
}

export const startStreamServer = async (
  env: Readonly<Record<string, string>>,
  exchange?: Layer.Layer<Exchange, never, AppConfig>,
  logs?: Layer.Layer<never>
): Promise<StreamServer> => {
  const runtime = ManagedRuntime.make(streamServerLayer(env, exchange, logs))
  const port = await runtime.runPromise(
    Effect.map(HttpServer.HttpServer, (server) => (server.address._tag === "TcpAddress" ? server.address.port : 0))
  )
  return {
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    stats: () => runtime.runPromise(Effect.flatMap(StreamHub, (hub) => hub.stats)),
    close: () => runtime.dispose()
  }
}
