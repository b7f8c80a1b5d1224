import { HttpApiBuilder } from "@effect/platform"
import { Effect, Option } from "effect"
import { Api } from "../Api.js"
import { KvCache } from "../Cache/KvCache.js"
import { Cluster, clusterHealth, ClusterUpstreams } from "../Cluster/Live.js"
import { Exchange } from "../Exchange/Exchange.js"
import { VERSION } from "../Version.js"
import type { CircuitSnapshot } from "../Resilience/Circuit.js"
import { ExchangeResilience } from "../Resilience/ResilientExchange.js"
import { HistoryBackfill } from "../Store/Backfill.js"
import { CircuitHealth, ClusterHealth, ExchangeHealth, Health } from "./Api.js"

export const HealthLive = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function* () {
    const exchange = yield* Exchange
    const cache = yield* KvCache
    const resilience = yield* Effect.serviceOption(ExchangeResilience)
    const backfill = yield* Effect.serviceOption(HistoryBackfill)
    const cluster = Option.all([yield* Effect.serviceOption(Cluster), yield* Effect.serviceOption(ClusterUpstreams)])
    const noCircuits = Effect.succeed<Readonly<Record<string, CircuitSnapshot>>>({})
    return handlers.handle("health", () =>
      Effect.gen(function* () {
        const [cacheStatus, exchanges, circuits, history, clustered] = yield* Effect.all([
          cache.status,
          exchange.status,
          Option.match(resilience, { onNone: () => noCircuits, onSome: (r) => r.circuits }),
          Option.match(backfill, { onNone: () => Effect.succeed([]), onSome: (b) => b.progress }),
          Effect.transposeMapOption(cluster, ([{ connection }, upstreams]) =>
            clusterHealth(upstreams, connection, exchange.enabled)
          )
        ])
        return new Health({
          status: "ok",
          uptime: Math.round(process.uptime() * 1000) / 1000,
          version: VERSION,
          dependencies: {
            redis: { status: cacheStatus.redis, cache: cacheStatus.backend },
            exchanges: Object.fromEntries(
              Object.entries(exchanges).map(([id, s]) => {
                const circuit = circuits[id]
                return [
                  id,
                  new ExchangeHealth(circuit === undefined ? s : { ...s, circuit: new CircuitHealth(circuit) })
                ]
              })
            )
          },
          ...(history.length > 0 ? { history } : {}),
          ...(Option.isSome(clustered) ? { cluster: new ClusterHealth(clustered.value) } : {})
        })
      })
    )
  })
)
