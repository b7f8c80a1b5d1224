import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { MarketQueriesLive } from "../../src/Markets/Queries.js"
import { type Emulator, type EmulatorOptions, startEmulator } from "../../src/emulator/index.js"
import { ExchangeLive } from "../../src/Exchange/Live.js"
import { AppRoutes } from "../../src/Routes.js"

export class TestEmulator extends Context.Tag("test/TestEmulator")<TestEmulator, Emulator>() {}

/** The settings that point the server at an emulator, with ccxt's throttle off and short timeouts. */
export const emulatorEnv = (emulator: Emulator, env: Record<string, string> = {}): Record<string, string> => ({
  ...emulator.env(),
  ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
  REDIS_ENABLED: "false",
  RATE_LIMIT_ENABLED: "false",
  CCXT_THROTTLE: "false",
  EXCHANGE_TIMEOUT: "2",
  ...env
})

export const EmulatorLive = (options: EmulatorOptions = {}) =>
  Layer.scoped(
    TestEmulator,
    Effect.acquireRelease(
      Effect.promise(() => startEmulator({ clock: "frozen", ...options })),
      (emulator) => Effect.promise(() => emulator.close())
    )
  )

/**
 * The real server (live Exchange over real ccxt, real caches in memory) on a test socket, pointed at a fresh
 * emulator that tests reach through `TestEmulator`.
 */
export const EmulatorTestServer = (env: Record<string, string> = {}, options: EmulatorOptions = {}) =>
  Layer.unwrapEffect(
    Effect.map(TestEmulator, (emulator) =>
      HttpLayerRouter.serve(AppRoutes, { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provide(MarketQueriesLive),
        Layer.provide(ResponseCacheLive),
        Layer.provide(MemoryKvCacheLive({ maxEntries: 10_000 })),
        Layer.provide(ExchangeLive),
        Layer.provideMerge(AppConfig.fromRecord(emulatorEnv(emulator, env))),
        Layer.provideMerge(NodeHttpServer.layerTest),
        // one request log line per request would drown the test output
        Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
      )
    )
  ).pipe(Layer.provideMerge(EmulatorLive(options)))
