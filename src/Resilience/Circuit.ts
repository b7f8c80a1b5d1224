import { Cause, Clock, Data, Effect, Exit, Metric, Option, Ref } from "effect"
import { type MarketError, RateLimited, UpstreamUnavailable } from "../Domain/Errors.js"
import { circuitOpen } from "../Metrics.js"

/**
 * A call this layer refused without contacting the upstream. Never retried: it carries the error the client gets,
 * already saying when to come back.
 */
export class Rejected extends Data.TaggedError("ResilienceRejected")<{
  readonly error: UpstreamUnavailable | RateLimited
}> {}

export interface CircuitSettings {
  /** Consecutive failed calls (network, 5xx, timeout) that open the circuit; 0 = only bans open it. */
  readonly failureThreshold: number
  /** How long a circuit opened by failures stays open before one probe is let through. */
  readonly cooldownMs: number
  /** Calls wait out a 429 cool-down up to this long (MAX_BACKOFF); a longer one fails them at once. */
  readonly maxWaitMs: number
}

export type CircuitReason = "banned" | "failing"

export interface CircuitSnapshot {
  /** closed: calls go through; open: none do; half-open: one probe call decides. */
  readonly state: "closed" | "open" | "half-open"
  readonly reason: CircuitReason | null
  /** Seconds until an open circuit lets a probe through. */
  readonly retryAfter: number | null
  readonly consecutiveFailures: number
  /** Seconds left of the pause a 429 asked for (calls wait it out or fail fast). */
  readonly rateLimitedFor: number | null
}

export interface Circuit {
  /** Refuses at once while the circuit is open or a long 429 pause runs; a cheap look before queueing for budget. */
  readonly check: Effect.Effect<void, Rejected>
  /**
   * Clears a call to go out now, after waiting out a short 429 pause. `probe` calls are the single trial call of a
   * half-open circuit and must be reported to `record` whatever happens.
   */
  readonly admit: Effect.Effect<{ readonly probe: boolean }, Rejected>
  readonly record: (exit: Exit.Exit<unknown, MarketError>, probe: boolean) => Effect.Effect<void>
  readonly snapshot: Effect.Effect<CircuitSnapshot>
}

interface State {
  readonly mode: "closed" | "open" | "half-open"
  readonly reason: CircuitReason | null
  /** ms epoch at which an open circuit half-opens. */
  readonly until: number
  readonly probing: boolean
  readonly failures: number
  /** ms epoch until which a 429 asked for silence. */
  readonly quietUntil: number
}

const CLOSED: State = { mode: "closed", reason: null, until: 0, probing: false, failures: 0, quietUntil: 0 }

type Admission =
  | { readonly _tag: "Go"; readonly probe: boolean }
  | { readonly _tag: "Wait"; readonly ms: number }
  | { readonly _tag: "Reject"; readonly error: UpstreamUnavailable | RateLimited }

/** Whole seconds a client waits for `ms`, at least 1 (the Retry-After of every refusal). */
export const retryAfterSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000))

/** The refusal while an exchange's 418 ban lasts `ms` more; `who` is what it banned (this server, this cluster). */
export const bannedError = (exchange: string, who: string, ms: number): UpstreamUnavailable =>
  new UpstreamUnavailable({
    code: "upstream_banned",
    message: `${exchange} has banned ${who} for exceeding its rate limits (HTTP 418); no requests are sent to it for another ${retryAfterSeconds(ms)} s`,
    source: exchange,
    retryAfter: retryAfterSeconds(ms)
  })

/** The refusal while an exchange's 429 pause lasts `ms` more; `who` is whom it asked to slow down. */
export const slowDownError = (exchange: string, who: string, ms: number): RateLimited =>
  new RateLimited({
    code: "upstream_rate_limited",
    message: `${exchange} asked ${who} to slow down (HTTP 429); no requests are sent to it for another ${retryAfterSeconds(ms)} s`,
    source: exchange,
    retryAfter: retryAfterSeconds(ms)
  })

/** "failed once", "failed 3 times": a probe that fails opens the circuit after a single failure. */
export const failedInARow = (failures: number): string =>
  failures === 1 ? "failed once" : `failed ${failures} times in a row`

type Outcome = "success" | "banned" | "rate_limited" | "failure" | "answered" | "inconclusive"

/** Which failures count towards opening the circuit: the exchange could not be reached or did not answer. */
const outcomeOf = (exit: Exit.Exit<unknown, MarketError>): { readonly outcome: Outcome; readonly waitMs: number } => {
  if (Exit.isSuccess(exit)) return { outcome: "success", waitMs: 0 }
  const error = Cause.failureOption(exit.cause)
  // interrupted (the caller went away) or a defect: nothing learnt about the exchange
  if (Option.isNone(error)) return { outcome: "inconclusive", waitMs: 0 }
  const e = error.value
  if (e._tag === "UpstreamUnavailable") {
    return e.code === "upstream_banned"
      ? { outcome: "banned", waitMs: e.retryAfter * 1000 }
      : { outcome: "failure", waitMs: 0 }
  }
  if (e._tag === "RateLimited" && e.code === "upstream_rate_limited") {
    return { outcome: "rate_limited", waitMs: e.retryAfter * 1000 }
  }
  if (e._tag === "UpstreamTimeout") return { outcome: "failure", waitMs: 0 }
  return { outcome: "answered", waitMs: 0 }
}

