import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Queue, type Scope } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { StreamConnection, type Transport } from "../../src/Streams/Connection.js"
import type { Subscription, SubscriptionEvent } from "../../src/Streams/Events.js"
import type { Encoded } from "../../src/Streams/Outbox.js"
import { StreamHub } from "../../src/Streams/StreamHub.js"
import { UpstreamRegistry } from "../../src/Streams/UpstreamRegistry.js"
import { makeScripted, type Scripted, ticker } from "./scripted.js"

/** A socket the test opens and closes: while closed, events wait (and conflate) in the connection's outbox. */
class Socket implements Transport {
  readonly kind = "ws"
  readonly multiplexed = false
  readonly written: Array<Encoded> = []
  private open = true
  private waiting: (() => void) | undefined

  bufferedBytes(): number {
    return 0
  }

  ready(resume: () => void): boolean {
    if (!this.open) this.waiting = resume
    return this.open
  }

  write(event: Encoded): void {
    this.written.push(event)
  }

  finished(): void {}
  overflowed(): void {}
  closing(): void {}
  terminate(): void {}

  pause(): void {
    this.open = false
  }

  /** The socket drained: the connection writes what waits. */
  drain(): void {
    this.open = true
    const resume = this.waiting
    this.waiting = undefined
    resume?.()
  }

  /** The ticker events written, as `last pct`. */
  tickers(): Array<string> {
    return this.written.flatMap((e) => {
      if (e.event !== "ticker") return []
      const event = JSON.parse(e.data) as { readonly last: number; readonly price_change_percent: number }
      return [`${event.last} ${event.price_change_percent}`]
    })
  }
}

/** The gateway's hub and the registry under it, over the scripted exchange, for the test's scope. */
const setup = Effect.gen(function* () {
  const scripted = yield* makeScripted()
  const context = yield* Layer.build(
    StreamHub.DefaultWithoutDependencies.pipe(
      Layer.provideMerge(UpstreamRegistry.Default),
      Layer.provide(scripted.layer),
      Layer.provideMerge(AppConfig.fromRecord({}).pipe(Layer.orDie))
    )
  )
  return {
    hub: Context.get(context, StreamHub),
    registry: Context.get(context, UpstreamRegistry),
    config: Context.get(context, AppConfig),
    scripted
  }
})

type Setup = Effect.Effect.Success<typeof setup>

const tickerSubscription = (registry: UpstreamRegistry, threshold: number) =>
  Effect.orDie(registry.validate({ channel: "ticker", exchange: "binance", symbol: "BTC/USDT", threshold }))

/** Lets the upstream's fiber publish what was offered, without moving the clock. */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

/** Publishes tickers with these prices, one after the other, each fanned out before the next. */
const publish = (scripted: Scripted, ...prices: ReadonlyArray<number>) =>
  Effect.forEach(prices, (price) =>
    Effect.zipRight(Queue.offer(scripted.ticker, Effect.succeed(ticker(price))), settle)
  )

/** A connection of the gateway with one ticker subscription, reading from `socket`. */
const connect = (
  { config, hub }: Setup,
  subscription: Subscription
): Effect.Effect<{ readonly socket: Socket }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const socket = new Socket()
    const connection = new StreamConnection(hub, config, socket)
    yield* Effect.addFinalizer(() => Effect.sync(() => connection.close()))
    yield* connection.subscribe(subscription)
    yield* settle
    return { socket }
  })

/**
 * A client with a 20 % threshold that was sent 100 (L0), then read nothing while `pending` were published (each
 * replacing the one before in its outbox), then read again.
 */
const behindAfter100 = (...pending: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const env = yield* setup
    const { socket } = yield* connect(env, yield* tickerSubscription(env.registry, 0.2))
    yield* publish(env.scripted, 100)
    socket.pause()
    yield* publish(env.scripted, ...pending)
    socket.drain()
    return { env, socket }
  })

describe("ticker threshold of a slow client, measured once, when the event is sent", () => {
  it.scoped("a move that conflated back to within the threshold of what the client saw sends nothing", () =>
    Effect.gen(function* () {
      // A (150, 2.5 thresholds up) waits; B replaces it, and B is only 10 % from the 100 the client has
      const { socket } = yield* behindAfter100(150, 110)
      expect(socket.tickers()).toEqual(["100 0"])
    })
  )

  it.scoped("a move further up replaces the pending one and is measured from what the client saw", () =>
    Effect.gen(function* () {
      // 160 is within 20 % of the pending 150: the client still gets the newest price, +60 % from its 100
      const { socket } = yield* behindAfter100(150, 160)
      expect(socket.tickers()).toEqual(["100 0", "160 60"])
    })
  )

  it.scoped("a ticker skipped when it was due to be sent does not become the reference price", () =>
    Effect.gen(function* () {
      const { env, socket } = yield* behindAfter100(150, 110)
      // 125 is only 13.6 % from the skipped 110, but 25 % from the 100 the client has
      yield* publish(env.scripted, 125)
      expect(socket.tickers()).toEqual(["100 0", "125 25"])
    })
  )

  it.scoped("clients that keep up and agree on the change are written the same encoded event", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const every = yield* connect(env, yield* tickerSubscription(env.registry, 0))
      const onePercent = yield* connect(env, yield* tickerSubscription(env.registry, 0.01))
      yield* publish(env.scripted, 100, 101, 101.5)
      expect(every.socket.tickers()).toEqual(["100 0", "101 1", "101.5 0.49504950495049505"])
      expect(onePercent.socket.tickers()).toEqual(["100 0", "101 1"])
      expect(onePercent.socket.written[0]).toBe(every.socket.written[0])
      expect(onePercent.socket.written[1]).toBe(every.socket.written[1])
    })
  )
})

describe("ticker threshold of a subscriber without a buffer", () => {
  it.scoped("is applied as the upstream fans out, from the last event that subscriber was handed", () =>
    Effect.gen(function* () {
      const env = yield* setup
      const subscription = yield* tickerSubscription(env.registry, 0.2)
      const events: Array<SubscriptionEvent> = []
      yield* env.registry.attach(subscription, { event: (e) => void events.push(e), end: () => undefined })
      yield* settle
      yield* publish(env.scripted, 100, 110, 125, 110, 75)
      expect(
        events.map((e) => (e.event_type === "ticker" ? `${e.last} ${e.price_change_percent}` : e.event_type))
      ).toEqual(["100 0", "125 25", "75 -40"])
    })
  )
})
