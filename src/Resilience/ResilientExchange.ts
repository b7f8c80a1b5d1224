import { Cause, Clock, Context, Duration, Effect, Exit, Layer, Metric, Option, Schedule } from "effect"
import { AppConfig } from "../AppConfig.js"
import {
  type MarketError,
  RateLimited,
  type UnknownExchange,
  type UpstreamError,
  type UpstreamUnavailable,
  UpstreamTimeout
} from "../Domain/Errors.js"
import { Exchange, type ExchangeService, type OhlcvRequest, type ResolvedMarket } from "../Exchange/Exchange.js"
import { PARTIAL_BULK_TICKERS } from "../Exchange/Live.js"
import { singleFlight } from "../Exchange/once.js"
import { canonicalExchangeId } from "../Exchange/symbols.js"
import { upstreamCalls, upstreamDuration, upstreamErrors } from "../Metrics.js"
import { type Circuit, type CircuitSnapshot, makeCircuit, type Rejected } from "./Circuit.js"
import { deadlineOf, DEFAULT_REQUEST_DEADLINE_MS } from "./Deadline.js"
import { makeLazyLimiters, type MakeLimiters, OutboundLimiters } from "./Limiter.js"
import { classifyMarketError, type RetrySettings, retryPolicy } from "./Retry.js"
import { capRetryAfterMs, DEFAULT_RETRY_AFTER_MAX_MS } from "./RetryAfter.js"

export interface ExchangeResilienceService {
  /** Circuit state of every enabled exchange, for /v1/health. */
  readonly circuits: Effect.Effect<Readonly<Record<string, CircuitSnapshot>>>
}

/** Published next to the decorated Exchange by ResilientExchangeLive. */
export class ExchangeResilience extends Context.Tag("app/ExchangeResilience")<
  ExchangeResilience,
  ExchangeResilienceService
>() {}

export interface ResilienceSettings extends RetrySettings {
  readonly enabledExchanges: ReadonlyArray<string>
  readonly exchangeRateLimits: Readonly<Record<string, Option.Option<number>>>
  readonly circuitFailureThreshold: number
  readonly circuitCooldown: Duration.Duration
  /** RETRY_AFTER_MAX: the longest pause a 429's Retry-After imposes on an exchange (default 60 s). */
  readonly retryAfterMax?: Duration.DurationInput
  /** REQUEST_DEADLINE: a request's upstream time, retries and waits for budget included (default 15 s). */
  readonly requestDeadline?: Duration.DurationInput
}

export interface ResilientExchangeOptions {
  /** ccxt's rateLimit (ms per request) of an exchange; reads ccxt by default. */
  readonly rateLimitMs?: (exchange: string) => Effect.Effect<Option.Option<number>>
  /** Builds the outbound limiters; this process's own token buckets by default. */
  readonly limiters?: MakeLimiters
}

type Tagged<M> = Map<string, M>

const taggedOnce = <M>(cache: Tagged<M>, key: string, make: () => M): M => {
  let metric = cache.get(key)
  if (metric === undefined) {
    metric = make()
    cache.set(key, metric)
  }
  return metric
}

/**
 * Wraps an Exchange so that every call that reaches an exchange over the network goes through, in order: the
 * exchange's outbound budget (a token bucket), its circuit (a ban or a run of failures refuses calls without sending
 * them; a 429 pauses them), the call itself, and the retry policy around all of that. Calls answered locally
 * (resolving a symbol once markets are loaded, capabilities, status) and live streams pass straight through.
 */
