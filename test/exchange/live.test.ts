import { assert, describe, it } from "@effect/vitest"
import ccxt from "ccxt"
import { Effect, Exit, Layer, Option, TestClock } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { CcxtClientError, type ClientSettings } from "../../src/Exchange/ccxtClient.js"
import { Exchange } from "../../src/Exchange/Exchange.js"
import { makeExchangeLive } from "../../src/Exchange/Live.js"
import { type FakeClient, makeFakeClient, MARKETS } from "./fakeClient.js"

const KNOWN = ["binance", "coinbaseexchange", "kraken", "okx"]

const realDelay = (ms: number) => Effect.promise(() => new Promise<void>((ok) => setTimeout(ok, ms)))

/** Waits (in real time) until `check` holds; background fibers here await real promises. */
const eventually = (check: () => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200 && !check(); i++) yield* realDelay(5)
    assert.isTrue(check(), "condition not reached")
  })

const setup = (env: Record<string, string>, clients: Record<string, FakeClient>) => {
  const created: Array<ClientSettings> = []
  const stats = { knownLoads: 0 }
  const layer = makeExchangeLive({
    createClient: (settings) =>
      realDelay(20).pipe(
        Effect.zipRight(
          Effect.suspend(() => {
            created.push(settings)
            const client = clients[settings.id]
            return client === undefined
              ? Effect.fail(new CcxtClientError({ exchange: settings.id, reason: "unsupported" }))
              : Effect.succeed(client)
          })
        )
      ),
    knownExchangeIds: Effect.sync(() => {
      stats.knownLoads++
      return KNOWN
    })
  }).pipe(Layer.provide(AppConfig.fromRecord(env)))
  return {
    created,
    stats,
    run: <A, E>(f: (ex: Exchange["Type"]) => Effect.Effect<A, E>) => Effect.provide(Effect.flatMap(Exchange, f), layer)
  }
}

const failureOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.exit(effect), (exit) =>
    Exit.isFailure(exit) && exit.cause._tag === "Fail"
      ? Effect.succeed(exit.cause.error)
      : Effect.dieMessage(`expected a failure, got ${String(exit)}`)
  )

const KRAKEN_BTC = { exchange: "kraken", symbol: "BTC/USD" }

