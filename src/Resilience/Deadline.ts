import { Clock, Effect, FiberRef, Option } from "effect"

/** REQUEST_DEADLINE's default: a client hears back within 15 s, whatever the upstream does. */
export const DEFAULT_REQUEST_DEADLINE_MS = 15_000

/**
 * When the current request must be answered, ms since epoch. Set once per request (`withRequestDeadline`); every
 * upstream call it makes (the market list load, the call itself, their retries) shares it, and fibers forked for the
 * request (a coalesced cache fetch) inherit it.
 */
const currentDeadline = FiberRef.unsafeMake<Option.Option<number>>(Option.none())

/** The current request's deadline, or one `ms` from now outside of a request. */
export const deadlineOf = (ms: number): Effect.Effect<number> =>
  Effect.flatMap(FiberRef.get(currentDeadline), (set) =>
    Option.match(set, { onSome: Effect.succeed, onNone: () => Effect.map(Clock.currentTimeMillis, (now) => now + ms) })
  )

/** Runs `effect` with a deadline `ms` from now, unless an enclosing request already set an earlier one. */
export const withRequestDeadline =
  (ms: number) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(deadlineOf(ms), (at) => Effect.locally(effect, currentDeadline, Option.some(at)))