/** The circuit breaker and 429 pause of one exchange. */
export const makeCircuit = (exchange: string, settings: CircuitSettings): Effect.Effect<Circuit> =>
  Effect.gen(function* () {
    const state = yield* Ref.make<State>(CLOSED)
    const gauge = Metric.tagged(circuitOpen, "exchange", exchange)
    const annotations = { component: "resilience", exchange }

    const openError = (s: State, now: number) => {
      if (s.reason === "banned") return bannedError(exchange, "this server", s.until - now)
      const retryAfter = retryAfterSeconds(s.until - now)
      return new UpstreamUnavailable({
        code: "upstream_unavailable",
        message: `${exchange} ${failedInARow(s.failures)}; requests to it are paused for another ${retryAfter} s`,
        source: exchange,
        retryAfter
      })
    }

    const probingError = new UpstreamUnavailable({
      code: "upstream_unavailable",
      message: `${exchange} is being checked after failing; retry in 1 s`,
      source: exchange,
      retryAfter: 1
    })

    const quietError = (ms: number) => slowDownError(exchange, "this server", ms)

    const transition = (before: State, after: State, now: number) => {
      if (before.mode === after.mode && before.reason === after.reason) return Effect.void
      const log =
        after.mode === "open"
          ? Effect.logWarning(
              after.reason === "banned"
                ? `${exchange} banned this server; circuit open, no requests until the ban ends`
                : `${exchange} ${failedInARow(after.failures)}; circuit open`,
              { probeInMs: Math.max(0, after.until - now) }
            )
          : after.mode === "closed"
            ? Effect.logInfo(`${exchange} answers again; circuit closed`)
            : Effect.logInfo(`${exchange} circuit half-open; one probe request goes out`)
      return log.pipe(
        Effect.annotateLogs(annotations),
        Effect.zipRight(Metric.set(gauge, after.mode === "closed" ? 0 : 1))
      )
    }

    const decide = (now: number) =>
      Ref.modify(state, (s): readonly [readonly [Admission, State], State] => {
        if (s.mode === "open") {
          if (now < s.until) return [[{ _tag: "Reject", error: openError(s, now) }, s], s]
          const next: State = { ...s, mode: "half-open", probing: true }
          return [[{ _tag: "Go", probe: true }, s], next]
        }
        if (s.mode === "half-open") {
          if (s.probing) return [[{ _tag: "Reject", error: probingError }, s], s]
          return [[{ _tag: "Go", probe: true }, s], { ...s, probing: true }]
        }
        if (now < s.quietUntil) {
          const ms = s.quietUntil - now
          return [[ms <= settings.maxWaitMs ? { _tag: "Wait", ms } : { _tag: "Reject", error: quietError(ms) }, s], s]
        }
        return [[{ _tag: "Go", probe: false }, s], s]
      })

    const check: Effect.Effect<void, Rejected> = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const s = yield* Ref.get(state)
      if (s.mode === "open" && now < s.until) return yield* new Rejected({ error: openError(s, now) })
      if (s.mode === "closed" && s.quietUntil - now > settings.maxWaitMs) {
        return yield* new Rejected({ error: quietError(s.quietUntil - now) })
      }
    })

    const admit: Effect.Effect<{ readonly probe: boolean }, Rejected> = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const [admission, before] = yield* decide(now)
      switch (admission._tag) {
        case "Go": {
          if (admission.probe) yield* transition(before, { ...before, mode: "half-open" }, now)
          return { probe: admission.probe }
        }
        case "Wait":
          yield* Effect.sleep(admission.ms)
          return yield* admit
        case "Reject":
          return yield* new Rejected({ error: admission.error })
      }
    })

    const record = (exit: Exit.Exit<unknown, MarketError>, probe: boolean) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const { outcome, waitMs } = outcomeOf(exit)
        const [before, after] = yield* Ref.modify(state, (s): readonly [readonly [State, State], State] => {
          // a call sent before a ban began says nothing about the ban: only the probe may end it
          const banHolds = s.mode === "open" && s.reason === "banned" && !probe
          const next = ((): State => {
            switch (outcome) {
              case "success":
                return banHolds ? { ...s, failures: 0 } : { ...CLOSED, quietUntil: s.quietUntil }
              case "banned":
                return {
                  ...s,
                  mode: "open",
                  reason: "banned",
                  until: Math.max(s.mode === "open" && s.reason === "banned" ? s.until : 0, now + waitMs),
                  probing: false
                }
              case "rate_limited": {
                const quietUntil = Math.max(s.quietUntil, now + waitMs)
                return probe ? { ...CLOSED, quietUntil } : { ...s, quietUntil }
              }
              case "failure": {
                const failures = s.failures + 1
                const open = probe || (settings.failureThreshold > 0 && failures >= settings.failureThreshold)
                if (s.mode === "open") return { ...s, failures }
                return open
                  ? {
                      ...s,
                      mode: "open",
                      reason: "failing",
                      until: now + settings.cooldownMs,
                      probing: false,
                      failures
                    }
                  : { ...s, failures }
              }
              case "answered":
                return probe ? { ...CLOSED, quietUntil: s.quietUntil } : s
              case "inconclusive":
                return probe && s.mode === "half-open" ? { ...s, probing: false } : s
            }
          })()
          return [[s, next], next]
        })
        yield* transition(before, after, now)
      })

    const snapshot = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const s = yield* Ref.get(state)
      const open = s.mode === "open" && now < s.until
      const halfOpen = s.mode === "half-open" || (s.mode === "open" && now >= s.until)
      return {
        state: open ? "open" : halfOpen ? "half-open" : "closed",
        reason: s.mode === "closed" ? null : s.reason,
        retryAfter: open ? retryAfterSeconds(s.until - now) : null,
        consecutiveFailures: s.failures,
        rateLimitedFor: now < s.quietUntil ? retryAfterSeconds(s.quietUntil - now) : null
      } satisfies CircuitSnapshot
    })

    yield* Metric.set(gauge, 0)
    return { check, admit, record, snapshot } satisfies Circuit
  })
