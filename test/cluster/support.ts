import { it } from "@effect/vitest"
import { Effect, Logger, type Scope } from "effect"
import { createConnection, createServer, type Socket } from "node:net"
import { type ClusterConnection, makeClusterConnection } from "../../src/Cluster/Connection.js"
import { scopedRedisWithClient } from "../support/redisScoped.js"

export const PREFIX = "test:cluster:"

/** A cluster connection for one simulated instance. */
export const connect = (url: string, instanceId: string): Effect.Effect<ClusterConnection, never, Scope.Scope> =>
  makeClusterConnection({ url, keyPrefix: PREFIX, instanceId, maxReconnectDelayMs: 200 })

/** `Effect.forEach` over a list of names written out in the test, typed as a tuple of the same length. */
export const forEachName = <const Names extends ReadonlyArray<string>, A, E, R>(
  names: Names,
  f: (name: string) => Effect.Effect<A, E, R>
): Effect.Effect<{ -readonly [K in keyof Names]: A }, E, R> =>
  Effect.forEach(names, f) as Effect.Effect<{ -readonly [K in keyof Names]: A }, E, R>

/** One cluster connection per instance id, in order: `const [a, b] = yield* connectEach(url, ["a", "b"])`. */
export const connectEach = <const Ids extends ReadonlyArray<string>>(url: string, ids: Ids) =>
  forEachName(ids, (id) => connect(url, id))

export interface CuttableLink {
  readonly url: string
  /** Drops every connection through the link and refuses new ones, like a network cut for this instance alone. */
  readonly cut: () => void
  readonly restore: () => void
}

/** A loopback TCP proxy to Redis that one instance connects through, so the test can cut that instance off alone. */
export const cuttableLink = (redisPort: number): Effect.Effect<CuttableLink, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ link: CuttableLink; close: () => void }>((resume) => {
      const sockets = new Set<Socket>()
      let open = true
      const server = createServer((client) => {
        if (!open) return client.destroy()
        const upstream = createConnection({ port: redisPort, host: "127.0.0.1" })
        sockets.add(client).add(upstream)
        const drop = () => {
          client.destroy()
          upstream.destroy()
          sockets.delete(client)
          sockets.delete(upstream)
        }
        client.on("error", drop).on("close", drop)
        upstream.on("error", drop).on("close", drop)
        client.pipe(upstream).pipe(client)
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        const cut = () => {
          open = false
          for (const socket of sockets) socket.destroy()
          sockets.clear()
        }
        resume(
          Effect.succeed({
            link: { url: `redis://127.0.0.1:${port}`, cut, restore: () => (open = true) },
            close: () => {
              cut()
              server.close()
            }
          })
        )
      })
    }),
    ({ close }) => Effect.sync(close)
  ).pipe(Effect.map(({ link }) => link))

/** Polls `check` every 20 ms until it holds, failing the test after `timeoutMs`. */
export const eventually = (check: () => boolean, timeoutMs: number, what: string): Effect.Effect<void> =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out after ${timeoutMs} ms: ${what}`))
      yield* Effect.sleep(20)
    }
  })

type RedisFixture = Effect.Effect.Success<typeof scopedRedisWithClient>

/**
 * A test against a private redis-server and a raw client on it, both gone with the test's scope, with the cluster's
 * log lines (mode changes, takeovers) kept out of the test output.
 */
export const clusterTest = <A, E>(
  name: string,
  body: (fixture: RedisFixture) => Effect.Effect<A, E, Scope.Scope>,
  timeoutMs = 30_000
) =>
  it.live(
    name,
    () =>
      Effect.flatMap(scopedRedisWithClient, body).pipe(
        Effect.scoped,
        Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none))
      ),
    timeoutMs
  )
