import { type ConfigError, Context, Effect, Layer } from "effect"
import { Exchange } from "../Exchange/Exchange.js"
import { History, makeHistory } from "../History/History.js"
import { HistoryBackfill, makeBackfill, type BackfillOptions } from "./Backfill.js"
import { CandleStore, type CandleStoreError } from "./CandleStore.js"
import { type StoreConfig, storeConfig } from "./Config.js"
import { CandleStoreLive } from "./Live.js"
import { makeForeground, makeStoreExchange } from "./StoreExchange.js"

export interface CandleHistoryOptions extends BackfillOptions {
  /** Settings instead of DATABASE_URL / HISTORY_BACKFILL from the environment. */
  readonly config?: StoreConfig
}

/**
 * Over the Exchange it is given (the resilient one, so every fetch is under the exchange's budget): an Exchange
 * whose `ohlcv` reads through the candle store, the History of long ranges, and the background backfill with its
 * progress. Needs a CandleStore.
 */
export const makeCandleHistoryLayer = (
  options: CandleHistoryOptions = {}
): Layer.Layer<Exchange | History | HistoryBackfill, ConfigError.ConfigError, Exchange | CandleStore> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const inner = yield* Exchange
      const store = yield* CandleStore
      const config = options.config ?? (yield* storeConfig)
      const foreground = makeForeground()
      const backfill = makeBackfill(inner, store, foreground, store.engine === "none" ? [] : config.backfill, options)
      if (store.engine === "none" && config.backfill.length > 0) {
        yield* Effect.logWarning("HISTORY_BACKFILL is ignored: the candle store is off (DATABASE_URL=none)")
      }
      for (const target of store.engine === "none" ? [] : config.backfill) {
        yield* Effect.forkScoped(backfill.run(target))
      }
      return Context.make(Exchange, makeStoreExchange(inner, store, foreground, options)).pipe(
        Context.add(History, makeHistory(inner, store, foreground, options.now)),
        Context.add(HistoryBackfill, { progress: backfill.progress })
      )
    })
  )

/**
 * The candle store of DATABASE_URL with reads through it, /v1/history and HISTORY_BACKFILL. Wire it over the
 * resilient Exchange: `CandleHistoryLive.pipe(Layer.provideMerge(ResilientExchangeLive.pipe(...)))`.
 */
export const CandleHistoryLive: Layer.Layer<
  Exchange | History | HistoryBackfill | CandleStore,
  ConfigError.ConfigError | CandleStoreError,
  Exchange
> = makeCandleHistoryLayer().pipe(Layer.provideMerge(CandleStoreLive))
