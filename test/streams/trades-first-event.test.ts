import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { NotSupported } from "../../src/Domain/Errors.js"
import { type Emulator, type EmulatedExchange, startEmulator } from "../../src/emulator/index.js"
import { Exchange } from "../../src/Exchange/Exchange.js"
import { ExchangeLive } from "../../src/Exchange/Live.js"
import { eventually, type Json, openSse, type SseClient } from "./clients.js"
import { type StreamServer, startStreamServer } from "./server.js"

/** Model time: frozen, so that the trades made while a test watches are exactly the ones it lets the clock make. */
const T0 = Date.UTC(2024, 0, 1, 10, 0, 0)

interface Market {
  readonly exchange: EmulatedExchange
  readonly symbol: string
}

const BINANCE: Market = { exchange: "binance", symbol: "BTC/USDT" }
/** kraken replays its last 50 trades on every (re)subscription. */
const KRAKEN: Market = { exchange: "kraken", symbol: "BTC/USD" }
/** Polled: its trades watcher needs credentials here, so the upstream falls back to REST (as coinbase's books do). */
const COINBASE: Market = { exchange: "coinbaseexchange", symbol: "BTC/USD" }
const MARKETS = [BINANCE, KRAKEN, COINBASE]

/** The live ccxt exchange, except that coinbaseexchange's trades stream refuses like a signed feed does. */
const CoinbaseTradesNeedCredentials = Layer.effect(
  Exchange,
  Effect.map(Exchange, (live) => ({
    ...live,
    watchTrades: (market: Parameters<typeof live.watchTrades>[0]) =>
      market.exchange === "coinbaseexchange"
        ? Effect.succeed({
            next: Effect.fail(
              new NotSupported({
                message: "coinbaseexchange streams watchTrades only with API credentials",
                exchange: "coinbaseexchange",
                method: "watchTrades"
              })
            ),
            reset: Effect.void
          })
        : live.watchTrades(market)
  }))
).pipe(Layer.provide(ExchangeLive))

let emulator: Emulator
let server: StreamServer

