import { Clock, Duration, Effect, Either, Option, Ref, Schedule, type Scope } from "effect"
import { backoffSchedule } from "../Resilience/Retry.js"
import type { ApiError, MarketError } from "../Domain/Errors.js"
import type { Candle, Trade } from "../Domain/Market.js"
import type { ExchangeService, ResolvedMarket, StreamChannel, Watcher } from "../Exchange/Exchange.js"
import {
  errorEvent,
  ohlcvEvent,
  orderBookEvent,
  type StatusEvent,
  subscriptionRef,
  tickerSample,
  tradesEvent,
  type UpstreamMessage
} from "./Events.js"

/** Levels per side an upstream book keeps; subscribers take up to this many. */
export const MAX_STREAM_DEPTH = 100
/** Trades asked for per poll when the exchange cannot stream them. */
const POLLED_TRADES = 100

export interface UpstreamSpec {
  readonly channel: StreamChannel
  readonly exchange: string
  readonly symbol: string
  readonly interval: string | null
}

export interface UpstreamSettings {
  readonly stallTimeout: Duration.Duration
  readonly pollInterval: Duration.Duration
  readonly initialBackoff: Duration.Duration
  readonly maxBackoff: Duration.Duration
  readonly backoffMultiplier: number
}

/** Where an upstream's updates come from: a ccxt.pro watcher, or REST polling. */
interface Source {
  readonly mode: "watch" | "poll"
  /** The messages of the next update (possibly none, e.g. a poll without new trades). */
  readonly next: Effect.Effect<ReadonlyArray<UpstreamMessage>, MarketError>
  readonly reset: Effect.Effect<void>
}

/** Errors no retry can fix: the subscriber gets an error event and the stream ends. */
const isPermanent = (error: MarketError): boolean =>
  error._tag === "SymbolNotFound" ||
  error._tag === "UnknownExchange" ||
  error._tag === "UnsupportedInterval" ||
  error._tag === "InvalidParameter"

/**
 * Why a snapshot must not reach subscribers, if it must not: an empty book is a broken answer parsed into nothing (a
 * real market has orders), a crossed one is corrupt (ccxt applied a delta to a stale book). Only a fresh snapshot
 * fixes either.
 */
const brokenSnapshot = (messages: ReadonlyArray<UpstreamMessage>): string | undefined => {
  for (const m of messages) {
    if (m.event_type !== "orderbook") continue
    const bid = m.bids[0]
    const ask = m.asks[0]
    if (bid === undefined && ask === undefined) return "empty order book"
    if (bid !== undefined && ask !== undefined && bid.price >= ask.price) return "crossed order book"
  }
  return undefined
}

const secondsText = (d: Duration.Duration) => `${Math.round(Duration.toMillis(d)) / 1000} s`

const watchSource = (
  exchange: ExchangeService,
  spec: UpstreamSpec,
  market: ResolvedMarket
): Effect.Effect<Source, MarketError, Scope.Scope> => {
  const updates = <A>(
    watcher: Effect.Effect<Watcher<A>, MarketError, Scope.Scope>,
    toMessages: (a: A, receivedAt: number) => ReadonlyArray<UpstreamMessage>
  ) =>
    Effect.map(watcher, (w): Source => ({
      mode: "watch",
      next: Effect.flatMap(w.next, (a) => Effect.map(Clock.currentTimeMillis, (now) => toMessages(a, now))),
      reset: w.reset
    }))
  switch (spec.channel) {
    case "ticker":
      return updates(exchange.watchTicker(market), (t, now) => [tickerSample(t, now)])
    case "trades":
      return updates(exchange.watchTrades(market), (t) =>
        t.trades.length === 0 ? [] : [tradesEvent(t.exchange, t.symbol, t.trades)]
      )
    case "orderbook":
      return updates(exchange.watchOrderBook(market, MAX_STREAM_DEPTH), (b, now) => [orderBookEvent(b, now)])
    case "ohlcv": {
      const interval = spec.interval ?? "1m"
      return updates(exchange.watchOHLCV(market, interval), (o) =>
        o.candles.map((c) => ohlcvEvent(o.exchange, o.symbol, interval, c))
      )
    }
  }
}

