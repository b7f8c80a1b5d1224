import { Layer } from "effect"
import { KvCacheLive } from "./Cache/Live.js"
import { ResponseCacheLive } from "./Cache/ResponseCacheLive.js"
import { ClusterModeLive } from "./Cluster/Live.js"
import { Cmc } from "./Cmc/Cmc.js"
import { ExchangeLive } from "./Exchange/Live.js"
import { MarketQueriesLive } from "./Markets/Queries.js"
import { ResilientExchangeLive } from "./Resilience/ResilientExchange.js"
import { CandleHistoryLive } from "./Store/Service.js"

/**
 * The service graph behind the routes and the MCP tools, all reading AppConfig: the Exchange (CCXT behind retries,
 * per-exchange budgets and circuits), the caches, CoinMarketCap for the ticker fallback, and the market queries over
 * them (one instance for the REST routes and the MCP tools). With CLUSTER_ENABLED=true also the cluster's services
 * (ClusterModeLive): the shared outbound budget, and the stream upstreams the StreamHub's registry shares.
 */
export const ServicesLive = MarketQueriesLive.pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      CandleHistoryLive.pipe(Layer.provideMerge(ResilientExchangeLive), Layer.provide(ExchangeLive)),
      ResponseCacheLive.pipe(Layer.provideMerge(KvCacheLive)),
      Cmc.Default
    )
  ),
  Layer.provideMerge(ClusterModeLive)
)
