import { Clock, Duration, Effect, Either, Option, Ref, Schedule, type Scope } from "effect"
import { backoffSchedule } from "../Resilience/Retry.js"
import type { ApiError, MarketError } from "../Domain/Errors.js"
import type { Candle, Trades } from "../Domain/Market.js"
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
/** Recent trades asked for per REST request: a trades upstream's baseline, and each poll when it cannot stream. */
const RECENT_TRADES = 100

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

const tradesMessages = (t: Trades): ReadonlyArray<UpstreamMessage> =>
  t.trades.length === 0 ? [] : [tradesEvent(t.exchange, t.symbol, t.trades)]

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
      return updates(exchange.watchTrades(market), tradesMessages)
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

/** What a trades upstream has accounted for: the newest timestamp, and the ids of the trades at that timestamp. */
interface SeenTrades {
  readonly timestamp: number
  readonly ids: ReadonlySet<string | null>
}

const NOTHING_SEEN: SeenTrades = { timestamp: Number.NEGATIVE_INFINITY, ids: new Set() }

/** Trades newer than the ones already seen (by timestamp, then id among equal timestamps). */
const freshTrades = <T extends { readonly timestamp: number; readonly trade_id: string | null }>(
  seen: SeenTrades,
  trades: ReadonlyArray<T>
) => {
  const fresh = trades.filter(
    (t) => t.timestamp > seen.timestamp || (t.timestamp === seen.timestamp && !seen.ids.has(t.trade_id))
  )
  const newest = trades.reduce((max, t) => Math.max(max, t.timestamp), seen.timestamp)
  const ids = new Set(trades.filter((t) => t.timestamp === newest).map((t) => t.trade_id))
  if (seen.timestamp === newest) for (const id of seen.ids) ids.add(id)
  // a trade without an id cannot be told apart from another at the same millisecond; treat it as seen
  ids.add(null)
  return { fresh, seen: { timestamp: newest, ids } satisfies SeenTrades }
}

/**
 * What a trades upstream takes as history when it starts: the exchange's recent trades, or, when it has none to give
 * (a failed or empty answer), every trade before the upstream's start time. A failure here never stops the stream.
 */
const tradeBaseline = (exchange: ExchangeService, market: ResolvedMarket): Effect.Effect<SeenTrades> =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const recent = yield* Effect.either(exchange.trades(market, RECENT_TRADES))
    if (Either.isRight(recent) && recent.right.trades.length > 0)
      return freshTrades(NOTHING_SEEN, recent.right.trades).seen
    yield* Effect.logInfo("stream upstream takes its start time as the trades baseline", {
      reason: Either.isLeft(recent) ? recent.left.message : "the exchange returned no recent trades"
    })
    return { timestamp: startedAt, ids: new Set([null]) }
  })

/**
 * The one dedupe policy of trades upstreams, watched or polled: what the exchange had traded when the upstream started
 * is history (GET /v1/markets/trades serves it), and every batch after that passes `freshTrades`, whose state
 * outlives watcher resets, reconnects and a fallback to polling. So the first event holds only new trades on every
 * exchange, and a replay on (re)subscribing (kraken sends its last 50 trades) is never sent again.
 */
const newTradesOnly = (
  exchange: ExchangeService,
  spec: UpstreamSpec,
  market: ResolvedMarket
): Effect.Effect<(messages: ReadonlyArray<UpstreamMessage>) => ReadonlyArray<UpstreamMessage>> =>
  Effect.gen(function* () {
    if (spec.channel !== "trades") return (messages) => messages
    let seen = yield* tradeBaseline(exchange, market)
    return (messages) =>
      messages.flatMap((message): ReadonlyArray<UpstreamMessage> => {
        if (message.event_type !== "trades") return [message]
        const result = freshTrades(seen, message.trades)
        seen = result.seen
        if (result.fresh.length === message.trades.length) return [message]
        return result.fresh.length === 0 ? [] : [{ ...message, trades: result.fresh }]
      })
  })

const sameCandle = (a: Candle, b: Candle) =>
  a.open === b.open && a.high === b.high && a.low === b.low && a.close === b.close && a.volume === b.volume

const pollSource = (
  exchange: ExchangeService,
  spec: UpstreamSpec,
  market: ResolvedMarket,
  pollInterval: Duration.Duration
): Effect.Effect<Source> =>
  Effect.gen(function* () {
    // a trades feed starts from its baseline, a REST answer just taken: its first poll would repeat it
    const started = yield* Ref.make(spec.channel === "trades")
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
      case "trades":
        return source(Effect.map(exchange.trades(market, RECENT_TRADES), tradesMessages))
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
    const fresh = yield* newTradesOnly(exchange, spec, market)
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
        const messages = fresh(result.right.value)
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
