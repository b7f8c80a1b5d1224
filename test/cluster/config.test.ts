import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import { ClusterConfig } from "../../src/Cluster/Config.js"

const read = (env: Record<string, string>) =>
  Effect.either(Effect.withConfigProvider(ClusterConfig, ConfigProvider.fromMap(new Map(Object.entries(env)))))

describe("ClusterConfig", () => {
  it.effect("defaults: off, a 3 s lease renewed every second, the stream idle grace, a unique instance id", () =>
    Effect.gen(function* () {
      const settings = Either.getOrThrow(yield* read({}))
      expect(settings).toMatchObject({
        enabled: false,
        redisUrl: "redis://127.0.0.1:6379",
        keyPrefix: "mcds:cluster:",
        leaseTtlMs: 3_000,
        renewEveryMs: 1_000,
        idleGraceMs: 5_000
      })
      expect(settings.instanceId).toMatch(new RegExp(`-${process.pid}-[0-9a-f]{8}$`))
      const again = Either.getOrThrow(yield* read({}))
      expect(again.instanceId).not.toBe(settings.instanceId)
    })
  )

  it.effect("reads CLUSTER_ENABLED, CLUSTER_LEASE_TTL, CLUSTER_KEY_PREFIX, REDIS_URL and STREAM_IDLE_GRACE", () =>
    Effect.gen(function* () {
      const settings = Either.getOrThrow(
        yield* read({
          CLUSTER_ENABLED: "true",
          CLUSTER_LEASE_TTL: "1.5",
          CLUSTER_KEY_PREFIX: "prod:",
          REDIS_URL: "redis://redis:6379/2",
          STREAM_IDLE_GRACE: "0"
        })
      )
      expect(settings).toMatchObject({
        enabled: true,
        leaseTtlMs: 1_500,
        renewEveryMs: 500,
        keyPrefix: "prod:",
        redisUrl: "redis://redis:6379/2",
        idleGraceMs: 0
      })
    })
  )

  it.effect("rejects a lease TTL below 0.3 s, a non-boolean switch and a non-Redis URL", () =>
    Effect.gen(function* () {
      expect(Either.isLeft(yield* read({ CLUSTER_LEASE_TTL: "0.1" }))).toBe(true)
      expect(Either.isLeft(yield* read({ CLUSTER_LEASE_TTL: "soon" }))).toBe(true)
      expect(Either.isLeft(yield* read({ CLUSTER_ENABLED: "maybe" }))).toBe(true)
      expect(Either.isLeft(yield* read({ REDIS_URL: "http://redis" }))).toBe(true)
    })
  )
})
