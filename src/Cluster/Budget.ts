import { Effect, Option, Schema } from "effect"
import { RateLimited, UpstreamUnavailable } from "../Domain/Errors.js"
import { bannedError, Rejected, retryAfterSeconds, slowDownError } from "../Resilience/Circuit.js"
import { type Budget, makeLazyLimiters, type OutboundLimiter } from "../Resilience/Limiter.js"
import type { ClusterConnection, ClusterRedisError } from "./Connection.js"

// One round trip per call, atomic across instances: honour the shared pause, then reserve `cost` units of a GCRA
// bucket (the stored value is the theoretical arrival time, in Redis's clock). Replies {1, waitMs} (go after waitMs),
// {0, waitMs} (refused: the queue is longer than maxWait) or {2, pauseMs, reason}.
const RESERVE = `local pause = redis.call("GET", KEYS[2])
if pause then
  local ttl = redis.call("PTTL", KEYS[2])
  if ttl > 0 then return {2, ttl, pause} end
end
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local stored = tonumber(redis.call("GET", KEYS[1]) or "0")
local tat = stored
if tat < now then tat = now end
local emission = tonumber(ARGV[1])
local next = tat + emission * tonumber(ARGV[3])
local wait = next - emission * tonumber(ARGV[2]) - now
if wait > tonumber(ARGV[4]) and stored > now then return {0, math.ceil(wait)} end
redis.call("SET", KEYS[1], string.format("%.3f", next), "PX", math.ceil(next - now) + 1000)
if wait < 0 then wait = 0 end
return {1, math.ceil(wait)}`

// A longer pause wins; a ban replaces a shorter 429 pause and is never shortened by one.
const PAUSE = `local ttl = redis.call("PTTL", KEYS[1])
if ttl < tonumber(ARGV[2]) then redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2]) return 1 end
return 0`

const Reply = Schema.Union(
  Schema.Tuple(Schema.Literal(0, 1), Schema.Number),
  Schema.Tuple(Schema.Literal(2), Schema.Number, Schema.Literal("banned", "rate_limited"))
)

export interface SharedPause {
  readonly reason: "banned" | "rate_limited"
  readonly retryAfterMs: number
}

/** The cluster-wide pause of one exchange, as every instance sees it (for /v1/health). */
export interface SharedCircuit {
  readonly pause: Effect.Effect<Option.Option<SharedPause>, ClusterRedisError>
  readonly report: (pause: SharedPause) => Effect.Effect<void, ClusterRedisError>
}

export const makeSharedCircuit = (conn: ClusterConnection, exchange: string): SharedCircuit => {
  const key = conn.key(`pause:${exchange}`)
  return {
    pause: conn
      .run("circuit.pause", (c) => c.multi().get(key).pttl(key).exec())
      .pipe(
        Effect.map((replies) => {
          const reason = replies?.[0]?.[1]
          const ttl = replies?.[1]?.[1]
          return (reason === "banned" || reason === "rate_limited") && typeof ttl === "number" && ttl > 0
            ? Option.some({ reason, retryAfterMs: ttl })
            : Option.none()
        })
      ),
    report: (pause) =>
      conn
        .run("circuit.report", (c) => c.eval(PAUSE, 1, key, pause.reason, Math.max(1, Math.ceil(pause.retryAfterMs))))
        .pipe(Effect.asVoid)
  }
}

/** What an exchange's answer says about pausing everyone: a 418 ban or a 429 with its Retry-After. */
export const pauseOf = (error: unknown): Option.Option<SharedPause> => {
  if (error instanceof UpstreamUnavailable && error.code === "upstream_banned") {
    return Option.some({ reason: "banned", retryAfterMs: error.retryAfter * 1000 })
  }
  if (error instanceof RateLimited && error.code === "upstream_rate_limited") {
    return Option.some({ reason: "rate_limited", retryAfterMs: error.retryAfter * 1000 })
  }
  return Option.none()
}

