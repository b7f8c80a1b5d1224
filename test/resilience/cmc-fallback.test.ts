import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { makeMcpTools } from "../../src/Mcp/Tools.js"
import { TestEmulator } from "../support/emulatorServer.js"
import { FAKE_CMC_COINS, QUOTE_LAST_UPDATED } from "../support/fakeCmc.js"
import { FakeCmcLive, getJson, realSleep, ResilientEmulatorServer, TestCmc } from "./server.js"

type Body = Record<string, unknown>

const usd = FAKE_CMC_COINS.BTC?.quote.USD
const eur = FAKE_CMC_COINS.BTC?.quote.EUR

/** The resilient server with CoinMarketCap configured against a fake CMC. */
const WithCmc = Layer.unwrapEffect(
  Effect.map(TestCmc, (cmc) =>
    ResilientEmulatorServer({ CMC_API_KEY: cmc.apiKey, CMC_API_URL: cmc.baseUrl, CMC_TIMEOUT: "1" })
  )
).pipe(Layer.provideMerge(FakeCmcLive))

/** Runs `path` with every REST request to `exchange` failing (503) and reports what each upstream saw. */
const whileDown = (exchange: "binance" | "kraken", path: string, kind: "error-503" | "ban-418" = "error-503") =>
  Effect.gen(function* () {
    const emulator = yield* TestEmulator
    const cmc = yield* TestCmc
    emulator.clearFaults()
    emulator.inject({ kind, exchange, retryAfter: 60 })
    const exchangeBefore = emulator.requestCount(exchange)
    const cmcBefore = cmc.requestCount()
    const res = yield* getJson(path)
    return {
      res,
      body: res.json as Body,
      exchangeRequests: emulator.requestCount(exchange) - exchangeBefore,
      cmcRequests: cmc.requests.slice(cmcBefore)
    }
  })