/** Trades newer than the ones already seen (by timestamp, then id among equal timestamps). */
const freshTrades = (
  seen: { readonly timestamp: number; readonly ids: ReadonlySet<string | null> } | undefined,
  trades: ReadonlyArray<Trade>
) => {
  const fresh =
    seen === undefined
      ? trades
      : trades.filter(
          (t) => t.timestamp > seen.timestamp || (t.timestamp === seen.timestamp && !seen.ids.has(t.trade_id))
        )
  const newest = trades.reduce((max, t) => Math.max(max, t.timestamp), seen?.timestamp ?? Number.NEGATIVE_INFINITY)
  const ids = new Set(trades.filter((t) => t.timestamp === newest).map((t) => t.trade_id))
  if (seen !== undefined && seen.timestamp === newest) for (const id of seen.ids) ids.add(id)
  // a trade without an id cannot be told apart from another at the same millisecond; treat it as seen
  ids.add(null)
  return { fresh, seen: { timestamp: newest, ids } }
}

const sameCandle = (a: Candle, b: Candle) =>
  a.open === b.open && a.high === b.high && a.low === b.low && a.close === b.close && a.volume === b.volume

const pollSource = (
  exchange: ExchangeService,
  spec: UpstreamSpec,
  market: ResolvedMarket,
  pollInterval: Duration.Duration
): Effect.Effect<Source> =>
  Effect.gen(function* () {
    const started = yield* Ref.make(false)
    const paced = <A>(fetch: Effect.Effect<A, MarketError>) =>
      Effect.zipRight(
        Effect.flatMap(Ref.getAndSet(started, true), (again) => (again ? Effect.sleep(pollInterval) : Effect.void)),
        fetch
      )
    const source = (next: Effect.Effect<ReadonlyArray<UpstreamMessage>, MarketError>): Source => ({
      mode: "poll",
      next: paced(next),
      reset: Effect.void
    })
    switch (spec.channel) {
      case "ticker":
        return source(
          Effect.flatMap(exchange.ticker(market), (t) =>
            Effect.map(Clock.currentTimeMillis, (now) => [tickerSample(t, now)])
          )
        )
      case "orderbook":
        return source(
          Effect.flatMap(exchange.orderBook(market, MAX_STREAM_DEPTH), (b) =>
            Effect.map(Clock.currentTimeMillis, (now) => [orderBookEvent(b, now)])
          )
        )
      case "trades": {
        const seen = yield* Ref.make<Parameters<typeof freshTrades>[0]>(undefined)
        return source(
          Effect.flatMap(exchange.trades(market, POLLED_TRADES), (t) =>
            Ref.modify(seen, (previous) => {
              const result = freshTrades(previous, t.trades)
              return [result.fresh, result.seen] as const
            }).pipe(Effect.map((fresh) => (fresh.length === 0 ? [] : [tradesEvent(t.exchange, t.symbol, fresh)])))
          )
        )
      }
      case "ohlcv": {
        const interval = spec.interval ?? "1m"
        const sent = yield* Ref.make<ReadonlyMap<number, Candle>>(new Map())
        return source(
          Effect.flatMap(exchange.ohlcv(market, { interval, since: Option.none(), limit: 2 }), (o) =>
            Ref.modify(sent, (previous) => {
              // the first poll sends the current candle; later ones what changed (the closing one, a new one)
              const newestSent = Math.max(Number.NEGATIVE_INFINITY, ...previous.keys())
              const candidates = previous.size === 0 ? o.candles.slice(-1) : o.candles
              const changed = candidates.filter((c) => {
                const before = previous.get(c.timestamp)
                return before === undefined ? c.timestamp > newestSent : !sameCandle(before, c)
              })
              const next = new Map([...previous, ...o.candles.map((c) => [c.timestamp, c] as const)].slice(-2))
              return [changed.map((c) => ohlcvEvent(o.exchange, o.symbol, interval, c)), next] as const
            })
          )
        )
      }
    }
  })

/**
 * Runs one upstream until a permanent error: ccxt.pro `watch*` when the exchange has it, REST polling otherwise.
 * A watchdog resets the watcher when no update arrives within the stall timeout (ccxt watchers can hang silently);
 * failures are retried with jittered exponential backoff. Both are announced to subscribers as status events, and a
 * "live" status follows once data flows again.
 */
