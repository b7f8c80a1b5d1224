import { Effect, Option } from "effect"
import type { ClusterConnection, ClusterRedisError } from "./Connection.js"

// Takes the lease only if nobody holds it, and records this instance as the market's last owner (kept longer than the
// lease) so the caller learns whether it took the market over from someone else.
const ACQUIRE = `if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then
  local previous = redis.call("GET", KEYS[2])
  redis.call("SET", KEYS[2], ARGV[3], "PX", ARGV[4])
  if previous then return previous end
  return ""
end
return false`

const RENEW = `if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  redis.call("PEXPIRE", KEYS[2], ARGV[3])
  return 1
end
return 0`

// Deletes only our own lease, and tells the contenders on the market's channel so one takes over at once.
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[1])
  redis.call("PUBLISH", KEYS[2], ARGV[2])
  return 1
end
return 0`

export interface LeaseKeys {
  readonly lease: string
  readonly lastOwner: string
  readonly channel: string
}

export const leaseKeys = (conn: ClusterConnection, market: string): LeaseKeys => ({
  lease: conn.key(`lease:${market}`),
  lastOwner: conn.key(`owner:${market}`),
  channel: conn.key(`channel:${market}`)
})

/** The message RELEASE publishes on the market's channel. */
export const releaseMessage = (instanceId: string): string => JSON.stringify({ t: "release", from: instanceId })

const lastOwnerTtl = (ttlMs: number) => Math.max(60_000, ttlMs * 10)

/** The lease operations on one market, for one holder token. */
export interface Lease {
  readonly token: string
  /** Some(previous owner's instance id, "" if none known) when this call took the lease; None when another holds it. */
  readonly acquire: Effect.Effect<Option.Option<string>, ClusterRedisError>
  /** false: the lease expired or another token holds it (lost). */
  readonly renew: Effect.Effect<boolean, ClusterRedisError>
  readonly release: Effect.Effect<boolean, ClusterRedisError>
  /** The token holding the lease now, if any. */
  readonly holder: Effect.Effect<Option.Option<string>, ClusterRedisError>
}

let sequence = 0

export const makeLease = (conn: ClusterConnection, market: string, ttlMs: number): Lease => {
  sequence += 1
  const token = `${conn.instanceId}#${sequence}`
  const keys = leaseKeys(conn, market)
  const ttl = Math.max(1, Math.round(ttlMs))
  return {
    token,
    acquire: conn
      .run("lease.acquire", (c) =>
        c.eval(ACQUIRE, 2, keys.lease, keys.lastOwner, token, ttl, conn.instanceId, lastOwnerTtl(ttl))
      )
      .pipe(Effect.map((reply) => (typeof reply === "string" ? Option.some(reply) : Option.none()))),
    renew: conn
      .run("lease.renew", (c) => c.eval(RENEW, 2, keys.lease, keys.lastOwner, token, ttl, lastOwnerTtl(ttl)))
      .pipe(Effect.map((reply) => reply === 1)),
    release: conn
      .run("lease.release", (c) => c.eval(RELEASE, 2, keys.lease, keys.channel, token, releaseMessage(conn.instanceId)))
      .pipe(Effect.map((reply) => reply === 1)),
    holder: conn.run("lease.holder", (c) => c.get(keys.lease)).pipe(Effect.map(Option.fromNullable))
  }
}
