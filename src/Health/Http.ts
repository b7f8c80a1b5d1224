import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { Api } from "../Api.js"
import { KvCache } from "../Cache/KvCache.js"
import { Exchange } from "../Exchange/Exchange.js"
import { VERSION } from "../Version.js"
import { ExchangeHealth, Health } from "./Api.js"

export const HealthLive = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function* () {
    const exchange = yield* Exchange
    const cache = yield* KvCache
    return handlers.handle("health", () =>
      Effect.gen(function* () {
        const [cacheStatus, exchanges] = yield* Effect.all([cache.status, exchange.status])
        return new Health({
          status: "ok",
          uptime: Math.round(process.uptime() * 1000) / 1000,
          version: VERSION,
          dependencies: {
            redis: { status: cacheStatus.redis, cache: cacheStatus.backend },
            exchanges: Object.fromEntries(Object.entries(exchanges).map(([id, s]) => [id, new ExchangeHealth(s)]))
          }
        })
      })
    )
  })
)