export const runUpstream = (
  exchange: ExchangeService,
  settings: UpstreamSettings,
  spec: UpstreamSpec,
  publish: (message: UpstreamMessage) => Effect.Effect<void>,
  /** Why `exchange channel` cannot be watched, learnt by an earlier upstream: later ones poll at once. */
  unwatchable: Map<string, string> = new Map()
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const market: ResolvedMarket = { exchange: spec.exchange, symbol: spec.symbol }
    const ref = subscriptionRef(spec)
    const fail = (error: ApiError) => publish(errorEvent(error, ref))

    const watchable = yield* Effect.either(exchange.canWatch(spec.exchange, spec.channel))
    if (Either.isLeft(watchable)) return yield* fail(watchable.left)
    let source: Source
    const watchKey = `${spec.exchange} ${spec.channel}`
    const cannotWatch = unwatchable.get(watchKey)
    if (cannotWatch !== undefined) {
      yield* Effect.logInfo("stream upstream polls", { reason: cannotWatch })
      source = yield* pollSource(exchange, spec, market, settings.pollInterval)
    } else if (watchable.right) {
      const opened = yield* Effect.either(watchSource(exchange, spec, market))
      if (Either.isLeft(opened)) return yield* fail(opened.left)
      source = opened.right
    } else {
      source = yield* pollSource(exchange, spec, market, settings.pollInterval)
    }

    let attempt = 0
    const status = (state: StatusEvent["status"], reason: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (timestamp) =>
        publish({ event_type: "status", status: state, ...ref, reason, attempt, timestamp })
      )
    // the retries' backoff, never shorter than the upstream's Retry-After; a step taken at once still counts
    const backoff = yield* Schedule.driver(
      backoffSchedule(settings).pipe(
        Schedule.intersect(Schedule.identity<{ readonly retryAfterMs: number; readonly atOnce: boolean }>()),
        Schedule.modifyDelay(([, wait], delay) =>
          wait.atOnce ? Duration.zero : Duration.max(delay, Duration.millis(wait.retryAfterMs))
        )
      )
    )
    const reconnect = (reason: string, options: { readonly retryAfterSeconds: number; readonly stalled: boolean }) =>
      Effect.gen(function* () {
        attempt += 1
        yield* Effect.logInfo("stream upstream reconnecting", { reason, attempt, mode: source.mode })
        yield* status("reconnecting", reason)
        yield* source.reset
        // a first stall resubscribes at once: the connection went silent, nothing refused us
        yield* Effect.ignore(
          backoff.next({ retryAfterMs: options.retryAfterSeconds * 1000, atOnce: options.stalled && attempt === 1 })
        )
      })

    const stallTimeout = settings.stallTimeout
    while (true) {
      const next =
        source.mode === "watch"
          ? source.next.pipe(
              Effect.timeout(stallTimeout),
              Effect.map(Option.some),
              Effect.catchTag("TimeoutException", () => Effect.succeed(Option.none()))
            )
          : Effect.map(source.next, Option.some)
      const result = yield* Effect.either(next)
      if (Either.isRight(result)) {
        if (Option.isNone(result.right)) {
          yield* reconnect(`no data for ${secondsText(stallTimeout)}`, { retryAfterSeconds: 0, stalled: true })
          continue
        }
        const messages = result.right.value
        const broken = brokenSnapshot(messages)
        if (broken !== undefined) {
          yield* Effect.logWarning("stream upstream snapshot refused", { reason: broken, mode: source.mode })
          yield* reconnect(broken, { retryAfterSeconds: 0, stalled: source.mode === "watch" })
          continue
        }
        if (attempt > 0) {
          attempt = 0
          yield* backoff.reset
          yield* status("live", "receiving data again")
        }
        for (const message of messages) yield* publish(message)
        continue
      }
      const error = result.left
      if (isPermanent(error)) return yield* fail(error)
      if (error._tag === "NotSupported") {
        if (source.mode === "poll") return yield* fail(error)
        // a documented fallback (e.g. a book feed that needs credentials), not an incident: learnt once
        unwatchable.set(watchKey, error.message)
        yield* Effect.logInfo("stream upstream falls back to polling", { reason: error.message })
        yield* source.reset
        source = yield* pollSource(exchange, spec, market, settings.pollInterval)
        continue
      }
      const retryAfter =
        error._tag === "RateLimited" || (error._tag === "UpstreamUnavailable" && error.code === "upstream_banned")
          ? error.retryAfter
          : 0
      yield* reconnect(error.message, { retryAfterSeconds: retryAfter, stalled: false })
    }
  }).pipe(
    Effect.annotateLogs({
      exchange: spec.exchange,
      channel: spec.channel,
      symbol: spec.symbol,
      ...(spec.interval === null ? {} : { interval: spec.interval })
    })
  )
