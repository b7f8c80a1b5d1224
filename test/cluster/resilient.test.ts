import { describe, expect } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Either, Layer, Option, Ref } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { ClusterModeLive } from "../../src/Cluster/Live.js"
import type { MarketError } from "../../src/Domain/Errors.js"
import { Exchange, type ResolvedMarket } from "../../src/Exchange/Exchange.js"
import { makeResilientExchangeLive } from "../../src/Resilience/ResilientExchange.js"
import { banned, makeFakeUpstream } from "../resilience/fakeExchange.js"
import { clusterTest } from "./support.js"

const BTC: ResolvedMarket = { exchange: "binance", symbol: "BTC/USDT" }

/** One server's ResilientExchange as ServicesLive composes it, over a scripted exchange; cluster mode if `env` says. */
const instance = (env: ReadonlyArray<readonly [string, string]>) =>
  Effect.gen(function* () {
    const fake = yield* makeFakeUpstream
    const context = yield* Layer.build(
      makeResilientExchangeLive().pipe(
        Layer.provide(
          ClusterModeLive.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(env)))))
        ),
        Layer.provide(Layer.succeed(Exchange, fake.service)),
        Layer.provide(
          AppConfig.fromRecord({ ENABLED_EXCHANGES: "binance", EXCHANGE_RATE_LIMIT_BINANCE: "100", MAX_RETRIES: "0" })
        )
      )
    )
    const calls = Effect.map(Ref.get(fake.calls), (list) => list.length)
    return { fake, exchange: Context.get(context, Exchange), calls }
  })

const codeOf = (result: Either.Either<unknown, MarketError>) =>
  Either.match(result, { onLeft: (e) => e.code, onRight: () => "ok" })

describe("ResilientExchange in cluster mode (real redis-server)", () => {
  clusterTest(
    "a 418 ban one instance gets stops the others' calls to the exchange; without cluster mode it does not",
    ({ redis }) =>
      Effect.gen(function* () {
        const cluster = [
          ["CLUSTER_ENABLED", "true"],
          ["REDIS_URL", redis.url],
          ["CLUSTER_KEY_PREFIX", "resilient:"]
        ] as const
        const a = yield* instance(cluster)
        const b = yield* instance(cluster)
        const alone = yield* instance([])

        yield* a.fake.script(banned(30))
        expect(codeOf(yield* Effect.either(a.exchange.ticker(BTC)))).toBe("upstream_banned")
        expect(yield* a.calls).toBe(1)

        // b never got a 418 itself: the shared ban refuses its call before it reaches the exchange
        const refused = yield* Effect.either(b.exchange.ticker(BTC))
        expect(codeOf(refused)).toBe("upstream_banned")
        expect(Option.map(Either.getLeft(refused), (e) => e.message).pipe(Option.getOrElse(() => ""))).toMatch(
          /has banned this cluster/
        )
        expect(yield* b.calls).toBe(0)

        // a server without CLUSTER_ENABLED keeps its own circuit and budget, as before
        expect(codeOf(yield* Effect.either(alone.exchange.ticker(BTC)))).toBe("ok")
        expect(yield* alone.calls).toBe(1)
      })
  )
})