beforeAll(async () => {
  emulator = await startEmulator({ clock: "frozen", startTime: T0, wsPushIntervalMs: 50 })
  server = await startStreamServer(
    { ...emulator.env(), ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange", CCXT_THROTTLE: "false" },
    CoinbaseTradesNeedCredentials
  )
})

afterAll(async () => {
  await server?.close()
  await emulator?.close()
})

const url = (m: Market) => `${server.http}/v1/stream/trades?exchange=${m.exchange}&symbol=${m.symbol}`

/** The model's trades of the seconds [from, to), as a trades event carries them. */
const modelTrades = (m: Market, from: number, to: number) =>
  emulator.model.trades(m.exchange, m.symbol, from, to, to).map((t) => ({
    trade_id: String(t.id),
    timestamp: t.timestamp,
    price: t.price,
    amount: t.amount,
    side: t.side
  }))

const hasTrades = (m: Market, from: number, to: number) =>
  emulator.model.trades(m.exchange, m.symbol, from, to, to).length > 0

/** The first whole second from T0 (within an hour) where `accept` holds. */
const findTime = (accept: (t: number) => boolean): number => {
  for (let t = T0; t < T0 + 3_600_000; t += 1000) if (accept(t)) return t
  throw new Error("no such time in the model")
}

const tradesOf = (sse: SseClient) => sse.events("trades").flatMap((e) => e["trades"] as ReadonlyArray<Json>)

/** Waits until the stream has delivered the trade `last` (by id). */
const deliveredUpTo = (sse: SseClient, last: { readonly trade_id: string } | undefined) =>
  eventually(
    () => (tradesOf(sse).some((t) => t["trade_id"] === last?.trade_id) ? true : undefined),
    10_000,
    () => `waiting for trade ${last?.trade_id} in ${JSON.stringify(sse.frames.slice(-3))}`
  )

/** The upstream took its baseline and subscribed (watched) or polled (coinbase) at least once. */
const upstreamReady = (m: Market) =>
  eventually(
    () =>
      m === COINBASE
        ? emulator.requestCount("coinbaseexchange", "/products/BTC-USD/trades") >= 2
          ? true
          : undefined
        : emulator.wsSubscriptions(m.exchange) >= 1
          ? true
          : undefined,
    10_000,
    () => `waiting for the ${m.exchange} upstream`
  )

describe("the first trades event is the same on every exchange", () => {
  it("holds only trades made after the upstream started, watched or polled; a kraken replay after a reconnect is not repeated", async () => {
    // a time from which every market trades within the next 4 s, and within the 3 s after those
    const t0 = findTime((t) => MARKETS.every((m) => hasTrades(m, t, t + 4000) && hasTrades(m, t + 4000, t + 7000)))
    emulator.setTime(t0)
    const streams = await Promise.all(MARKETS.map((m) => openSse(url(m))))
    try {
      for (const m of MARKETS) await upstreamReady(m)
      // what the exchanges had before: the baseline's newest trade, which kraken replays with 49 older ones
      const baseline = MARKETS.map((m) => emulator.model.recentTrades(m.exchange, m.symbol, 1, t0)[0])
      expect(baseline.every((t) => t !== undefined && t.timestamp < t0)).toBe(true)

      // the clock stands still: no trade is made, so nothing is sent, kraken's replay and binance's last trade included
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(streams.map((s) => s.events("trades"))).toEqual([[], [], []])

      const t1 = t0 + 4000
      emulator.advance(t1 - t0)
      const made = MARKETS.map((m) => modelTrades(m, t0, t1))
      expect(made.map((trades) => trades.length > 0)).toEqual([true, true, true])
      await Promise.all(streams.map((sse, i) => deliveredUpTo(sse, made[i]?.at(-1))))
      for (const [i, sse] of streams.entries()) {
        const first = sse.events("trades")[0]
        expect(first).toMatchObject({ exchange: MARKETS[i]?.exchange, symbol: MARKETS[i]?.symbol, dropped: 0 })
        const firstTrades = first?.["trades"] as ReadonlyArray<Json>
        expect(firstTrades.length).toBeGreaterThan(0)
        expect(firstTrades.every((t) => Number(t["timestamp"]) > (baseline[i]?.timestamp ?? Infinity))).toBe(true)
        // exactly the trades made since, in order, on all three
        expect(tradesOf(sse)).toEqual(made[i])
      }
      // kraken and the polled feed carry them in one event: one WebSocket message, one REST answer
      expect(streams[1]?.events("trades")).toHaveLength(1)
      expect(streams[2]?.events("trades")).toHaveLength(1)

      // kraken drops its connection: the upstream resubscribes and kraken replays its last 50 trades again
      const kraken = streams[1]
      if (kraken === undefined) throw new Error("no kraken stream")
      const from = kraken.frames.length
      emulator.inject({ kind: "ws-close", exchange: "kraken" })
      await kraken.next("status", (e) => e["status"] === "reconnecting", { from })
      emulator.clearFaults()
      await kraken.next("status", (e) => e["status"] === "live", { from, timeoutMs: 10_000 })

      // a late joiner to the running kraken upstream gets no trades snapshot, only what is made after it joined
      const late = await openSse(url(KRAKEN))
      try {
        await eventually(async () => ((await server.stats()).subscribers === 4 ? true : undefined))
        const t2 = t1 + 3000
        emulator.advance(t2 - t1)
        const later = MARKETS.map((m) => modelTrades(m, t1, t2))
        expect(later.map((trades) => trades.length > 0)).toEqual([true, true, true])
        await Promise.all(streams.map((sse, i) => deliveredUpTo(sse, later[i]?.at(-1))))
        await deliveredUpTo(late, later[1]?.at(-1))
        expect(tradesOf(late)).toEqual(later[1])
        expect(late.events("trades")[0]?.["trades"]).toEqual(later[1])

        // over the whole session every stream sent each trade made once, and nothing else
        for (const [i, sse] of streams.entries()) {
          expect(tradesOf(sse)).toEqual([...(made[i] ?? []), ...(later[i] ?? [])])
          const ids = tradesOf(sse).map((t) => t["trade_id"])
          expect(new Set(ids).size).toBe(ids.length)
        }
      } finally {
        late.close()
      }
    } finally {
      for (const sse of streams) sse.close()
    }
  })
})
