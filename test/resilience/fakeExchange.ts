import { Clock, Duration, Effect, Fiber, Option, Ref, TestClock } from "effect"
import {
  type MarketError,
  RateLimited,
  SymbolNotFound,
  UpstreamBadResponse,
  type UpstreamError,
  UpstreamTimeout,
  UpstreamUnavailable
} from "../../src/Domain/Errors.js"
import { ExchangeInfo, MarketInfo, Ticker } from "../../src/Domain/Market.js"
import type { ExchangeService, ExchangeStatus, ResolvedMarket } from "../../src/Exchange/Exchange.js"
import type { ResilienceSettings } from "../../src/Resilience/ResilientExchange.js"

export const unavailable = new UpstreamUnavailable({
  code: "upstream_unavailable",
  message: "binance is unavailable (HTTP 503); retry in 5 s",
  source: "binance",
  retryAfter: 5
})
export const timeout = new UpstreamTimeout({ message: "binance did not answer", source: "binance" })
export const badPayload = new UpstreamBadResponse({ message: "malformed", source: "binance" })
export const notFound = new SymbolNotFound({
  message: "no such symbol",
  exchange: "binance",
  symbol: "NO/PE",
  suggestions: []
})
export const rateLimited = (retryAfter: number) =>
  new RateLimited({ code: "upstream_rate_limited", message: "slow down", source: "binance", retryAfter })
export const banned = (retryAfter: number) =>
  new UpstreamUnavailable({ code: "upstream_banned", message: "banned", source: "binance", retryAfter })

export const tickerOf = (market: ResolvedMarket, last: number) =>
  new Ticker({
    exchange: market.exchange,
    symbol: market.symbol,
    bid: last - 1,
    ask: last + 1,
    last,
    timestamp: 0,
    datetime: null,
    high: null,
    low: null,
    open: null,
    close: last,
    baseVolume: null,
    quoteVolume: null,
    change: null,
    percentage: null,
    vwap: null,
    source: "exchange",
    raw: {}
  })

/** What the next upstream call does: fail with an error, or succeed (null), optionally after a delay. */
type Failure = UpstreamError | SymbolNotFound
export type Step = Failure | null | { readonly delay: Duration.DurationInput; readonly then: Failure | null }

export interface FakeUpstream {
  readonly service: ExchangeService
  /** Clock time (ms) of every upstream call, in order. */
  readonly calls: Ref.Ref<ReadonlyArray<number>>
  readonly script: (...steps: ReadonlyArray<Step>) => Effect.Effect<void>
  readonly setMarketsLoaded: (loaded: boolean) => Effect.Effect<void>
}

/** An ExchangeService (`id` only, binance by default) whose network calls follow a script; unscripted calls succeed. */
export const makeFakeUpstreamFor = (id: string) =>
  Effect.gen(function* () {
    const calls = yield* Ref.make<ReadonlyArray<number>>([])
    const steps = yield* Ref.make<ReadonlyArray<Step>>([])
    const loaded = yield* Ref.make(true)

    const network = <A>(value: A): Effect.Effect<A, Failure> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        yield* Ref.update(calls, (list) => [...list, now])
        const step = yield* Ref.modify(steps, (list): readonly [Step, ReadonlyArray<Step>] =>
          list.length === 0 ? [null, list] : [list[0] ?? null, list.slice(1)]
        )
        const outcome = step !== null && "delay" in step ? step : { delay: Duration.zero, then: step }
        if (Duration.greaterThan(Duration.decode(outcome.delay), Duration.zero)) yield* Effect.sleep(outcome.delay)
        if (outcome.then !== null) return yield* Effect.fail(outcome.then)
        return value
      })

    const resolveExchange = (exchange: string) => Effect.succeed(exchange.toLowerCase())
    const resolved = (symbol: string): ResolvedMarket => ({ exchange: id, symbol: symbol.toUpperCase() })
    const status = Effect.map(Ref.get(loaded), (isLoaded): Readonly<Record<string, ExchangeStatus>> => ({
      [id]: {
        status: isLoaded ? "ready" : "idle",
        marketsLoadedAt: isLoaded ? 1 : null,
        markets: isLoaded ? 1 : 0,
        lastError: null
      }
    }))
    const unsupported = () => Effect.dieMessage("not used in these tests")

    const service: ExchangeService = {
      enabled: [id],
      resolveExchange,
      resolve: (_exchange, symbol) =>
        Effect.flatMap(Ref.get(loaded), (isLoaded) =>
          isLoaded
            ? Effect.succeed(resolved(symbol))
            : network(resolved(symbol)).pipe(Effect.tap(() => Ref.set(loaded, true)))
        ),
      describe: () =>
        Effect.succeed(
          new ExchangeInfo({
            id,
            name: id,
            capabilities: { ticker: true, tickers: true, ohlcv: true, orderbook: true, trades: true, websocket: false },
            intervals: ["1m"],
            maxCandlesPerRequest: 1000
          })
        ),
      markets: () =>
        network<ReadonlyArray<MarketInfo>>([
          new MarketInfo({
            symbol: "BTC/USDT",
            id: "BTCUSDT",
            base: "BTC",
            quote: "USDT",
            type: "spot",
            active: true,
            precision: { price: 0.01, amount: 0.0001 }
          })
        ]).pipe(
          Effect.tap(() => Ref.set(loaded, true)),
          Effect.catchTag("SymbolNotFound", Effect.die)
        ),
      ticker: (market) => network(tickerOf(market, 100)),
      tickers: (_exchange, symbols) => network(symbols.map((s) => tickerOf(resolved(s), 100))),
      ohlcv: unsupported,
      orderBook: unsupported,
      trades: unsupported,
      status,
      canWatch: () => Effect.succeed(false),
      watchTicker: unsupported,
      watchTrades: unsupported,
      watchOrderBook: unsupported,
      watchOHLCV: unsupported
    }
    return {
      service,
      calls,
      script: (...next: ReadonlyArray<Step>) => Ref.update(steps, (list) => [...list, ...next]),
      setMarketsLoaded: (value: boolean) => Ref.set(loaded, value)
    } satisfies FakeUpstream
  })

export const makeFakeUpstream = makeFakeUpstreamFor("binance")

export const settings = (overrides: Partial<ResilienceSettings> = {}): ResilienceSettings => ({
  enabledExchanges: ["binance"],
  exchangeRateLimits: { binance: Option.some(1000) },
  maxRetries: 3,
  initialBackoff: Duration.millis(100),
  maxBackoff: Duration.seconds(2),
  backoffMultiplier: 2,
  circuitFailureThreshold: 0,
  circuitCooldown: Duration.seconds(30),
  ...overrides
})

/** Runs `effect` in the background, moves the TestClock by `by`, and returns its outcome. */
export const settle = <A>(effect: Effect.Effect<A, MarketError>, by: Duration.DurationInput = "10 minutes") =>
  Effect.gen(function* () {
    const fiber = yield* Effect.fork(Effect.either(effect))
    yield* TestClock.adjust(by)
    return yield* Fiber.join(fiber)
  })