export const makeResilientExchange = (
  inner: ExchangeService,
  settings: ResilienceSettings,
  options: ResilientExchangeOptions = {}
) =>
  Effect.gen(function* () {
    const deadlineMs = Duration.toMillis(Duration.decode(settings.requestDeadline ?? DEFAULT_REQUEST_DEADLINE_MS))
    const retryAfterMaxMs = Duration.toMillis(Duration.decode(settings.retryAfterMax ?? DEFAULT_RETRY_AFTER_MAX_MS))
    // waiting for budget or out a 429 longer than the request may take is pointless
    const maxWaitMs = Math.min(Duration.toMillis(Duration.decode(settings.maxBackoff)), deadlineMs)
    const configured = (id: string) =>
      Option.firstSomeOf(
        [id, ...settings.enabledExchanges.filter((raw) => canonicalExchangeId(raw) === id)].map(
          (key) => settings.exchangeRateLimits[key] ?? Option.none()
        )
      )
    const makeLimiters = options.limiters ?? makeLazyLimiters
    const limiterOf = yield* makeLimiters(inner.enabled, configured, maxWaitMs, options.rateLimitMs)
    const circuits = new Map<string, Circuit>()
    for (const id of inner.enabled) {
      circuits.set(
        id,
        yield* makeCircuit(id, {
          failureThreshold: settings.circuitFailureThreshold,
          cooldownMs: Duration.toMillis(settings.circuitCooldown),
          maxWaitMs
        })
      )
    }
    const policy = retryPolicy(settings, (error: MarketError | Rejected) =>
      error._tag === "ResilienceRejected" ? { retryable: false } : classifyMarketError(error)
    )

    const callCounters: Tagged<Metric.Metric.Counter<number>> = new Map()
    const errorCounters: Tagged<Metric.Metric.Counter<number>> = new Map()
    const durations: Tagged<Metric.Metric.Histogram<number>> = new Map()

    const observe = (exchange: string, method: string, exit: Exit.Exit<unknown, MarketError>, seconds: number) => {
      const outcome = Exit.isSuccess(exit) ? "ok" : Exit.isInterrupted(exit) ? "interrupted" : "error"
      const calls = taggedOnce(callCounters, `${exchange} ${method} ${outcome}`, () =>
        upstreamCalls.pipe(
          Metric.tagged("source", exchange),
          Metric.tagged("method", method),
          Metric.tagged("outcome", outcome)
        )
      )
      const duration = taggedOnce(durations, `${exchange} ${method}`, () =>
        upstreamDuration.pipe(Metric.tagged("source", exchange), Metric.tagged("method", method))
      )
      const failure = Exit.isFailure(exit) ? errorCodeOf(exit) : undefined
      return Effect.all(
        [
          Metric.increment(calls),
          Metric.update(duration, seconds),
          failure === undefined
            ? Effect.void
            : Metric.increment(
                taggedOnce(errorCounters, `${exchange} ${method} ${failure}`, () =>
                  upstreamErrors.pipe(
                    Metric.tagged("source", exchange),
                    Metric.tagged("method", method),
                    Metric.tagged("code", failure)
                  )
                )
              )
        ],
        { discard: true }
      )
    }

    /** A 429's pause bounded by RETRY_AFTER_MAX, for the circuit, the retry policy and the client alike. */
    const capRetryAfter = <E extends MarketError>(error: E): E =>
      error._tag === "RateLimited" && error.retryAfter * 1000 > retryAfterMaxMs
        ? (new RateLimited({
            code: error.code,
            message: error.message.replace(/retry in \d+ s/, `retry in ${Math.ceil(retryAfterMaxMs / 1000)} s`),
            source: error.source,
            retryAfter: Math.max(1, Math.ceil(capRetryAfterMs(error.retryAfter * 1000, retryAfterMaxMs) / 1000))
          }) as E)
        : error

    /** Retries whose wait would end past the request's deadline are not started: the last failure is the answer. */
    const policyUntil = (deadlineAt: number) =>
      policy.pipe(
        Schedule.delays,
        Schedule.checkEffect((_, delay: Duration.Duration) =>
          Effect.map(Clock.currentTimeMillis, (now) => now + Duration.toMillis(delay) < deadlineAt)
        )
      )

    /** One call to `exchange` under its budget, circuit and retry policy, within the request's deadline. */
    const guarded = <A, E extends MarketError>(
      exchange: string,
      method: string,
      cost: number,
      call: Effect.Effect<A, E>
    ): Effect.Effect<A, E | UpstreamUnavailable | RateLimited | UpstreamTimeout> => {
      const circuit = circuits.get(exchange)
      const limiter = limiterOf(exchange)
      if (circuit === undefined || Option.isNone(limiter)) return call
      // uninterruptible around the call so that an interrupted call (a client gone) is still recorded: a probe that
      // is never reported would hold a half-open circuit shut
      const attempt = Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const { probe } = yield* restore(circuit.admit)
          // not Effect.timed: it reads nanoseconds, which the TestClock cannot give for jittered (fractional ms) time
          const started = yield* Clock.currentTimeMillis
          const exit = yield* Effect.exit(restore(Effect.mapError(call, capRetryAfter)))
          const elapsedMs = (yield* Clock.currentTimeMillis) - started
          yield* circuit.record(exit, probe)
          yield* observe(exchange, method, exit, elapsedMs / 1000)
          return yield* exit
        })
      )
      return Effect.flatMap(deadlineOf(deadlineMs), (deadlineAt) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          circuit.check.pipe(
            Effect.zipRight(limiter.value),
            Effect.flatMap((l) => l.run(cost, attempt)),
            Effect.retry(policyUntil(deadlineAt)),
            Effect.catchTag("ResilienceRejected", (rejected) => Effect.fail(rejected.error)),
            Effect.timeoutFail({
              duration: Duration.millis(Math.max(0, deadlineAt - now)),
              onTimeout: () =>
                new UpstreamTimeout({
                  message: `${exchange} did not complete ${method} within the request deadline of ${deadlineMs / 1000} s`,
                  source: exchange
                })
            })
          )
        )
      ).pipe(Effect.withSpan("Resilience.call", { attributes: { exchange, method } }))
    }

    const marketsLoaded = (exchange: string) =>
      Effect.map(inner.status, (status) => (status[exchange]?.marketsLoadedAt ?? null) !== null)

    // One guarded market-list load per exchange at a time: callers arriving during a cold start share its single
    // budget token and its outcome instead of each queueing for a token of their own.
    const loads = new Map<string, Effect.Effect<unknown, UnknownExchange | UpstreamError>>()
    for (const id of inner.enabled) {
      loads.set(id, yield* singleFlight(guarded(id, "loadMarkets", 1, inner.markets(id))))
    }

    /** Network only while the exchange's markets are not loaded yet: then `call` waits for the shared load. */
    const whileLoading = <A, E extends MarketError>(exchange: string, call: Effect.Effect<A, E>) =>
      Effect.flatMap(inner.resolveExchange(exchange), (id) =>
        Effect.flatMap(marketsLoaded(id), (loaded) => {
          const load = loads.get(id)
          return loaded || load === undefined ? call : Effect.zipRight(load, call)
        })
      )

    const costOfOhlcv = (market: ResolvedMarket, request: OhlcvRequest) =>
      inner.describe(market.exchange).pipe(
        Effect.map((info) => Math.ceil(request.limit / Math.max(1, info.maxCandlesPerRequest))),
        Effect.orElseSucceed(() => 1)
      )

    const exchange: ExchangeService = {
      ...inner,
      resolve: (exchange, symbol) => whileLoading(exchange, inner.resolve(exchange, symbol)),
      markets: (exchange) => whileLoading(exchange, inner.markets(exchange)),
      ticker: (market) => guarded(market.exchange, "fetchTicker", 1, inner.ticker(market)),
      tickers: (exchange, symbols) =>
        Effect.flatMap(inner.resolveExchange(exchange), (id) =>
          inner.describe(id).pipe(
            // what is really sent: one bulk request, or one request per symbol
            Effect.map((info) =>
              info.capabilities.tickers && !PARTIAL_BULK_TICKERS.has(id) ? 1 : Math.max(1, symbols.length)
            ),
            Effect.orElseSucceed(() => Math.max(1, symbols.length)),
            Effect.flatMap((cost) =>
              whileLoading(id, guarded(id, "fetchTickers", cost, inner.tickers(exchange, symbols)))
            )
          )
        ),
      ohlcv: (market, request) =>
        Effect.flatMap(costOfOhlcv(market, request), (cost) =>
          guarded(market.exchange, "fetchOHLCV", cost, inner.ohlcv(market, request))
        ),
      orderBook: (market, limit) => guarded(market.exchange, "fetchOrderBook", 1, inner.orderBook(market, limit)),
      trades: (market, limit) => guarded(market.exchange, "fetchTrades", 1, inner.trades(market, limit))
    }

    const resilience: ExchangeResilienceService = {
      circuits: Effect.map(
        Effect.forEach(Array.from(circuits.entries()), ([id, circuit]) =>
          Effect.map(circuit.snapshot, (snapshot) => [id, snapshot] as const)
        ),
        (entries): Readonly<Record<string, CircuitSnapshot>> => Object.fromEntries(entries)
      )
    }

    return { exchange, resilience } as const
  })