layer(WithCmc, { excludeTestServices: true, timeout: 60_000 })("CoinMarketCap fallback", (it) => {
  it.effect("markets load while the exchanges are up", () =>
    Effect.gen(function* () {
      expect((yield* getJson("/v1/markets?exchange=binance")).status).toBe(200)
      expect((yield* getJson("/v1/markets?exchange=kraken")).status).toBe(200)
    })
  )

  it.effect("the exchange failing after its retries, the ticker comes from CMC, marked source coinmarketcap", () =>
    Effect.gen(function* () {
      const { res, body, exchangeRequests, cmcRequests } = yield* whileDown(
        "kraken",
        "/v1/markets/ticker?exchange=kraken&symbol=BTC/USD"
      )
      expect(res.status).toBe(200)
      expect(exchangeRequests).toBe(3)
      expect(cmcRequests.map((r) => r.query)).toEqual([{ symbol: "BTC", convert: "USD" }])
      expect(body).toEqual({
        exchange: "coinmarketcap",
        symbol: "BTC/USD",
        bid: null,
        ask: null,
        last: usd?.price,
        timestamp: Date.parse(QUOTE_LAST_UPDATED),
        datetime: QUOTE_LAST_UPDATED,
        high: null,
        low: null,
        open: null,
        close: usd?.price,
        baseVolume: null,
        quoteVolume: usd?.volume_24h,
        change: null,
        percentage: usd?.percent_change_24h,
        vwap: null,
        source: "coinmarketcap",
        raw: { ...FAKE_CMC_COINS.BTC, quote: { USD: usd } }
      })
      expect(res.headers["x-cache"]).toBe("MISS")
    })
  )

  it.effect("without convert, a USD stablecoin quote is priced in USD; convert picks the currency", () =>
    Effect.gen(function* () {
      const usdt = yield* whileDown("binance", "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT")
      expect([usdt.res.status, usdt.body.symbol, usdt.body.last]).toEqual([200, "BTC/USD", usd?.price])
      const inEur = yield* whileDown("binance", "/market/ticker?exchange=binance&symbol=BTC-USDT&convert=eur")
      expect([inEur.res.status, inEur.body.symbol, inEur.body.last, inEur.body.source]).toEqual([
        200,
        "BTC/EUR",
        eur?.price,
        "coinmarketcap"
      ])
      expect(inEur.cmcRequests.map((r) => r.query.convert)).toEqual(["EUR"])
    })
  )

  it.effect("a banned exchange falls back at once: no exchange request, one CMC request (then cached)", () =>
    Effect.gen(function* () {
      const banned = yield* whileDown("binance", "/v1/markets/ticker?exchange=binance&symbol=ETH/USDT", "ban-418")
      expect([banned.res.status, banned.body.source, banned.exchangeRequests]).toEqual([200, "coinmarketcap", 1])
      const again = yield* whileDown("binance", "/v1/markets/ticker?exchange=binance&symbol=ETH/USDT", "ban-418")
      expect([again.res.status, again.body.symbol, again.exchangeRequests, again.cmcRequests.length]).toEqual([
        200,
        "ETH/USD",
        0,
        0
      ])
      expect(again.res.headers["x-cache"]).toBe("HIT")
    })
  )

  it.effect("stale exchange data comes before CMC: a cached answer is served STALE and CMC is not asked", () =>
    Effect.gen(function* () {
      const emulator = yield* TestEmulator
      emulator.clearFaults()
      const path = "/v1/markets/ticker?exchange=kraken&symbol=ETH/USD"
      const fresh = yield* getJson(path)
      expect(fresh.status).toBe(200)
      yield* realSleep(2_100)
      const { res, body, cmcRequests } = yield* whileDown("kraken", path)
      expect([res.status, res.headers["x-cache"], body.source, cmcRequests.length]).toEqual([
        200,
        "STALE",
        "exchange",
        0
      ])
    })
  )

  it.effect("an unknown symbol is 404 with no fallback; CMC failing too returns the exchange's error", () =>
    Effect.gen(function* () {
      const unknown = yield* whileDown("kraken", "/v1/markets/ticker?exchange=kraken&symbol=DOGE/EUR")
      expect([unknown.res.status, unknown.body.code, unknown.cmcRequests.length]).toEqual([404, "symbol_not_found", 0])

      const cmc = yield* TestCmc
      cmc.script({ kind: "html", status: 502 }, { kind: "html", status: 502 }, { kind: "html", status: 502 })
      const both = yield* whileDown("kraken", "/v1/markets/ticker?exchange=kraken&symbol=SOL/USD")
      expect([both.res.status, both.body.code, both.res.headers["retry-after"]]).toEqual([
        503,
        "upstream_unavailable",
        "60"
      ])
      // CMC's own 5xx go through the same retry policy: 1 + MAX_RETRIES
      expect(both.cmcRequests).toHaveLength(3)
    })
  )

  it.effect("MCP get_ticker shares the fallback", () =>
    Effect.gen(function* () {
      const emulator = yield* TestEmulator
      emulator.clearFaults()
      emulator.inject({ kind: "error-500", exchange: "binance" })
      const tools = yield* makeMcpTools
      const getTicker = tools.find((t) => t.name === "get_ticker")
      const result = yield* getTicker?.call({ exchange: "binance", symbol: "SOL/USDT" }) ?? Effect.die("no get_ticker")
      emulator.clearFaults()
      expect(result.isError).toBeUndefined()
      expect(result.structuredContent).toMatchObject({
        exchange: "coinmarketcap",
        symbol: "SOL/USD",
        source: "coinmarketcap",
        bid: null
      })
    })
  )
})

layer(ResilientEmulatorServer(), { excludeTestServices: true, timeout: 60_000 })("without CMC_API_KEY", (it) => {
  it.effect("no fallback: the exchange's error is returned", () =>
    Effect.gen(function* () {
      const emulator = yield* TestEmulator
      expect((yield* getJson("/v1/markets/ticker?exchange=kraken&symbol=BTC/USD")).status).toBe(200)
      emulator.inject({ kind: "error-503", exchange: "kraken" })
      const res = yield* getJson("/v1/markets/ticker?exchange=kraken&symbol=ETH/USD")
      emulator.clearFaults()
      expect([res.status, (res.json as Body).code]).toEqual([503, "upstream_unavailable"])
    })
  )
})
