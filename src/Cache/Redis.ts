import { Data, Duration, Effect, FiberSet, Option, Schema, type Scope } from "effect"
import type { WindowCount } from "./KvCache.js"
import { Redis } from "ioredis"
import { createHash } from "node:crypto"

export class RedisError extends Data.TaggedError("RedisError")<{
  readonly op: "connect" | "get" | "set" | "increment"
  readonly key?: string
  readonly cause: unknown
}> {}

export interface RedisKvOptions {
  readonly url: string
  /** Prepended to every key, so several services can share one Redis. */
  readonly keyPrefix: string
  /** Give up on one TCP connect attempt after this long. Default 500 ms. */
  readonly connectTimeout?: Duration.DurationInput
  /** Reject a command that got no reply after this long. Default 500 ms. */
  readonly commandTimeout?: Duration.DurationInput
  /** How long start-up waits for the first connection attempt to succeed or fail. Default 1 second. */
  readonly startupWait?: Duration.DurationInput
  /** Cap of the exponential reconnect backoff. Default 2 seconds. */
  readonly maxReconnectDelay?: Duration.DurationInput
}

export type RedisState = "up" | "down"

/** A Redis string store whose commands fail fast with `RedisError` while the connection is not ready. */
export interface RedisKv {
  /** Connection state as last reported by the client's events; reading it costs no round trip. */
  readonly state: Effect.Effect<RedisState>
  /** `state` read synchronously. */
  readonly isUp: () => boolean
  readonly get: (key: string) => Effect.Effect<Option.Option<string>, RedisError>
  /** A TTL of zero or less deletes the key; an infinite TTL stores it without expiry. */
  readonly set: (key: string, value: string, ttl: Duration.Duration) => Effect.Effect<void, RedisError>
  readonly increment: (key: string, window: Duration.Duration, by?: number) => Effect.Effect<WindowCount, RedisError>
}

// One round trip, atomic across instances: the first increment of a window (the key was absent) sets its expiry.
const INCREMENT_SCRIPT = `local count = redis.call("INCRBY", KEYS[1], ARGV[2])
if count == tonumber(ARGV[2]) then redis.call("PEXPIRE", KEYS[1], ARGV[1]) end
local ttl = redis.call("PTTL", KEYS[1])
if ttl < 0 then redis.call("PEXPIRE", KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}`

const INCREMENT_SHA = createHash("sha1").update(INCREMENT_SCRIPT).digest("hex")

const WindowReply = Schema.Tuple(Schema.Number, Schema.Number)

/** Delay before reconnect attempt `attempt` (1-based): 100 ms doubling, capped at `maxMs`. Never gives up. */
export const reconnectDelay = (attempt: number, maxMs: number): number =>
  Math.min(100 * 2 ** Math.min(Math.max(attempt - 1, 0), 16), maxMs)

const millis = (input: Duration.DurationInput | undefined, fallback: number) =>
  input === undefined ? fallback : Math.max(1, Math.round(Duration.toMillis(input)))

const errorMessage = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/**
 * Connects to Redis without blocking start-up for long. The connection may be down when this returns: the client
 * keeps reconnecting in the background until the scope closes, and `state` follows the client's events.
 */