describe("ExchangeLive with injected clients", () => {
  it.effect("creates one client under concurrent first use and closes it with the layer", () =>
    Effect.gen(function* () {
      const kraken = makeFakeClient("kraken")
      const { created, run } = setup({ ENABLED_EXCHANGES: "kraken,binance" }, { kraken })
      const infos = yield* run((ex) =>
        Effect.forEach(Array.from({ length: 10 }), () => ex.describe("kraken"), { concurrency: "unbounded" })
      )
      assert.strictEqual(infos.length, 10)
      assert.strictEqual(infos[0]?.name, "KRAKEN")
      assert.strictEqual(infos[0]?.maxCandlesPerRequest, 3)
      // binance was never used, so it was never created
      assert.deepStrictEqual(
        created.map((s) => s.id),
        ["kraken"]
      )
      assert.strictEqual(kraken.closed, 1)
      assert.strictEqual(kraken.calls["loadMarkets(true)"], undefined)
    })
  )

  it.effect("shares a failed first load between concurrent callers and does not cache it", () =>
    Effect.gen(function* () {
      const kraken = makeFakeClient("kraken")
      kraken.loadMarketsImpl = () =>
        new Promise((_, reject) => setTimeout(() => reject(new ccxt.ExchangeNotAvailable("kraken 520")), 20))
      const { run } = setup({ ENABLED_EXCHANGES: "kraken" }, { kraken })
      yield* run((ex) =>
        Effect.gen(function* () {
          const failures = yield* Effect.forEach(
            Array.from({ length: 5 }),
            () => failureOf(ex.resolve("kraken", "BTC/USD")),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(
            failures.map((e) => e._tag),
            Array(5).fill("UpstreamUnavailable")
          )
          assert.strictEqual(kraken.calls["loadMarkets(true)"], 1)
          assert.deepStrictEqual((yield* ex.status)["kraken"], {
            status: "error",
            marketsLoadedAt: null,
            markets: 0,
            lastError: "kraken is unavailable; retry in 5 s"
          })
          kraken.loadMarketsImpl = async () => MARKETS
          assert.deepStrictEqual(yield* ex.resolve("kraken", "btc-usd"), KRAKEN_BTC)
          assert.strictEqual(kraken.calls["loadMarkets(true)"], 2)
          assert.strictEqual((yield* ex.status)["kraken"]?.status, "ready")
        })
      )
    })
  )

  it.effect("refreshes markets in the background and keeps them when a refresh fails", () =>
    Effect.gen(function* () {
      const kraken = makeFakeClient("kraken")
      const { created, run } = setup({ ENABLED_EXCHANGES: "kraken,okx", MARKETS_REFRESH_INTERVAL: "60" }, { kraken })
      yield* run((ex) =>
        Effect.gen(function* () {
          yield* TestClock.adjust("60 seconds")
          // nothing loaded yet, so nothing is refreshed (and ccxt stays unloaded)
          assert.strictEqual(created.length, 0)

          yield* ex.resolve("kraken", "BTC/USD")
          assert.strictEqual(kraken.calls["loadMarkets(true)"], 1)

          yield* TestClock.adjust("60 seconds")
          yield* eventually(() => kraken.calls["loadMarkets(true)"] === 2)
          yield* realDelay(10)
          assert.strictEqual((yield* ex.status)["kraken"]?.marketsLoadedAt, 120_000)

          kraken.loadMarketsImpl = () => Promise.reject(new ccxt.RequestTimeout("kraken timed out"))
          yield* TestClock.adjust("60 seconds")
          yield* eventually(() => kraken.calls["loadMarkets(true)"] === 3)
          yield* realDelay(10)
          const status = yield* ex.status
          assert.deepStrictEqual(status, {
            kraken: {
              status: "ready",
              marketsLoadedAt: 120_000,
              markets: 2,
              lastError: "kraken did not answer loadMarkets within 10 s"
            },
            okx: { status: "idle", marketsLoadedAt: null, markets: 0, lastError: null }
          })
          // ccxt's rejected loadMarkets promise was replaced by the markets still in use
          assert.deepStrictEqual(yield* Effect.promise(() => kraken.marketsLoading ?? Promise.resolve()), MARKETS)
          assert.deepStrictEqual(yield* ex.resolve("kraken", "ETH/USD"), { exchange: "kraken", symbol: "ETH/USD" })
          assert.strictEqual(kraken.calls["loadMarkets(true)"], 3)
        })
      )
    })
  )

  it.effect("resolves exchange ids, aliases and overrides", () =>
    Effect.gen(function* () {
      const cbx = makeFakeClient("coinbaseexchange")
      const { created, stats, run } = setup(
        {
          ENABLED_EXCHANGES: "kraken,coinbasepro",
          EXCHANGE_API_BASE_COINBASEPRO: "http://127.0.0.1:9000/cbx/",
          EXCHANGE_TIMEOUT: "2.5"
        },
        { coinbaseexchange: cbx }
      )
      yield* run((ex) =>
        Effect.gen(function* () {
          assert.deepStrictEqual(ex.enabled, ["kraken", "coinbaseexchange"])
          assert.strictEqual(yield* ex.resolveExchange(" Kraken "), "kraken")
          assert.strictEqual(yield* ex.resolveExchange("coinbasepro"), "coinbaseexchange")

          const implausible = yield* failureOf(ex.resolveExchange("bin ance!"))
          assert.strictEqual(
            implausible.message,
            'Unknown exchange "bin ance!". Enabled exchanges: kraken, coinbaseexchange'
          )
          assert.strictEqual(stats.knownLoads, 0)

          const typo = yield* failureOf(ex.resolveExchange("binanse"))
          assert.deepStrictEqual(typo.suggestions, ["binance"])
          assert.deepStrictEqual(typo.enabled, ["kraken", "coinbaseexchange"])
          const disabled = yield* failureOf(ex.resolveExchange("okx"))
          assert.match(disabled.message, /^Exchange "okx" is supported but not enabled on this server/)

          yield* ex.describe("coinbasepro")
          assert.deepStrictEqual(created, [
            {
              id: "coinbaseexchange",
              timeoutMs: 2500,
              throttle: true,
              apiBase: Option.some("http://127.0.0.1:9000/cbx"),
              wsBase: Option.none()
            }
          ])
        })
      )
    })
  )

  it.effect("reports an enabled id that ccxt does not support as UnknownExchange", () =>
    Effect.gen(function* () {
      const { run } = setup({ ENABLED_EXCHANGES: "krakn" }, {})
      const error = yield* run((ex) => failureOf(ex.describe("krakn")))
      assert.deepStrictEqual(
        [error._tag, error.message, error.suggestions],
        [
          "UnknownExchange",
          'Exchange "krakn" is enabled on this server but the installed ccxt does not support it',
          ["kraken"]
        ]
      )
    })
  )

  it.effect("decodes a kraken ticker without timestamp and rejects a malformed one", () =>
    Effect.gen(function* () {
      const kraken = makeFakeClient("kraken")
      const { run } = setup({ ENABLED_EXCHANGES: "kraken" }, { kraken })
      yield* run((ex) =>
        Effect.gen(function* () {
          const t = yield* ex.ticker(KRAKEN_BTC)
          assert.deepStrictEqual(
            [t.exchange, t.symbol, t.last, t.bid, t.ask, t.timestamp, t.datetime, t.high, t.raw],
            ["kraken", "BTC/USD", 100, 99, 101, null, null, null, { pair: "BTC/USD" }]
          )
          kraken.fetchTickerImpl = async (symbol) => ({ symbol, info: {} })
          const error = yield* failureOf(ex.ticker(KRAKEN_BTC))
          assert.deepStrictEqual(
            [error._tag, error.message],
            ["UpstreamBadResponse", "malformed ticker from kraken: last: is missing"]
          )
          kraken.fetchTickerImpl = () => Promise.reject(new ccxt.BadSymbol("kraken does not have market symbol"))
          assert.strictEqual((yield* failureOf(ex.ticker(KRAKEN_BTC)))._tag, "SymbolNotFound")
        })
      )
    })
  )

  it.effect("answers tickers in order, with one fetchTickers call or per-symbol fallback", () =>
    Effect.gen(function* () {
      const kraken = makeFakeClient("kraken")
      const okx = makeFakeClient("okx", { has: { fetchTickers: false } })
      okx.fetchTickerImpl = async (symbol) => ({
        symbol,
        last: symbol === "BTC/USD" ? 1 : 2,
        info: {}
      })
      const { run } = setup({ ENABLED_EXCHANGES: "kraken,okx" }, { kraken, okx })
      yield* run((ex) =>
        Effect.gen(function* () {
          const batch = yield* ex.tickers("kraken", ["eth-usd", "BTC/USD"])
          assert.deepStrictEqual(
            batch.map((t) => [t.symbol, t.last]),
            [
              ["ETH/USD", 200],
              ["BTC/USD", 201]
            ]
          )
          assert.strictEqual(kraken.calls["fetchTickers"], 1)
          assert.strictEqual(kraken.calls["fetchTicker"], undefined)

          const each = yield* ex.tickers("okx", ["ETH/USD", "BTC/USD"])
          assert.deepStrictEqual(
            each.map((t) => [t.symbol, t.last]),
            [
              ["ETH/USD", 2],
              ["BTC/USD", 1]
            ]
          )
          assert.strictEqual(okx.calls["fetchTicker"], 2)
          assert.deepStrictEqual(yield* ex.tickers("okx", []), [])
        })
      )
    })
  )

  it.effect("validates intervals and capabilities and pages OHLCV", () =>
    Effect.gen(function* () {
      const kraken = makeFakeClient("kraken")
      const TF = 60_000
      const now = 1_000 * TF + 30_000
      kraken.fetchOHLCVImpl = async (_symbol, _tf, since, limit = 3) => {
        const newest = Math.floor(now / TF) * TF
        const first = since ?? newest - (limit - 1) * TF
        const rows: Array<Array<number>> = []
        for (let t = first; t <= newest && rows.length < limit; t += TF) rows.push([t, 1, 2, 0.5, 1.5, 10])
        return rows
      }
      const noCandles = makeFakeClient("coinbase", { has: { fetchOHLCV: false } })
      const { run } = setup({ ENABLED_EXCHANGES: "kraken,coinbase" }, { kraken, coinbase: noCandles })
      yield* run((ex) =>
        Effect.gen(function* () {
          yield* TestClock.setTime(now)
          const out = yield* ex.ohlcv(KRAKEN_BTC, { interval: "1m", since: Option.none(), limit: 5 })
          assert.deepStrictEqual(
            out.candles.map((c) => c.timestamp),
            [996, 997, 998, 999, 1000].map((m) => m * TF)
          )
          assert.deepStrictEqual([out.exchange, out.symbol, out.interval], ["kraken", "BTC/USD", "1m"])
          assert.strictEqual(kraken.calls["fetchOHLCV"], 2)

          const interval = yield* failureOf(ex.ohlcv(KRAKEN_BTC, { interval: "7m", since: Option.none(), limit: 5 }))
          assert.deepStrictEqual(
            interval._tag === "UnsupportedInterval" ? [interval.message, interval.supported] : interval._tag,
            ['kraken does not offer "7m" candles. Supported intervals: 1m, 1h', ["1m", "1h"]]
          )

          const unsupported = yield* failureOf(
            ex.ohlcv({ exchange: "coinbase", symbol: "BTC/USD" }, { interval: "1m", since: Option.none(), limit: 5 })
          )
          assert.deepStrictEqual(
            unsupported._tag === "NotSupported" ? [unsupported.method, unsupported.message] : unsupported._tag,
            ["fetchOHLCV", "coinbase does not support fetchOHLCV"]
          )
          assert.strictEqual(noCandles.calls["fetchOHLCV"], undefined)
        })
      )
    })
  )
})
