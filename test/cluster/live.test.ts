import { describe, expect } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Stream } from "effect"
import { makeSharedCircuit } from "../../src/Cluster/Budget.js"
import { Cluster, ClusterLive, clusterHealth, ClusterUpstreams, ClusterUpstreamsLive } from "../../src/Cluster/Live.js"
import { clusterTest, eventually } from "./support.js"

describe("ClusterLive layers and health (real redis-server)", () => {
  clusterTest(
    "layers from the environment; health shows the mode, each market's role and each exchange's shared pause",
    ({ redis, raw }) =>
      Effect.gen(function* () {
        const env = new Map([
          ["CLUSTER_ENABLED", "true"],
          ["CLUSTER_LEASE_TTL", "0.9"],
          ["CLUSTER_KEY_PREFIX", "live:"],
          ["REDIS_URL", redis.url]
        ])
        const context = yield* Layer.build(
          ClusterUpstreamsLive.pipe(
            Layer.provideMerge(ClusterLive),
            Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env)))
          )
        )
        const { connection, settings } = Effect.runSync(Effect.provide(Cluster, context))
        const upstreams = Effect.runSync(Effect.provide(ClusterUpstreams, context))
        expect([settings.leaseTtlMs, settings.renewEveryMs]).toEqual([900, 300])

        const received: Array<string> = []
        yield* Effect.forkScoped(
          Stream.runForEach(
            upstreams.attach("kraken ticker ETH/USD ", Stream.make({ kind: "ticker", payload: 1, snapshot: true })),
            (e) => Effect.sync(() => received.push(e.kind))
          )
        )
        yield* eventually(() => received.length === 1, 3_000, "the ticker")
        const health = () => clusterHealth(upstreams, connection, ["binance", "kraken"])
        expect(yield* health()).toEqual({
          mode: "cluster",
          instanceId: settings.instanceId,
          markets: [{ market: "kraken ticker ETH/USD ", role: "owner", subscribers: 1 }],
          circuits: { binance: null, kraken: null }
        })
        expect(yield* Effect.promise(() => raw.get("live:lease:kraken ticker ETH/USD "))).toMatch(
          new RegExp(`^${settings.instanceId}#`)
        )

        yield* makeSharedCircuit(connection, "binance").report({ reason: "banned", retryAfterMs: 30_000 })
        const banned = yield* health()
        expect(banned.circuits.binance?.reason).toBe("banned")
        expect(banned.circuits.kraken).toBeNull()

        yield* Effect.promise(() => redis.kill())
        yield* eventually(() => !connection.isUp(), 5_000, "local mode")
        const local = yield* health()
        expect([local.mode, local.circuits]).toEqual(["local", {}])
        expect(local.markets).toEqual([{ market: "kraken ticker ETH/USD ", role: "local", subscribers: 1 }])
      })
  )
})
