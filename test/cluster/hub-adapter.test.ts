import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Option, Stream } from "effect"
import { statusEvent } from "../../src/Cluster/Bus.js"
import { fromClusterEvent, runLocalOf, toClusterEvent } from "../../src/Cluster/HubAdapter.js"
import type { OrderBookEvent, TradesEvent, UpstreamMessage } from "../../src/Streams/Events.js"

const REF = { channel: "orderbook", exchange: "binance", symbol: "BTC/USDT" } as const
const BOOK: OrderBookEvent = {
  event_type: "orderbook",
  exchange: "binance",
  symbol: "BTC/USDT",
  bids: [{ price: 100, amount: 1 }],
  asks: [{ price: 101, amount: 2 }],
  timestamp: 1_700_000_000_000
}
const TRADES: TradesEvent = { event_type: "trades", exchange: "binance", symbol: "BTC/USDT", trades: [], dropped: 0 }

describe("hub adapter: the stream hub's upstream messages over cluster events", () => {
  it("books, tickers and candles are snapshots; trades are not; both come back unchanged through JSON", () => {
    const book = toClusterEvent(BOOK)
    const trades = toClusterEvent(TRADES)
    expect(book).toEqual({ kind: "orderbook", payload: BOOK, snapshot: true })
    expect(trades).toEqual({ kind: "trades", payload: TRADES })
    const overTheWire = JSON.parse(JSON.stringify(book)) as typeof book
    expect(fromClusterEvent(overTheWire, REF)).toEqual(Option.some(BOOK))
    expect(fromClusterEvent(trades, REF)).toEqual(Option.some(TRADES))
  })

  it("the cluster's own status events become the hub's status events for the subscription", () => {
    const event = statusEvent("reconnecting", "owner_changed")
    const timestamp = (event.payload as { timestamp: number }).timestamp
    expect(fromClusterEvent(event, REF)).toEqual(
      Option.some({
        ...REF,
        event_type: "status",
        status: "reconnecting",
        reason: "cluster: owner_changed",
        attempt: 0,
        timestamp
      })
    )
    expect(fromClusterEvent({ kind: "status", payload: { status: "closing" } }, REF)).toEqual(Option.none())
    expect(fromClusterEvent({ kind: "mystery", payload: { event_type: "heartbeat" } }, REF)).toEqual(Option.none())
  })

  it.effect("runLocalOf turns the hub's publish callback into the stream attach runs", () =>
    Effect.gen(function* () {
      let stopped = false
      const run = (publish: (m: UpstreamMessage) => Effect.Effect<void>) =>
        Effect.gen(function* () {
          yield* Effect.addFinalizer(() => Effect.sync(() => (stopped = true)))
          yield* publish(BOOK)
          yield* publish(TRADES)
        })
      const events = yield* Stream.runCollect(runLocalOf(run))
      expect(Chunk.toReadonlyArray(events)).toEqual([toClusterEvent(BOOK), toClusterEvent(TRADES)])
      expect(stopped).toBe(true)
    })
  )
})
