import { Effect, Layer, Logger, LogLevel, Option } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { Exchange, type ExchangeService, type OhlcvRequest } from "../../src/Exchange/Exchange.js"
import { ExchangeLive } from "../../src/Exchange/Live.js"
import type { BackfillTarget } from "../../src/Store/Config.js"
import { makeCandleHistoryLayer } from "../../src/Store/Service.js"
import { emulatorEnv } from "../support/emulatorServer.js"
import { storeLayer } from "./support.js"

/** A frozen emulator, closed with the scope. */
export const frozenEmulator = (startTime?: number) =>
  Effect.acquireRelease(
    Effect.promise(() => startEmulator({ clock: "frozen", ...(startTime === undefined ? {} : { startTime }) })),
    (emulator) => Effect.promise(() => emulator.close())
  )

export interface OhlcvCall {
  readonly since: number | null
  readonly limit: number
}

/** Records every ohlcv call that reaches the exchange below the store. */
export const spyOhlcv = (calls: Array<OhlcvCall>) =>
  Layer.effect(
    Exchange,
    Effect.map(Exchange, (inner): ExchangeService => ({
      ...inner,
      ohlcv: (market, request: OhlcvRequest) => {
        calls.push({ since: Option.getOrNull(request.since), limit: request.limit })
        return inner.ohlcv(market, request)
      }
    }))
  )

/**
 * The real Exchange (ccxt) against `emulator`, with the store's reads, history and backfill over it, on SQLite in
 * `file`; time follows the emulator's model clock.
 */
export const historyOverEmulator = (
  emulator: Emulator,
  file: string,
  calls: Array<OhlcvCall> = [],
  backfill: ReadonlyArray<BackfillTarget> = []
) =>
  makeCandleHistoryLayer({
    config: { location: { engine: "sqlite", filename: file }, backfill },
    now: Effect.sync(() => emulator.now()),
    yieldPause: "20 millis",
    errorPause: "200 millis",
    maxIdle: "100 millis"
  }).pipe(
    Layer.provideMerge(storeLayer("sqlite", file)),
    Layer.provide(spyOhlcv(calls)),
    Layer.provide(ExchangeLive),
    // a loaded test machine must not turn a slow answer into a timeout and a second request
    Layer.provide(AppConfig.fromRecord(emulatorEnv(emulator, { EXCHANGE_TIMEOUT: "15" }))),
    Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
  )