const errorCodeOf = (exit: Exit.Exit<unknown, MarketError>): string | undefined =>
  Exit.isSuccess(exit)
    ? undefined
    : Option.match(Cause.failureOption(exit.cause), {
        onNone: () => (Cause.isInterruptedOnly(exit.cause) ? undefined : "defect"),
        onSome: (error) => error.code
      })

/**
 * Decorates the Exchange it is given with per-exchange outbound limits, circuit breaking and retries, and publishes
 * the circuit states as ExchangeResilience. Wire it over the live one:
 * `ResilientExchangeLive.pipe(Layer.provide(ExchangeLive))`. The limiters are OutboundLimiters' (shared across the
 * cluster in cluster mode).
 */
export const makeResilientExchangeLive = (
  options: ResilientExchangeOptions = {}
): Layer.Layer<Exchange | ExchangeResilience, never, Exchange | AppConfig> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const inner = yield* Exchange
      const config = yield* AppConfig
      const limiters = yield* OutboundLimiters
      const { exchange, resilience } = yield* makeResilientExchange(inner, config, {
        limiters: limiters.make,
        ...options
      })
      return Context.make(Exchange, exchange).pipe(Context.add(ExchangeResilience, resilience))
    })
  )

export const ResilientExchangeLive: Layer.Layer<Exchange | ExchangeResilience, never, Exchange | AppConfig> =
  makeResilientExchangeLive()
