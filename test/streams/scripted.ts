import { Effect, Layer, Queue, Ref, Stream } from "effect"
import type { MarketError } from "../../src/Domain/Errors.js"
import { type OrderBook, type Ohlcv, Ticker, Trade, Trades } from "../../src/Domain/Market.js"
import { Exchange, type ExchangeService, type StreamChannel, type Watcher } from "../../src/Exchange/Exchange.js"
import type { Subscription, SubscriptionEvent } from "../../src/Streams/Events.js"
import type { StreamHub } from "../../src/Streams/StreamHub.js"
import { makeMockExchange, T0, tickerOf } from "../support/mockExchange.js"

export interface Counters {
  /** Watchers opened (one per upstream start) and closed. */
  readonly opened: number
  readonly closed: number
  readonly resets: number
  /** REST polls, by method. */
  readonly polls: Readonly<Record<string, number>>
}

/** One scripted update: a value, a failure, or `Effect.never` for an exchange that went silent. */
export type Step<A> = Effect.Effect<A, MarketError>

export interface Scripted {
  readonly layer: Layer.Layer<Exchange>
  readonly ticker: Queue.Queue<Step<Ticker>>
  readonly trades: Queue.Queue<Step<Trades>>
  readonly book: Queue.Queue<Step<OrderBook>>
  readonly ohlcv: Queue.Queue<Step<Ohlcv>>
  readonly counters: Effect.Effect<Counters>
  /** Which channels the exchange streams; the others are polled. */
  readonly watchable: Ref.Ref<ReadonlySet<StreamChannel>>
}

/**
 * How many trades newer each REST trades answer is than the previous one. The first answer is the mock's: ids
 * "1000"… at T0, T0 + 1 ms, …
 */
export const TRADES_PER_POLL = 10

export const ticker = (last: number, timestamp: number | null = T0): Ticker =>
  new Ticker({ ...tickerOf({ exchange: "binance", symbol: "BTC/USDT" }, last), timestamp })

/** The mock Exchange of the API tests, with watchers fed by the test and REST polls counted. */
export const makeScripted = (watchable: ReadonlyArray<StreamChannel> = ["ticker", "trades", "orderbook", "ohlcv"]) =>
  Effect.gen(function* () {
    const mock = yield* makeMockExchange
    const base = yield* Effect.provide(Exchange, mock.layer)
    const counters = yield* Ref.make<Counters>({ opened: 0, closed: 0, resets: 0, polls: {} })
    const channels = yield* Ref.make<ReadonlySet<StreamChannel>>(new Set(watchable))
    const queues = {
      ticker: yield* Queue.unbounded<Step<Ticker>>(),
      trades: yield* Queue.unbounded<Step<Trades>>(),
      book: yield* Queue.unbounded<Step<OrderBook>>(),
      ohlcv: yield* Queue.unbounded<Step<Ohlcv>>()
    }
    const watcher = <A>(queue: Queue.Queue<Step<A>>) =>
      Effect.acquireRelease(
        Ref.update(counters, (c) => ({ ...c, opened: c.opened + 1 })),
        () => Ref.update(counters, (c) => ({ ...c, closed: c.closed + 1 }))
      ).pipe(
        Effect.as<Watcher<A>>({
          next: Effect.flatten(Queue.take(queue)),
          reset: Ref.update(counters, (c) => ({ ...c, resets: c.resets + 1 }))
        })
      )
    const poll = (method: string) =>
      Ref.modify(counters, (c) => {
        const n = c.polls[method] ?? 0
        return [n, { ...c, polls: { ...c.polls, [method]: n + 1 } }] as const
      })
    const service: ExchangeService = {
      ...base,
      canWatch: (exchange, channel) =>
        Effect.zipRight(
          base.resolveExchange(exchange),
          Effect.map(Ref.get(channels), (set) => set.has(channel))
        ),
      watchTicker: () => watcher(queues.ticker),
      watchTrades: () => watcher(queues.trades),
      watchOrderBook: () => watcher(queues.book),
      watchOHLCV: () => watcher(queues.ohlcv),
      ticker: (market) =>
        Effect.zipRight(
          base.ticker(market),
          Effect.map(poll("ticker"), (n) => tickerOf(market, 100 + n))
        ),
      // each answer holds the latest `limit` trades, TRADES_PER_POLL newer than the previous answer's (ids go up by one)
      trades: (market, limit) =>
        Effect.flatMap(base.trades(market, limit), (answer) =>
          Effect.map(
            poll("trades"),
            (n) =>
              new Trades({
                ...answer,
                trades: answer.trades.map(
                  (t) =>
                    new Trade({
                      ...t,
                      trade_id: String(Number(t.trade_id) + n * TRADES_PER_POLL),
                      timestamp: t.timestamp + n * TRADES_PER_POLL
                    })
                )
              })
          )
        ),
      orderBook: (market, limit) => Effect.zipLeft(base.orderBook(market, limit), poll("orderBook")),
      ohlcv: (market, request) => Effect.zipLeft(base.ohlcv(market, request), poll("ohlcv"))
    }
    return {
      layer: Layer.succeed(Exchange, service),
      ticker: queues.ticker,
      trades: queues.trades,
      book: queues.book,
      ohlcv: queues.ohlcv,
      counters: Ref.get(counters),
      watchable: channels
    } satisfies Scripted
  })

/** One subscription's events as a Stream, through the hub's `attach` as the gateway uses it; ends after an error. */
export const subscribeTo = (hub: StreamHub, subscription: Subscription): Stream.Stream<SubscriptionEvent> =>
  Stream.asyncScoped<SubscriptionEvent>(
    (emit) =>
      Effect.acquireRelease(
        hub.attach(subscription, {
          event: (event) => void emit.single(event),
          end: () => void emit.end()
        }),
        (detach) => detach()
      ),
    "unbounded"
  )