/**
 * An exchange's outbound budget counted in Redis across every instance, with the same interface as the local
 * limiter. While Redis is unreachable each call goes through `local` (this instance's own budget) instead.
 */
export const makeSharedLimiter = (
  conn: ClusterConnection,
  exchange: string,
  budget: Budget,
  maxWaitMs: number,
  local: OutboundLimiter
): OutboundLimiter => {
  const rps = budget.requestsPerSecond
  const burst = Math.max(1, Math.floor(rps))
  const emissionMs = 1000 / rps
  const bucketKey = conn.key(`budget:${exchange}`)
  const pauseKey = conn.key(`pause:${exchange}`)
  const circuit = makeSharedCircuit(conn, exchange)

  const refuse = (waitMs: number) =>
    new Rejected({
      error: new RateLimited({
        code: "upstream_rate_limited",
        message: `The cluster's request budget for ${exchange} (${Math.round(rps * 100) / 100} per second) is used up; retry in ${retryAfterSeconds(waitMs)} s`,
        source: exchange,
        retryAfter: retryAfterSeconds(waitMs)
      })
    })

  const paused = (pause: SharedPause) =>
    new Rejected({
      error:
        pause.reason === "banned"
          ? bannedError(exchange, "this cluster", pause.retryAfterMs)
          : slowDownError(exchange, "this cluster", pause.retryAfterMs)
    })

  const run = <A, E, R>(cost: number, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | Rejected, R> =>
    Effect.suspend((): Effect.Effect<A, E | Rejected, R> => {
      if (!conn.isUp()) return local.run(cost, effect)
      const units = Math.max(1, Math.ceil(cost))
      const shared: Effect.Effect<A, E | Rejected | ClusterRedisError, R> = Effect.gen(function* () {
        const raw = yield* conn.run("budget.reserve", (c) =>
          c.eval(RESERVE, 2, bucketKey, pauseKey, emissionMs, burst, units, maxWaitMs)
        )
        const reply = yield* Schema.decodeUnknown(Reply)(raw).pipe(
          Effect.orElse(() => Effect.die(new Error(`unexpected budget reply ${JSON.stringify(raw)}`)))
        )
        if (reply[0] === 2) {
          const pause: SharedPause = { reason: reply[2], retryAfterMs: reply[1] }
          if (pause.reason === "banned" || pause.retryAfterMs > maxWaitMs) return yield* paused(pause)
          yield* Effect.sleep(pause.retryAfterMs)
          return yield* run(cost, effect)
        }
        if (reply[0] === 0) return yield* refuse(reply[1])
        if (reply[1] > 0) yield* Effect.sleep(reply[1])
        return yield* effect.pipe(
          Effect.tapError((error) =>
            Option.match(pauseOf(error), {
              onNone: () => Effect.void,
              onSome: (pause) => Effect.ignore(circuit.report(pause))
            })
          )
        )
      })
      // Redis failed before the call went out: this instance's own budget decides
      return Effect.catchTag(shared, "ClusterRedisError", () => local.run(cost, effect))
    })

  return { budget, run }
}

/** makeLazyLimiters counted in Redis: the drop-in for ResilientExchange's limiters in cluster mode. */
export const makeSharedLazyLimiters = (
  conn: ClusterConnection,
  exchanges: ReadonlyArray<string>,
  configured: (exchange: string) => Option.Option<number>,
  maxWaitMs: number,
  rateLimitMs?: (exchange: string) => Effect.Effect<Option.Option<number>>
) =>
  Effect.map(
    makeLazyLimiters(exchanges, configured, maxWaitMs, rateLimitMs),
    (localOf) => (exchange: string) =>
      Option.map(localOf(exchange), (build) =>
        Effect.map(build, (local) => makeSharedLimiter(conn, exchange, local.budget, maxWaitMs, local))
      )
  )
