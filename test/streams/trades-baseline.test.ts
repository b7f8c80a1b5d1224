import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Queue, TestClock } from "effect"
import { NotSupported, UpstreamUnavailable } from "../../src/Domain/Errors.js"
import { Trade, Trades } from "../../src/Domain/Market.js"
import { Exchange, type ExchangeService } from "../../src/Exchange/Exchange.js"
import type { UpstreamMessage } from "../../src/Streams/Events.js"
import { runUpstream, type UpstreamSettings } from "../../src/Streams/Upstream.js"
import { T0 } from "../support/mockExchange.js"
import { makeScripted, type Scripted, TRADES_PER_POLL } from "./scripted.js"

const SETTINGS: UpstreamSettings = {
  stallTimeout: Duration.seconds(30),
  pollInterval: Duration.seconds(2),
  initialBackoff: Duration.seconds(1),
  maxBackoff: Duration.seconds(1),
  backoffMultiplier: 2
}

const trade = (trade_id: string | null, timestamp: number) =>
  new Trade({ trade_id, timestamp, price: 100, amount: 1, side: "buy" })

const batch = (symbol: string, trades: ReadonlyArray<Trade>) => new Trades({ exchange: "binance", symbol, trades })

/** The mock's REST trades answer (the upstream's baseline): ids "1000"… at T0 + 0…99 ms. */
const restTrades = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => trade(String(1000 + from + i), T0 + from + i))

/** Lets forked fibers reach their next suspension point without moving the clock. */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

/** Runs one trades upstream over the scripted exchange (REST trades counted), publishing into an array. */
const startTrades = (
  scripted: Scripted,
  symbol: string,
  override: (service: ExchangeService) => ExchangeService = (service) => service
) =>
  Effect.gen(function* () {
    const exchange = override(yield* Effect.provide(Exchange, scripted.layer))
    const published: Array<UpstreamMessage> = []
    yield* runUpstream(
      exchange,
      SETTINGS,
      { channel: "trades", exchange: "binance", symbol, interval: null },
      (message) => Effect.sync(() => void published.push(message))
    ).pipe(Effect.forkScoped)
    yield* settle
    return published
  })

/** Each published message in short: a trades event as its trade ids, a status as its state. */
const summary = (messages: ReadonlyArray<UpstreamMessage>) =>
  messages.map((m) =>
    m.event_type === "trades"
      ? m.trades.map((t) => `${t.trade_id}@${t.timestamp - T0}`)
      : m.event_type === "status"
        ? m.status
        : m.event_type
  )

describe("a trades upstream starts from a baseline", () => {
  it.scoped("watched: the exchange's recent trades are history, a replay of them is dropped", () =>
    Effect.gen(function* () {
      const scripted = yield* makeScripted()
      const published = yield* startTrades(scripted, "BTC/USDT")
      // the baseline is one REST request, taken before anything is published
      expect((yield* scripted.counters).polls).toEqual({ trades: 1 })
      expect(published).toEqual([])
      // a kraken-like first update: the last 50 trades again, then one at the newest timestamp with a new id, one later
      yield* Queue.offer(
        scripted.trades,
        Effect.succeed(batch("BTC/USDT", [...restTrades(50, 99), trade("n1", T0 + 99), trade("n2", T0 + 100)]))
      )
      yield* settle
      expect(summary(published)).toEqual([["n1@99", "n2@100"]])
      // a trade without an id at the newest timestamp cannot be told apart from the ones seen: it is not sent
      yield* Queue.offer(scripted.trades, Effect.succeed(batch("BTC/USDT", [trade(null, T0 + 100)])))
      yield* Queue.offer(scripted.trades, Effect.succeed(batch("BTC/USDT", [trade(null, T0 + 101)])))
      yield* settle
      expect(summary(published)).toEqual([["n1@99", "n2@100"], ["null@101"]])
    })
  )

  it.scoped("watched: what was sent stays seen across a reconnect, so a replay after it is not repeated", () =>
    Effect.gen(function* () {
      const scripted = yield* makeScripted()
      const published = yield* startTrades(scripted, "BTC/USDT")
      yield* Queue.offer(
        scripted.trades,
        Effect.succeed(batch("BTC/USDT", [...restTrades(90, 99), trade("n1", T0 + 150)]))
      )
      yield* Queue.offer(
        scripted.trades,
        Effect.fail(
          new UpstreamUnavailable({ code: "upstream_unavailable", message: "gone", source: "binance", retryAfter: 0 })
        )
      )
      yield* settle
      yield* TestClock.adjust("2 seconds")
      // the resubscribed watcher replays everything again, with one trade made meanwhile
      yield* Queue.offer(
        scripted.trades,
        Effect.succeed(batch("BTC/USDT", [...restTrades(90, 99), trade("n1", T0 + 150), trade("n2", T0 + 160)]))
      )
      yield* settle
      expect(summary(published)).toEqual([["n1@150"], "reconnecting", "live", ["n2@160"]])
      expect((yield* scripted.counters).resets).toBe(1)
      // one baseline per upstream, not per reconnect
      expect((yield* scripted.counters).polls).toEqual({ trades: 1 })
    })
  )

  it.scoped("a failed baseline request: trades before the upstream's start time are history, and the stream runs", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(T0 + 50)
      const scripted = yield* makeScripted()
      // every REST call for DOWN/503 fails; the scripted watcher does not
      const published = yield* startTrades(scripted, "DOWN/503")
      expect((yield* scripted.counters).polls).toEqual({})
      yield* Queue.offer(
        scripted.trades,
        Effect.succeed(
          batch("DOWN/503", [trade("a", T0 + 49), trade(null, T0 + 50), trade("b", T0 + 50), trade("c", T0 + 51)])
        )
      )
      yield* settle
      expect(summary(published)).toEqual([["b@50", "c@51"]])
    })
  )

  it.scoped("an empty baseline answer falls back to the start time as well", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(T0 + 50)
      const scripted = yield* makeScripted()
      const published = yield* startTrades(scripted, "BTC/USDT", (service) => ({
        ...service,
        trades: (market) => Effect.succeed(new Trades({ exchange: market.exchange, symbol: market.symbol, trades: [] }))
      }))
      yield* Queue.offer(scripted.trades, Effect.succeed(batch("BTC/USDT", [trade("a", T0 + 49), trade("b", T0 + 50)])))
      yield* settle
      expect(summary(published)).toEqual([["b@50"]])
    })
  )

  it.scoped("polled: the baseline is the first answer, never sent; each poll after it sends only what is new", () =>
    Effect.gen(function* () {
      const scripted = yield* makeScripted([])
      const published = yield* startTrades(scripted, "BTC/USDT")
      // the first poll waits an interval: right after the baseline it could only repeat it
      expect((yield* scripted.counters).polls).toEqual({ trades: 1 })
      yield* TestClock.adjust("1999 millis")
      expect((yield* scripted.counters).polls).toEqual({ trades: 1 })
      yield* TestClock.adjust("1 millis")
      yield* TestClock.adjust("2 seconds")
      expect((yield* scripted.counters).polls).toEqual({ trades: 3 })
      const ids = (from: number) => Array.from({ length: TRADES_PER_POLL }, (_, i) => `${from + i}@${from - 1000 + i}`)
      expect(summary(published)).toEqual([ids(1100), ids(1110)])
    })
  )

  it.scoped("a fallback from watching to polling keeps what was seen", () =>
    Effect.gen(function* () {
      const scripted = yield* makeScripted()
      const published = yield* startTrades(scripted, "BTC/USDT")
      // the watcher sends one new trade (in the REST ids' numbering), then turns out to need credentials
      yield* Queue.offer(scripted.trades, Effect.succeed(batch("BTC/USDT", [trade("1105", T0 + 105)])))
      yield* Queue.offer(
        scripted.trades,
        Effect.fail(new NotSupported({ message: "needs credentials", exchange: "binance", method: "watchTrades" }))
      )
      yield* settle
      yield* TestClock.adjust("2 seconds")
      // the first poll's answer reaches 1109 at T0 + 109: what is older than 1105's timestamp, and 1105, is not repeated
      expect((yield* scripted.counters).polls).toEqual({ trades: 2 })
      expect(summary(published)).toEqual([["1105@105"], ["1106@106", "1107@107", "1108@108", "1109@109"]])
    })
  )
})
