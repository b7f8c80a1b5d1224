import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Layer, Logger, LogLevel } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { MarketQueriesLive } from "../../src/Markets/Queries.js"
import type { Emulator } from "../../src/emulator/index.js"
import { AppRoutes } from "../../src/Routes.js"
import { emulatorEnv } from "../support/emulatorServer.js"

/** The app's routes on a test socket, over `history` (the store's layer over an Exchange against `emulator`). */
export const serverOver = <A, E>(emulator: Emulator, history: Layer.Layer<A, E>) =>
  HttpLayerRouter.serve(AppRoutes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provide(MarketQueriesLive),
    Layer.provide(ResponseCacheLive),
    Layer.provide(MemoryKvCacheLive({ maxEntries: 10_000 })),
    Layer.provideMerge(history),
    Layer.provideMerge(AppConfig.fromRecord(emulatorEnv(emulator))),
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )
