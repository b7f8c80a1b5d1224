import { Clock, Data, Duration, Effect, Either, Layer, Metric, Option, Ref } from "effect"
import { AppConfig } from "../AppConfig.js"
import { upstreamErrors } from "../Metrics.js"
import {
  NotSupported,
  SymbolNotFound,
  UnknownExchange,
  UnsupportedInterval,
  type UpstreamBadResponse,
  type UpstreamError,
  UpstreamTimeout,
  UpstreamUnavailable
} from "../Domain/Errors.js"
import { type MarketInfo, Ohlcv } from "../Domain/Market.js"
import {
  ccxtExchangeIds,
  type CcxtClient,
  createCcxtClient,
  type CreateClient,
  watchOrderBookLimit,
  watchTickerParams
} from "./ccxtClient.js"
import {
  decodeCandles,
  decodeMarkets,
  decodeOrderBook,
  decodeTicker,
  decodeTickers,
  decodeTrades,
  describeClient,
  hasCapability,
  maxCandlesPerRequest
} from "./decode.js"
import { errorClassChain, mapCcxtError, mapUpstreamError } from "./errors.js"
import {
  Exchange,
  type ExchangeService,
  type ExchangeStatus,
  type OhlcvRequest,
  type ResolvedMarket,
  type StreamChannel,
  type Watcher
} from "./Exchange.js"
import { clampLimit, fetchOhlcvPaged, MAX_CANDLES, timeframeToMs } from "./ohlcvPaging.js"
import { makeMemo } from "./once.js"
import {
  canonicalExchangeId,
  isPlausibleExchangeId,
  lookupSymbol,
  makeSymbolIndex,
  normalizeSymbol,
  suggestExchanges,
  suggestSymbols,
  symbolNotFoundMessage,
  type SymbolIndex,
  unknownExchangeError
} from "./symbols.js"

export interface ExchangeLiveOptions {
  /** Builds the ccxt instance of one exchange; tests hand in their own. */
  readonly createClient?: CreateClient
  /** Every exchange id ccxt knows, for suggestions; imports ccxt by default. */
  readonly knownExchangeIds?: Effect.Effect<ReadonlyArray<string>>
}

const MAX_ORDER_BOOK_DEPTH = 5000
const MAX_TRADES = 1000
const TICKER_CONCURRENCY = 4
/** Exchanges whose fetchTickers answers without bid/ask or 24 h stats (coinbaseexchange reads spark-lines). */
export const PARTIAL_BULK_TICKERS: ReadonlySet<string> = new Set(["coinbaseexchange"])

const WATCH_METHODS: Readonly<Record<StreamChannel, string>> = {
  ticker: "watchTicker",
  trades: "watchTrades",
  orderbook: "watchOrderBook",
  ohlcv: "watchOHLCV"
}

class CallFailed extends Data.TaggedError("CallFailed")<{ readonly cause: unknown }> {}
class CallTimedOut extends Data.TaggedError("CallTimedOut")<{ readonly afterMs: number }> {}

interface MarketsSnapshot {
  readonly list: ReadonlyArray<MarketInfo>
  readonly index: SymbolIndex
}

interface Slot {
  readonly id: string
  readonly client: Effect.Effect<CcxtClient, UnknownExchange>
  readonly openClient: Effect.Effect<Option.Option<CcxtClient>>
  readonly markets: Effect.Effect<MarketsSnapshot, UnknownExchange | UpstreamError>
  readonly refresh: Effect.Effect<void>
  readonly status: Effect.Effect<ExchangeStatus>
}

interface CallContext {
  readonly exchange: string
  readonly method: string
  readonly symbol?: string
}

/** The one warning a failed upstream call logs, then the failure. */
const failWithWarning = <E extends Error>(ctx: CallContext, error: E, upstreamError: string) =>
  Effect.logWarning(`${ctx.exchange} ${ctx.method} failed: ${error.message}`).pipe(
    Effect.annotateLogs({
      exchange: ctx.exchange,
      method: ctx.method,
      ...(ctx.symbol === undefined ? {} : { symbol: ctx.symbol }),
      reason: error.message,
      upstreamError
    }),
    Effect.zipRight(Effect.fail(error))
  )

const describeCause = (cause: unknown): string => {
  const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)
  return text.length > 500 ? `${text.slice(0, 500)}…` : text
}

const make = (options: ExchangeLiveOptions) =>
  Effect.gen(function* () {
    const config = yield* AppConfig
    const createClient = options.createClient ?? createCcxtClient
    const knownIds = (options.knownExchangeIds ?? ccxtExchangeIds).pipe(
      Effect.catchAllCause(() => Effect.succeed<ReadonlyArray<string>>([]))
    )
    const timeoutMs = Duration.toMillis(config.exchangeTimeout)
    // ccxt enforces `timeout` per HTTP request; this only catches a call that hangs beyond all of its requests
    const callGuardMs = timeoutMs * 3 + 1_000
    const loadGuardMs = timeoutMs * 8 + 2_000
    const enabled = Array.from(new Set(config.enabledExchanges.map(canonicalExchangeId)))

    const overrideFor = (id: string) => {
      const aliases = config.enabledExchanges.filter((raw) => canonicalExchangeId(raw) === id)
      const overrides = [id, ...aliases].flatMap((key) => {
        const o = config.exchangeOverrides[key]
        return o === undefined ? [] : [o]
      })
      const pick = (f: (o: (typeof overrides)[number]) => Option.Option<string>) => Option.firstSomeOf(overrides.map(f))
      return { apiBase: pick((o) => o.apiBase), wsBase: pick((o) => o.wsBase) }
    }

    /** `guardMs` undefined: no guard at all (watch calls legitimately wait for the next update). */
    const call = <A, E extends Error>(
      ctx: CallContext,
      guardMs: number | undefined,
      f: () => Promise<A>,
      mapError: (cause: unknown) => E
    ): Effect.Effect<A, E | UpstreamTimeout> => {
      const attempt = Effect.tryPromise({
        try: f,
        catch: (cause): CallFailed | CallTimedOut => new CallFailed({ cause })
      })
      const guarded =
        guardMs === undefined
          ? attempt
          : attempt.pipe(
              Effect.timeoutFail({
                duration: Duration.millis(guardMs),
                onTimeout: () => new CallTimedOut({ afterMs: guardMs })
              })
            )
      return guarded.pipe(
        Effect.catchAll((failure) => {
          const mapped =
            failure._tag === "CallTimedOut"
              ? new UpstreamTimeout({
                  message: `${ctx.exchange} did not complete ${ctx.method} within ${failure.afterMs / 1000} s`,
                  source: ctx.exchange
                })
              : mapError(failure.cause)
          return failWithWarning(
            ctx,
            mapped,
            failure._tag === "CallFailed" ? describeCause(failure.cause) : "call guard timeout"
          )
        })
      )
    }

    /**
     * The second half of the integrity gate: a decoded result that contradicts itself or the request fails like a
     * broken body does, with one warning.
     */
    const checked = <A>(ctx: CallContext, result: Either.Either<A, UpstreamBadResponse>) =>
      Either.isRight(result) ? Effect.succeed(result.right) : failWithWarning(ctx, result.left, result.left.message)

    /** A ccxt call about one symbol. */
    const callSymbol = <A>(exchange: string, method: string, symbol: string, f: () => Promise<A>) =>
      call({ exchange, method, symbol }, callGuardMs, f, (cause) =>
        mapCcxtError(cause, { exchange, method, symbol, timeoutMs })
      )

    const makeSlot = (id: string) =>
      Effect.gen(function* () {
        const { apiBase, wsBase } = overrideFor(id)
        const client = yield* makeMemo(
          createClient({ id, timeoutMs, apiBase, wsBase, throttle: config.ccxtThrottle }).pipe(
            Effect.catchTag("CcxtClientError", (error) =>
              error.reason === "unsupported"
                ? Effect.flatMap(knownIds, (known) =>
                    Effect.fail(
                      new UnknownExchange({
                        message: `Exchange "${id}" is enabled on this server but the installed ccxt does not support it`,
                        exchange: id,
                        suggestions: suggestExchanges(id, [], known),
                        enabled
                      })
                    )
                  )
                : Effect.die(error)
            )
          )
        )
        const state = yield* Ref.make<ExchangeStatus>({
          status: "idle",
          marketsLoadedAt: null,
          markets: 0,
          lastError: null
        })

        // what ccxt held after the last good load, to put back when a refresh fails
        let lastGood: { readonly markets: unknown; readonly currencies: unknown } | undefined
        const load = Effect.gen(function* () {
          const c = yield* client.get
          const ctx = { exchange: id, method: "loadMarkets" }
          const raw = yield* call(
            ctx,
            loadGuardMs,
            () => c.loadMarkets(true),
            (e) => mapUpstreamError(e, { ...ctx, timeoutMs })
          )
          const list = yield* checked(ctx, decodeMarkets(id, raw))
          lastGood = { markets: c.markets, currencies: c.currencies }
          const now = yield* Clock.currentTimeMillis
          yield* Ref.set(state, { status: "ready", marketsLoadedAt: now, markets: list.length, lastError: null })
          return { list, index: makeSymbolIndex(list) }
        }).pipe(
          Effect.tapError((error) =>
            Effect.gen(function* () {
              const previous = yield* Ref.get(state)
              const open = yield* client.peek
              if (lastGood !== undefined && Option.isSome(open)) {
                // ccxt may have stored the broken list, and keeps a rejected loadMarkets promise that every later
                // fetch* would rethrow: the previous good list stays in force
                open.value.setMarkets?.(lastGood.markets, lastGood.currencies)
                open.value.marketsLoading = Promise.resolve(open.value.markets)
              }
              yield* Ref.set(state, {
                ...previous,
                status: lastGood !== undefined ? "ready" : "error",
                lastError: error.message
              })
            })
          )
        )
        const markets = yield* makeMemo(load)
        const refresh = markets.peek.pipe(
          Effect.flatMap((current) =>
            Option.isSome(current)
              ? markets.reload.pipe(
                  // the refresh runs outside the resilience layer, which counts every other upstream failure
                  Effect.catchAll((error) => {
                    const counter: Metric.Metric.Counter<number> = upstreamErrors.pipe(
                      Metric.tagged("source", id),
                      Metric.tagged("method", "loadMarkets"),
                      Metric.tagged("code", error.code)
                    )
                    return Metric.increment(counter)
                  }),
                  Effect.asVoid
                )
              : Effect.void
          )
        )
        return {
          id,
          client: client.get,
          openClient: client.peek,
          markets: markets.get,
          refresh,
          status: Ref.get(state)
        } satisfies Slot
      })

    const slots = new Map<string, Slot>()
    for (const id of enabled) slots.set(id, yield* makeSlot(id))
    const allSlots = Array.from(slots.values())

    yield* Effect.addFinalizer(() =>
      Effect.forEach(
        allSlots,
        (slot) =>
          slot.openClient.pipe(
            Effect.flatMap(
              Option.match({
                onNone: () => Effect.void,
                onSome: (c) => Effect.tryPromise(() => c.close()).pipe(Effect.timeout("2 seconds"), Effect.ignoreLogged)
              })
            )
          ),
        { concurrency: "unbounded", discard: true }
      )
    )

    // forked after the finalizer above, so the refresh fibers stop before the clients close
    for (const slot of allSlots) {
      yield* Effect.sleep(config.marketsRefreshInterval).pipe(
        Effect.zipRight(slot.refresh),
        Effect.forever,
        Effect.forkScoped
      )
    }

    const resolveExchange = Effect.fn("Exchange.resolveExchange")(function* (exchange: string) {
      const id = canonicalExchangeId(exchange)
      if (slots.has(id)) return id
      const known = isPlausibleExchangeId(id) ? yield* knownIds : []
      return yield* unknownExchangeError(exchange, enabled, known)
    })

    const slotOf = (exchange: string) =>
      Effect.flatMap(resolveExchange(exchange), (id) => {
        const slot = slots.get(id)
        return slot === undefined ? Effect.dieMessage(`no slot for enabled exchange ${id}`) : Effect.succeed(slot)
      })

    /** Slot and client of a market's exchange, markets loaded. */
    const ready = (exchange: string) =>
      Effect.gen(function* () {
        const slot = yield* slotOf(exchange)
        yield* slot.markets
        return { slot, client: yield* slot.client }
      })

    const requireCapability = (exchange: string, client: CcxtClient, method: string) =>
      hasCapability(client.has, method)
        ? Effect.void
        : Effect.fail(new NotSupported({ message: `${exchange} does not support ${method}`, exchange, method }))

    const resolve = Effect.fn("Exchange.resolve")(function* (exchange: string, symbol: string) {
      const slot = yield* slotOf(exchange)
      const snapshot = yield* slot.markets
      const found = lookupSymbol(snapshot.index, symbol)
      if (found !== undefined) return { exchange: slot.id, symbol: found } satisfies ResolvedMarket
      const normalized = normalizeSymbol(symbol)
      const suggestions = suggestSymbols(snapshot.index, symbol)
      return yield* new SymbolNotFound({
        message: symbolNotFoundMessage(slot.id, normalized, suggestions),
        exchange: slot.id,
        symbol: normalized,
        suggestions
      })
    })

    const describe = Effect.fn("Exchange.describe")(function* (exchange: string) {
      const slot = yield* slotOf(exchange)
      return describeClient(slot.id, yield* slot.client)
    })

    const markets = Effect.fn("Exchange.markets")(function* (exchange: string) {
      const slot = yield* slotOf(exchange)
      return (yield* slot.markets).list
    })

    const ticker = Effect.fn("Exchange.ticker")(function* (market: ResolvedMarket) {
      const { slot, client } = yield* ready(market.exchange)
      yield* requireCapability(slot.id, client, "fetchTicker")
      const raw = yield* callSymbol(slot.id, "fetchTicker", market.symbol, () => client.fetchTicker(market.symbol))
      return yield* checked(
        { exchange: slot.id, method: "fetchTicker", symbol: market.symbol },
        decodeTicker(slot.id, market.symbol, raw)
      )
    })

    const tickers = Effect.fn("Exchange.tickers")(function* (exchange: string, symbols: ReadonlyArray<string>) {
      const slot = yield* slotOf(exchange)
      const resolved: Array<string> = []
      for (const s of symbols) resolved.push((yield* resolve(slot.id, s)).symbol)
      if (resolved.length === 0) return []
      const client = yield* slot.client
      if (hasCapability(client.has, "fetchTickers") && !PARTIAL_BULK_TICKERS.has(slot.id)) {
        const unique = Array.from(new Set(resolved))
        const raw = yield* call(
          { exchange: slot.id, method: "fetchTickers" },
          callGuardMs,
          () => client.fetchTickers(unique),
          (e) =>
            unique.length === 1
              ? mapCcxtError(e, { exchange: slot.id, method: "fetchTickers", symbol: unique[0] ?? "", timeoutMs })
              : mapUpstreamError(e, { exchange: slot.id, method: "fetchTickers", timeoutMs })
        )
        return yield* checked({ exchange: slot.id, method: "fetchTickers" }, decodeTickers(slot.id, resolved, raw))
      }
      yield* requireCapability(slot.id, client, "fetchTicker")
      return yield* Effect.forEach(
        resolved,
        (symbol) =>
          callSymbol(slot.id, "fetchTicker", symbol, () => client.fetchTicker(symbol)).pipe(
            Effect.flatMap((raw) =>
              checked({ exchange: slot.id, method: "fetchTicker", symbol }, decodeTicker(slot.id, symbol, raw))
            )
          ),
        { concurrency: TICKER_CONCURRENCY }
      )
    })

    const ohlcv = Effect.fn("Exchange.ohlcv")(function* (market: ResolvedMarket, request: OhlcvRequest) {
      const { slot, client } = yield* ready(market.exchange)
      yield* requireCapability(slot.id, client, "fetchOHLCV")
      const supported = Object.keys(client.timeframes ?? {})
      if (!supported.includes(request.interval)) {
        return yield* new UnsupportedInterval({
          message:
            `${slot.id} does not offer "${request.interval}" candles. ` +
            `Supported intervals: ${supported.length > 0 ? supported.join(", ") : "none"}`,
          interval: request.interval,
          supported
        })
      }
      const perRequestMax = maxCandlesPerRequest(client.features)
      const timeframeMs = timeframeToMs(request.interval)
      const fetchPage = (since: number | undefined, limit: number) =>
        callSymbol(slot.id, "fetchOHLCV", market.symbol, () =>
          client.fetchOHLCV(market.symbol, request.interval, since, limit)
        ).pipe(
          Effect.flatMap((raw) =>
            checked({ exchange: slot.id, method: "fetchOHLCV", symbol: market.symbol }, decodeCandles(slot.id, raw))
          )
        )
      const candles = yield* fetchOhlcvPaged({
        fetch: fetchPage,
        // paging needs the candle length; an interval ccxt knows but we cannot size gets one request
        limit: Option.isSome(timeframeMs)
          ? clampLimit(request.limit, MAX_CANDLES)
          : clampLimit(request.limit, perRequestMax),
        since: request.since,
        timeframeMs: Option.getOrElse(timeframeMs, () => 60_000),
        perRequestMax,
        now: yield* Clock.currentTimeMillis
      })
      return new Ohlcv({ exchange: slot.id, symbol: market.symbol, interval: request.interval, candles })
    })

    const orderBook = Effect.fn("Exchange.orderBook")(function* (market: ResolvedMarket, limit: number) {
      const { slot, client } = yield* ready(market.exchange)
      yield* requireCapability(slot.id, client, "fetchOrderBook")
      const depth = clampLimit(limit, MAX_ORDER_BOOK_DEPTH)
      const raw = yield* callSymbol(slot.id, "fetchOrderBook", market.symbol, () =>
        client.fetchOrderBook(market.symbol, depth)
      )
      return yield* checked(
        { exchange: slot.id, method: "fetchOrderBook", symbol: market.symbol },
        decodeOrderBook(slot.id, market.symbol, depth, raw)
      )
    })

    const trades = Effect.fn("Exchange.trades")(function* (market: ResolvedMarket, limit: number) {
      const { slot, client } = yield* ready(market.exchange)
      yield* requireCapability(slot.id, client, "fetchTrades")
      const count = clampLimit(limit, MAX_TRADES)
      const raw = yield* callSymbol(slot.id, "fetchTrades", market.symbol, () =>
        client.fetchTrades(market.symbol, undefined, count)
      )
      return yield* checked(
        { exchange: slot.id, method: "fetchTrades", symbol: market.symbol },
        decodeTrades(slot.id, market.symbol, count, raw)
      )
    })

    const canWatch = Effect.fn("Exchange.canWatch")(function* (exchange: string, channel: StreamChannel) {
      const slot = yield* slotOf(exchange)
      return hasCapability((yield* slot.client).has, WATCH_METHODS[channel])
    })

    const closeClient = (c: CcxtClient) =>
      Effect.tryPromise(() => c.close()).pipe(Effect.timeout("2 seconds"), Effect.ignore)

    /**
     * Every watcher gets a ccxt instance of its own, fed the markets the shared instance loaded. ccxt multiplexes
     * streams over shared connections (one per exchange for kraken), so only a private instance can drop one stream's
     * connection and cached book on a stall without disturbing the others.
     */
    const makeWatcher = <A>(
      market: ResolvedMarket,
      channel: StreamChannel,
      run: (client: CcxtClient) => Promise<unknown> | undefined,
      decode: (exchange: string, raw: unknown) => Either.Either<A, UpstreamBadResponse>
    ) =>
      Effect.gen(function* () {
        const method = WATCH_METHODS[channel]
        const { slot, client: shared } = yield* ready(market.exchange)
        yield* requireCapability(slot.id, shared, method)
        const { apiBase, wsBase } = overrideFor(slot.id)
        const current = yield* Ref.make(Option.none<CcxtClient>())
        const open = createClient({ id: slot.id, timeoutMs, apiBase, wsBase, throttle: config.ccxtThrottle }).pipe(
          Effect.mapError(
            (error) =>
              new UpstreamUnavailable({
                code: "upstream_unavailable",
                message: `cannot open a ${slot.id} stream: ${describeCause(error.cause ?? error.reason)}`,
                source: slot.id,
                retryAfter: 5
              })
          ),
          Effect.tap((c) => {
            c.setMarkets?.(shared.markets, shared.currencies)
            return Ref.set(current, Option.some(c))
          })
        )
        const reset = Ref.getAndSet(current, Option.none()).pipe(
          Effect.flatMap(Option.match({ onNone: () => Effect.void, onSome: closeClient }))
        )
        yield* Effect.addFinalizer(() => reset)
        const mapError = (cause: unknown) =>
          // some exchanges sign their book subscriptions; without credentials the stream is unavailable, not broken
          errorClassChain(cause).includes("AuthenticationError")
            ? new NotSupported({
                message: `${slot.id} streams ${method} only with API credentials`,
                exchange: slot.id,
                method
              })
            : mapCcxtError(cause, { exchange: slot.id, method, symbol: market.symbol, timeoutMs })
        const next = Effect.gen(function* () {
          const c = Option.getOrUndefined(yield* Ref.get(current)) ?? (yield* open)
          const raw = yield* call(
            { exchange: slot.id, method, symbol: market.symbol },
            undefined,
            () => run(c) ?? Promise.reject(new Error(`${slot.id} has no ${method}`)),
            mapError
          )
          return yield* checked({ exchange: slot.id, method, symbol: market.symbol }, decode(slot.id, raw))
        })
        return { next, reset } satisfies Watcher<A>
      })

    const watchTicker = Effect.fn("Exchange.watchTicker")((market: ResolvedMarket) =>
      makeWatcher(
        market,
        "ticker",
        (c) => c.watchTicker?.(market.symbol, watchTickerParams(c.id)),
        (id, raw) => decodeTicker(id, market.symbol, raw)
      )
    )

    const watchTrades = Effect.fn("Exchange.watchTrades")((market: ResolvedMarket) =>
      makeWatcher(
        market,
        "trades",
        (c) => c.watchTrades?.(market.symbol),
        (id, raw) => decodeTrades(id, market.symbol, MAX_TRADES, raw)
      )
    )

    const watchOrderBook = Effect.fn("Exchange.watchOrderBook")((market: ResolvedMarket, depth: number) =>
      makeWatcher(
        market,
        "orderbook",
        (c) => c.watchOrderBook?.(market.symbol, watchOrderBookLimit(c.id, depth)),
        (id, raw) => decodeOrderBook(id, market.symbol, depth, raw)
      )
    )

    const watchOHLCV = Effect.fn("Exchange.watchOHLCV")((market: ResolvedMarket, interval: string) =>
      makeWatcher(
        market,
        "ohlcv",
        (c) => c.watchOHLCV?.(market.symbol, interval),
        (id, raw) =>
          Either.map(
            decodeCandles(id, raw),
            (candles) => new Ohlcv({ exchange: id, symbol: market.symbol, interval, candles })
          )
      )
    )

    const status = Effect.map(
      Effect.forEach(allSlots, (slot) => Effect.map(slot.status, (s) => [slot.id, s] as const)),
      (entries): Readonly<Record<string, ExchangeStatus>> => Object.fromEntries(entries)
    )

    return {
      enabled,
      resolveExchange,
      resolve,
      describe,
      markets,
      ticker,
      tickers,
      ohlcv,
      orderBook,
      trades,
      status,
      canWatch,
      watchTicker,
      watchTrades,
      watchOrderBook,
      watchOHLCV
    } satisfies ExchangeService
  })

export const makeExchangeLive = (options: ExchangeLiveOptions = {}): Layer.Layer<Exchange, never, AppConfig> =>
  Layer.scoped(Exchange, make(options))

/** The CCXT boundary: lazily imported ccxt, one instance per enabled exchange, decoded canonical results. */
export const ExchangeLive: Layer.Layer<Exchange, never, AppConfig> = makeExchangeLive()
