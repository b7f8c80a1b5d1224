/**
 * A payload that fails the integrity gate is logged exactly once, as a warning naming the exchange, the method and the
 * reason, whether the raw body (inside ccxt) or the decoded result (after it) failed.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, HashMap, Layer, Logger } from "effect"
import { AppConfig } from "../../src/AppConfig.js"
import { Exchange } from "../../src/Exchange/Exchange.js"
import { ExchangeLive } from "../../src/Exchange/Live.js"
import { EmulatorLive, emulatorEnv, TestEmulator } from "../support/emulatorServer.js"

interface Line {
  readonly level: string
  readonly message: string
  readonly annotations: Readonly<Record<string, unknown>>
}
const lines: Array<Line> = []
const CaptureLogger = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ logLevel, message, annotations }) => {
    lines.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
)

const Live = Layer.unwrapEffect(
  Effect.map(TestEmulator, (emulator) =>
    ExchangeLive.pipe(Layer.provideMerge(AppConfig.fromRecord(emulatorEnv(emulator, { EXCHANGE_TIMEOUT: "5" }))))
  )
).pipe(Layer.provideMerge(EmulatorLive()), Layer.provideMerge(CaptureLogger))

const warningsDuring = <A, E>(effect: Effect.Effect<A, E, Exchange | TestEmulator>) =>
  Effect.gen(function* () {
    lines.length = 0
    const error = yield* Effect.flip(effect)
    return { error, warnings: lines.filter((l) => l.level === "WARN") }
  })

layer(Live, { timeout: 60_000 })("integrity gate: one warning per failure", (it) => {
  it.effect("a broken body (caught inside ccxt): exchange, method, symbol and reason", () =>
    Effect.gen(function* () {
      const exchange = yield* Exchange
      const emulator = yield* TestEmulator
      yield* exchange.resolve("binance", "BTC/USDT")
      emulator.inject({ kind: "empty-object-200", exchange: "binance", endpoint: "/api/v3/depth" })
      const { error, warnings } = yield* warningsDuring(
        exchange.orderBook({ exchange: "binance", symbol: "BTC/USDT" }, 5)
      )
      emulator.clearFaults()
      const reason = "binance sent a bad response to fetchOrderBook: unexpected shape: lastUpdateId: missing"
      expect(error).toMatchObject({ _tag: "UpstreamBadResponse", code: "bad_upstream_response", message: reason })
      expect(warnings).toHaveLength(1)
      expect(warnings[0]?.message).toBe(`binance fetchOrderBook failed: ${reason}`)
      expect(warnings[0]?.annotations).toMatchObject({
        exchange: "binance",
        method: "fetchOrderBook",
        symbol: "BTC/USDT",
        reason
      })
    })
  )

  it.effect("a payload that contradicts the request (caught after decoding): the same one warning", () =>
    Effect.gen(function* () {
      const exchange = yield* Exchange
      const emulator = yield* TestEmulator
      emulator.inject({ kind: "other-symbol", exchange: "binance", endpoint: "/api/v3/ticker/24hr" })
      const { error, warnings } = yield* warningsDuring(exchange.ticker({ exchange: "binance", symbol: "BTC/USDT" }))
      emulator.clearFaults()
      const reason = "inconsistent ticker from binance: asked for BTC/USDT, got ETH/USDT"
      expect(error).toMatchObject({ _tag: "UpstreamBadResponse", message: reason })
      expect(warnings.map((w) => [w.message, w.annotations["method"], w.annotations["reason"]])).toEqual([
        [`binance fetchTicker failed: ${reason}`, "fetchTicker", reason]
      ])
    })
  )
})
