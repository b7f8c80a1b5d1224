import { Context, Effect, Option, RateLimiter, Scope } from "effect"
import { RateLimited } from "../Domain/Errors.js"
import { importCcxt } from "../Exchange/ccxtClient.js"
import { Rejected } from "./Circuit.js"

/** Without a configured budget or ccxt's rateLimit: a conservative 5 requests per second. */
export const DEFAULT_REQUESTS_PER_SECOND = 5

export interface Budget {
  readonly requestsPerSecond: number
  readonly from: "config" | "ccxt" | "default"
}

/** The outbound request budget of one exchange. */
export interface OutboundLimiter {
  readonly budget: Budget
  /**
   * Runs `effect` once `cost` requests (the upstream requests it really sends) fit in the budget. A caller that would queue for longer than `maxWaitMs`
   * behind the others is refused at once (429 upstream_rate_limited): past that the answer is too late to be useful.
   */
  readonly run: <A, E, R>(cost: number, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Rejected, R>
}

const isConstructor = (u: unknown): u is new () => { readonly rateLimit?: unknown } => typeof u === "function"

/** ccxt's own spacing of requests to `exchange` (ms per request), read from a throwaway instance. */
export const ccxtRateLimitMs = (exchange: string): Effect.Effect<Option.Option<number>> =>
  importCcxt.pipe(
    Effect.flatMap((ccxt) =>
      Effect.try(() => {
        const classes: Readonly<Record<string, unknown>> = ccxt
        const Client = classes[exchange]
        if (!isConstructor(Client)) return Option.none<number>()
        const rateLimit = new Client().rateLimit
        return typeof rateLimit === "number" && Number.isFinite(rateLimit) && rateLimit > 0
          ? Option.some(rateLimit)
          : Option.none<number>()
      })
    ),
    Effect.catchAllCause(() => Effect.succeed(Option.none<number>()))
  )

/** The configured budget, else ccxt's rateLimit as requests per second, else the default. */
export const resolveBudget = (
  exchange: string,
  configured: Option.Option<number>,
  rateLimitMs: (exchange: string) => Effect.Effect<Option.Option<number>> = ccxtRateLimitMs
): Effect.Effect<Budget> =>
  Option.match(configured, {
    onSome: (requestsPerSecond) => Effect.succeed<Budget>({ requestsPerSecond, from: "config" }),
    onNone: () =>
      Effect.map(
        rateLimitMs(exchange),
        Option.match({
          onNone: (): Budget => ({ requestsPerSecond: DEFAULT_REQUESTS_PER_SECOND, from: "default" }),
          onSome: (ms): Budget => ({ requestsPerSecond: 1000 / ms, from: "ccxt" })
        })
      )
  })

/**
 * A token bucket refilled at `budget.requestsPerSecond`, holding about one second of requests (at least one), so a
 * quiet exchange can take a short burst and a busy one is held to its rate.
 */
export const makeOutboundLimiter = (
  exchange: string,
  budget: Budget,
  maxWaitMs: number
): Effect.Effect<OutboundLimiter, never, Scope.Scope> =>
  Effect.gen(function* () {
    const rps = budget.requestsPerSecond
    const burst = Math.max(1, Math.floor(rps))
    const limiter = yield* RateLimiter.make({
      limit: burst,
      interval: Math.max(1, Math.round((burst / rps) * 1000)),
      algorithm: "token-bucket"
    })
    // callers waiting for a token queue behind each other: the last of `queued` waits about queued / rps seconds
    const maxQueued = Math.max(burst, Math.floor((rps * maxWaitMs) / 1000))
    let queued = 0

    const refuse = (waitMs: number) =>
      new Rejected({
        error: new RateLimited({
          code: "upstream_rate_limited",
          message: `This server's request budget for ${exchange} (${Math.round(rps * 100) / 100} per second) is used up; retry in ${Math.max(1, Math.ceil(waitMs / 1000))} s`,
          source: exchange,
          retryAfter: Math.max(1, Math.ceil(waitMs / 1000))
        })
      })

    // a call costing more than the bucket holds takes its tokens in bucket-sized rounds
    const take = (units: number): Effect.Effect<void> =>
      units <= burst
        ? limiter(Effect.void).pipe(RateLimiter.withCost(units))
        : Effect.zipRight(limiter(Effect.void).pipe(RateLimiter.withCost(burst)), take(units - burst))

    const run = <A, E, R>(cost: number, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | Rejected, R> =>
      Effect.suspend((): Effect.Effect<A, E | Rejected, R> => {
        const units = Math.max(1, Math.ceil(cost))
        // an expensive call alone in the queue still goes (slowly); behind others it must fit in the wait
        if (queued > 0 && queued + units > maxQueued) return Effect.fail(refuse(((queued + units) / rps) * 1000))
        queued += units
        let waiting = true
        const leave = Effect.sync(() => {
          if (waiting) queued -= units
          waiting = false
        })
        return take(units).pipe(Effect.zipRight(leave), Effect.zipRight(effect), Effect.ensuring(leave))
      })

    return { budget, run } satisfies OutboundLimiter
  })

/** Builds limiters on first use (reading ccxt's rateLimit needs the 0.7 s ccxt import), each once. */
export const makeLazyLimiters = (
  exchanges: ReadonlyArray<string>,
  configured: (exchange: string) => Option.Option<number>,
  maxWaitMs: number,
  rateLimitMs?: (exchange: string) => Effect.Effect<Option.Option<number>>
): Effect.Effect<(exchange: string) => Option.Option<Effect.Effect<OutboundLimiter>>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const limiters = new Map<string, Effect.Effect<OutboundLimiter>>()
    for (const exchange of exchanges) {
      const build = resolveBudget(exchange, configured(exchange), rateLimitMs).pipe(
        Effect.flatMap((budget) => makeOutboundLimiter(exchange, budget, maxWaitMs)),
        Scope.extend(scope)
      )
      limiters.set(exchange, yield* Effect.cached(build))
    }
    return (exchange: string) => Option.fromNullable(limiters.get(exchange))
  })

export type MakeLimiters = typeof makeLazyLimiters

/**
 * How ResilientExchange builds its per-exchange limiters: this process's own token buckets unless a layer provides
 * another way (cluster mode counts the budget in Redis across instances).
 */
export class OutboundLimiters extends Context.Reference<OutboundLimiters>()("app/OutboundLimiters", {
  defaultValue: (): { readonly make: MakeLimiters } => ({ make: makeLazyLimiters })
}) {}
