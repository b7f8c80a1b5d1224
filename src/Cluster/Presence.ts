import { Effect } from "effect"
import type { ClusterConnection, ClusterRedisError } from "./Connection.js"

// Scores are Redis's own clock, so instances with skewed clocks agree on who is still there.
const BEAT = `local t = redis.call("TIME")
redis.call("ZADD", KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[1])
redis.call("PEXPIRE", KEYS[1], ARGV[2])
return 1`

const PRESENT = `local t = redis.call("TIME")
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[1]))
return redis.call("ZRANGE", KEYS[1], 0, -1)`

/** Which instances have subscribers for a market: a ZSET per market scored by each instance's last heartbeat. */
export interface Presence {
  /** Marks this instance as having subscribers, for `ttlMs`. */
  readonly beat: Effect.Effect<void, ClusterRedisError>
  readonly leave: Effect.Effect<void, ClusterRedisError>
  /** Instances whose heartbeat is younger than `ttlMs`. */
  readonly present: Effect.Effect<ReadonlyArray<string>, ClusterRedisError>
}

export const makePresence = (conn: ClusterConnection, market: string, ttlMs: number): Presence => {
  const key = conn.key(`presence:${market}`)
  const ttl = Math.max(1, Math.round(ttlMs))
  return {
    beat: conn.run("presence.beat", (c) => c.eval(BEAT, 1, key, conn.instanceId, ttl * 2)).pipe(Effect.asVoid),
    leave: conn.run("presence.leave", (c) => c.zrem(key, conn.instanceId)).pipe(Effect.asVoid),
    present: conn
      .run("presence.present", (c) => c.eval(PRESENT, 1, key, ttl))
      .pipe(
        Effect.map((reply) => (Array.isArray(reply) ? reply.filter((m): m is string => typeof m === "string") : []))
      )
  }
}
