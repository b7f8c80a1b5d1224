import { HttpLayerRouter } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { MarketQueriesLive } from "../../src/Markets/Queries.js"
import { Cmc } from "../../src/Cmc/Cmc.js"
import type { EmulatorOptions } from "../../src/emulator/index.js"
import { ExchangeLive } from "../../src/Exchange/Live.js"
import { AppRoutes } from "../../src/Routes.js"
import { ResilientExchangeLive } from "../../src/Resilience/ResilientExchange.js"
import { type JsonResponse, get } from "../support/apiServer.js"
import { EmulatorLive, emulatorEnv, TestEmulator } from "../support/emulatorServer.js"
import { type FakeCmc, startFakeCmc } from "../support/fakeCmc.js"

/** Fast retries (10 ms, doubling), a 1.5 s backoff cap, and budgets that never get in the way of a test. */
export const RESILIENCE_ENV: Readonly<Record<string, string>> = {
  MAX_RETRIES: "2",
  INITIAL_BACKOFF: "0.01",
  BACKOFF_MULTIPLIER: "2",
  MAX_BACKOFF: "1.5",
  EXCHANGE_TIMEOUT: "0.4",
  STALE_IF_ERROR: "300",
  CIRCUIT_FAILURE_THRESHOLD: "0",
  EXCHANGE_RATE_LIMIT_BINANCE: "1000",
  EXCHANGE_RATE_LIMIT_KRAKEN: "1000",
  EXCHANGE_RATE_LIMIT_COINBASEEXCHANGE: "1000"
}

export class TestCmc extends Context.Tag("test/TestCmc")<TestCmc, FakeCmc>() {}

export const FakeCmcLive = Layer.scoped(
  TestCmc,
  Effect.acquireRelease(
    Effect.promise(() => startFakeCmc()),
    (fake) => Effect.promise(() => fake.close())
  )
)

/**
 * The server as src/Server.ts should compose it once ResilientExchangeLive and Cmc are wired: real ccxt against a
 * fresh emulator, decorated with the resilience layer, memory caches, and CoinMarketCap when `env` has CMC_API_KEY.
 * Tests reach the emulator (TestEmulator), the decorated Exchange and ExchangeResilience.
 */
export const ResilientEmulatorServer = (env: Record<string, string> = {}, options: EmulatorOptions = {}) =>
  Layer.unwrapEffect(
    Effect.map(TestEmulator, (emulator) =>
      HttpLayerRouter.serve(AppRoutes, { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(MarketQueriesLive),
        Layer.provideMerge(ResponseCacheLive),
        Layer.provide(MemoryKvCacheLive({ maxEntries: 10_000 })),
        Layer.provideMerge(Cmc.Default),
        Layer.provideMerge(ResilientExchangeLive),
        Layer.provide(ExchangeLive),
        Layer.provideMerge(AppConfig.fromRecord(emulatorEnv(emulator, { ...RESILIENCE_ENV, ...env }))),
        Layer.provideMerge(NodeHttpServer.layerTest),
        // every failure is logged as a warning by design; errors (defects) still show
        Layer.provide(Logger.minimumLogLevel(LogLevel.Error))
      )
    )
  ).pipe(Layer.provideMerge(EmulatorLive(options)))

/** GET that also checks what holds for every answer of the server: JSON, and never a 500 (a defect). */
export const getJson = (path: string, headers: Record<string, string> = {}) =>
  Effect.tap(get(path, headers), (res: JsonResponse) =>
    Effect.sync(() => {
      if (res.status === 500 || res.json === undefined) {
        throw new Error(`GET ${path}: ${res.status} ${res.text.slice(0, 300)}`)
      }
      if ((res.json as { code?: unknown }).code === "internal_error") throw new Error(`GET ${path}: internal_error`)
    })
  )

export const realSleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))
