import { Data, Effect, FiberSet, type Scope, SubscriptionRef } from "effect"
import { Redis } from "ioredis"
import { reconnectDelay } from "../Cache/Redis.js"

export class ClusterRedisError extends Data.TaggedError("ClusterRedisError")<{
  readonly op: string
  readonly cause: unknown
}> {}

/** "cluster": Redis answers and markets are shared; "local": each instance runs its own upstreams and budget. */
export type ClusterMode = "cluster" | "local"

export interface ClusterConnectionOptions {
  readonly url: string
  readonly keyPrefix: string
  readonly instanceId: string
  /** Reject a command that got no reply after this long. Default 500 ms. */
  readonly commandTimeoutMs?: number
  /** Cap of the reconnect backoff. Default 1 s, so cluster mode resumes soon after Redis returns. */
  readonly maxReconnectDelayMs?: number
}

/** The two Redis connections of one process: commands, and one subscriber shared by every channel. */
export interface ClusterConnection {
  readonly instanceId: string
  readonly key: (name: string) => string
  /** Follows both connections' events; hub and health read it, never an error. */
  readonly mode: SubscriptionRef.SubscriptionRef<ClusterMode>
  readonly isUp: () => boolean
  readonly run: <A>(op: string, command: (client: Redis) => Promise<A>) => Effect.Effect<A, ClusterRedisError>
  /**
   * Calls `onMessage` with every message on `channel` (prefixed by the caller) until the scope closes. Channels are
   * refcounted: SUBSCRIBE on the first listener, UNSUBSCRIBE after the last. Resolves once Redis confirmed the
   * subscription, or at once while Redis is down (it is subscribed again on reconnect).
   */
  readonly listen: (channel: string, onMessage: (message: string) => void) => Effect.Effect<void, never, Scope.Scope>
}

const quit = (client: Redis) =>
  Effect.tryPromise(() => client.quit()).pipe(
    Effect.orElse(() => Effect.sync(() => client.disconnect())),
    Effect.asVoid
  )

export const makeClusterConnection = (
  options: ClusterConnectionOptions
): Effect.Effect<ClusterConnection, never, Scope.Scope> =>
  Effect.gen(function* () {
    const runInBackground = yield* FiberSet.makeRuntime<never>()
    const background = <A>(effect: Effect.Effect<A>) =>
      runInBackground(Effect.annotateLogs(effect, { component: "cluster", instance: options.instanceId }))
    const maxDelay = options.maxReconnectDelayMs ?? 1_000
    const connect = (subscriber: boolean) =>
      new Redis(options.url, {
        lazyConnect: true,
        connectTimeout: 500,
        commandTimeout: subscriber ? undefined : (options.commandTimeoutMs ?? 500),
        // commands fail at once while Redis is away: callers fall back to local mode instead of queueing
        enableOfflineQueue: subscriber,
        maxRetriesPerRequest: 1,
        retryStrategy: (attempt) => reconnectDelay(attempt, maxDelay)
      })

    let closing = false
    const commands = yield* Effect.acquireRelease(
      Effect.sync(() => connect(false)),
      (c) => Effect.suspend(() => ((closing = true), quit(c)))
    )
    const subscriber = yield* Effect.acquireRelease(
      Effect.sync(() => connect(true)),
      (c) => Effect.suspend(() => ((closing = true), quit(c)))
    )
    const mode = yield* SubscriptionRef.make<ClusterMode>("local")
    const isUp = () => commands.status === "ready" && subscriber.status === "ready"
    let reported: ClusterMode = "local"
    const refresh = () => {
      const next: ClusterMode = isUp() ? "cluster" : "local"
      if (next === reported || closing) return
      reported = next
      background(
        SubscriptionRef.set(mode, next).pipe(
          Effect.zipRight(
            next === "cluster"
              ? Effect.logInfo("redis reachable; cluster mode")
              : Effect.logWarning("redis unreachable; local mode (own upstreams, own budget) until it returns")
          )
        )
      )
    }

    const listeners = new Map<string, Set<(message: string) => void>>()
    for (const client of [commands, subscriber]) {
      client.on("error", () => undefined)
      client.on("ready", refresh)
      client.on("close", refresh)
      client.on("end", () => {
        refresh()
        // "end": ioredis gave up reconnecting; keep trying ourselves until the scope closes
        if (!closing) setTimeout(() => closing || client.connect().catch(() => undefined), maxDelay)
      })
    }
    subscriber.on("ready", () => {
      // channels whose SUBSCRIBE failed while Redis was away are not in ioredis's resubscribe list
      if (listeners.size > 0) subscriber.subscribe(...listeners.keys()).catch(() => undefined)
    })
    subscriber.on("message", (channel: string, message: string) => {
      const set = listeners.get(channel)
      if (set !== undefined) for (const onMessage of set) onMessage(message)
    })

    yield* Effect.async<void>((resume) => {
      let pending = 2
      const settle = () => {
        pending -= 1
        if (pending === 0) {
          clearTimeout(timer)
          resume(Effect.void)
        }
      }
      // bounded wall-clock start-up: a Redis that is down leaves this process in local mode, not stuck
      const timer = setTimeout(() => resume(Effect.void), 1_000)
      commands.connect().then(settle, settle)
      subscriber.connect().then(settle, settle)
      return Effect.sync(() => clearTimeout(timer))
    })
    refresh()

    const run = <A>(op: string, command: (client: Redis) => Promise<A>) =>
      Effect.tryPromise({ try: () => command(commands), catch: (cause) => new ClusterRedisError({ op, cause }) })

    const listen = (channel: string, onMessage: (message: string) => void) =>
      Effect.acquireRelease(
        Effect.suspend(() => {
          const existing = listeners.get(channel)
          if (existing !== undefined) {
            existing.add(onMessage)
            return Effect.void
          }
          listeners.set(channel, new Set([onMessage]))
          if (subscriber.status !== "ready") return Effect.void
          return Effect.promise(() => subscriber.subscribe(channel).catch(() => undefined)).pipe(
            Effect.timeout(1_000),
            Effect.ignore
          )
        }),
        () =>
          Effect.sync(() => {
            const set = listeners.get(channel)
            if (set === undefined) return
            set.delete(onMessage)
            if (set.size > 0) return
            listeners.delete(channel)
            if (subscriber.status === "ready") subscriber.unsubscribe(channel).catch(() => undefined)
          })
      ).pipe(Effect.asVoid)

    return {
      instanceId: options.instanceId,
      key: (name) => options.keyPrefix + name,
      mode,
      isUp,
      run,
      listen
    } satisfies ClusterConnection
  })
