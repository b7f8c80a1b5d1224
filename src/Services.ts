import { Layer } from "effect"
import { KvCacheLive } from "./Cache/Live.js"
import { ResponseCacheLive } from "./Cache/ResponseCacheLive.js"
import { Cmc } from "./Cmc/Cmc.js"
import { ExchangeLive } from "./Exchange/Live.js"
import { ResilientExchangeLive } from "./Resilience/ResilientExchange.js"
import { CandleHistoryLive } from "./Store/Service.js"

/**
 * The service graph behind the routes and the MCP tools, all reading AppConfig: the Exchange (CCXT behind retries,
 * per-exchange budgets and circuits), the caches, and CoinMarketCap for the ticker fallback.
 */
export const ServicesLive = Layer.mergeAll(
  CandleHistoryLive.pipe(Layer.provideMerge(ResilientExchangeLive), Layer.provide(ExchangeLive)),
  ResponseCacheLive.pipe(Layer.provideMerge(KvCacheLive)),
  Cmc.Default
)