export const makeRedisKv = (options: RedisKvOptions): Effect.Effect<RedisKv, RedisError, Scope.Scope> =>
  Effect.gen(function* () {
    const maxReconnectDelay = millis(options.maxReconnectDelay, 2_000)
    const startupWait = millis(options.startupWait, 1_000)
    // Runs work triggered by client events (logs, a delayed reconnect) with this layer's logger; stopped with the scope.
    const runInBackground = yield* FiberSet.makeRuntime<never>()
    const background = <A>(effect: Effect.Effect<A>) =>
      runInBackground(Effect.annotateLogs(effect, { component: "cache", backend: "redis" }))

    let up = false
    let closing = false
    let lastError = ""

    const client = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          new Redis(options.url, {
            lazyConnect: true,
            connectTimeout: millis(options.connectTimeout, 500),
            commandTimeout: millis(options.commandTimeout, 500),
            // Fail commands at once while disconnected instead of queueing them until Redis returns.
            enableOfflineQueue: false,
            maxRetriesPerRequest: 1,
            retryStrategy: (attempt) => reconnectDelay(attempt, maxReconnectDelay)
          }),
        catch: (cause) => new RedisError({ op: "connect", cause })
      }),
      (client) =>
        Effect.suspend(() => {
          closing = true
          return Effect.tryPromise(() => client.quit())
        }).pipe(
          // quit() rejects when the connection is already gone (guide gotcha 14); never defect at shutdown.
          Effect.orElse(() => Effect.sync(() => client.disconnect())),
          Effect.asVoid
        )
    )

    // Without an error listener ioredis reports every failed reconnect as an unhandled "error" event.
    client.on("error", (error: Error) => {
      if (closing || error.message === lastError) return
      lastError = error.message
      background(Effect.logDebug("redis client error", error.message))
    })
    client.on("ready", () => {
      lastError = ""
      if (up) return
      up = true
      if (!closing) background(Effect.logInfo("redis connected; cache served from redis"))
    })
    const markDown = (reason: string) => {
      if (!up) return
      up = false
      if (!closing) background(Effect.logWarning(`redis ${reason}; cache served from memory while reconnecting`))
    }
    client.on("close", () => markDown("connection closed"))
    client.on("end", () => {
      markDown("connection ended")
      if (closing) return
      // "end" means ioredis gave up (e.g. a connector error) although our retryStrategy never does: retry ourselves.
      background(
        Effect.sleep(Duration.millis(maxReconnectDelay)).pipe(
          Effect.zipRight(Effect.sync(() => (closing ? undefined : client.connect().catch(() => undefined))))
        )
      )
    })

    yield* Effect.async<void>((resume) => {
      const settle = () => {
        cleanup()
        resume(Effect.void)
      }
      // A wall-clock timer on purpose: this bounds real start-up time, also under TestClock.
      const timer = setTimeout(settle, startupWait)
      const cleanup = () => {
        clearTimeout(timer)
        client.off("ready", settle)
        client.off("close", settle)
        client.off("end", settle)
      }
      client.once("ready", settle)
      client.once("close", settle)
      client.once("end", settle)
      // A failed first attempt surfaces as "close" and the client goes on retrying, so the rejection carries nothing.
      client.connect().catch(() => undefined)
      return Effect.sync(cleanup)
    })
    if (!up) {
      yield* Effect.logWarning("redis unreachable at start-up; cache served from memory while reconnecting").pipe(
        Effect.annotateLogs({ component: "cache", backend: "redis", error: lastError })
      )
    }

    const prefixed = (key: string) => options.keyPrefix + key

    const command = <A>(op: "get" | "set" | "increment", key: string, run: () => Promise<A>) =>
      Effect.tryPromise({ try: run, catch: (cause) => new RedisError({ op, key, cause }) }).pipe(
        Effect.tapError((error) =>
          Effect.sync(() => {
            if (errorMessage(error.cause) !== "Command timed out" || client.status !== "ready") return
            // The server hangs or the link is silently dead. Closing such a socket takes ioredis ~2 s, so switch to
            // memory now and reconnect; "ready" switches back.
            markDown("stopped answering")
            client.disconnect(true)
          })
        )
      )

    const get = Effect.fn("RedisKv.get")(function* (key: string) {
      const value = yield* command("get", key, () => client.get(prefixed(key)))
      return Option.fromNullable(value)
    })

    const set = Effect.fn("RedisKv.set")(function* (key: string, value: string, ttl: Duration.Duration) {
      const ttlMs = Duration.toMillis(ttl)
      const redisKey = prefixed(key)
      if (!(ttlMs > 0)) {
        yield* command("set", key, () => client.del(redisKey))
      } else if (!Number.isFinite(ttlMs)) {
        yield* command("set", key, () => client.set(redisKey, value))
      } else {
        yield* command("set", key, () => client.set(redisKey, value, "PX", Math.max(1, Math.ceil(ttlMs))))
      }
    })

    const increment = Effect.fn("RedisKv.increment")(function* (key: string, window: Duration.Duration, by = 1) {
      const windowMs = Math.max(1, Math.ceil(Duration.toMillis(window)))
      const amount = Math.max(1, Math.floor(by))
      const redisKey = prefixed(key)
      const reply = yield* command("increment", key, () =>
        // EVALSHA spares Redis hashing the script on every request; the first call after a restart loads it
        client
          .evalsha(INCREMENT_SHA, 1, redisKey, windowMs, amount)
          .catch((error: unknown) =>
            String(error).includes("NOSCRIPT")
              ? client.eval(INCREMENT_SCRIPT, 1, redisKey, windowMs, amount)
              : Promise.reject(error)
          )
      )
      const [count, resetInMs] = yield* Schema.decodeUnknown(WindowReply)(reply).pipe(
        Effect.mapError((cause) => new RedisError({ op: "increment", key, cause }))
      )
      return { count, resetInMs } satisfies WindowCount
    })

    return {
      state: Effect.sync((): RedisState => (up ? "up" : "down")),
      isUp: () => up,
      get,
      set,
      increment
    } satisfies RedisKv
  })
