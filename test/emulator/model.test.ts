import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { describe, expect, it } from "vitest"
import {
  EMULATED_EXCHANGES,
  MARKETS,
  startEmulator,
  type EmulatedExchange,
  type IntervalSpec
} from "../../src/emulator/index.js"
import { EmulatorModel } from "../../src/emulator/model.js"

const T0 = Date.UTC(2024, 0, 1, 10, 17, 23, 456)
const MIDNIGHT = Date.UTC(2024, 0, 1)
const MINUTE = 60_000

const allMarkets = EMULATED_EXCHANGES.flatMap((exchange) =>
  MARKETS[exchange].map((spec) => ({ exchange, symbol: spec.symbol, decimals: spec.amountDecimals }))
)

const units = (value: number, decimals: number): number => Math.round(value * 10 ** decimals)

describe("market model", () => {
  it("is a pure function of the seed: same seed gives identical data, another seed different data", () => {
    const a = new EmulatorModel(42, () => T0)
    const b = new EmulatorModel(42, () => T0)
    const c = new EmulatorModel(43, () => T0)
    for (const { exchange, symbol } of allMarkets) {
      const snapshot = (m: EmulatorModel) => ({
        candles: m.latestCandles(exchange, symbol, "1m", 30),
        trades: m.recentTrades(exchange, symbol, 20),
        book: m.orderBook(exchange, symbol, T0, 20),
        ticker: m.ticker24h(exchange, symbol)
      })
      const first = snapshot(a)
      expect(snapshot(b)).toEqual(first)
      expect(snapshot(c)).not.toEqual(first)
      expect(c.price(exchange, symbol)).not.toBe(first.ticker.last)
    }
  })

  it("depends on the model time only through its second, and never shows trades of the current second", () => {
    const model = new EmulatorModel(42, () => T0)
    const second = Math.floor(T0 / 1000) * 1000
    for (const { exchange, symbol } of allMarkets) {
      expect(model.price(exchange, symbol, second)).toBe(model.price(exchange, symbol, second + 999))
      expect(model.orderBook(exchange, symbol, second, 5)).toEqual(model.orderBook(exchange, symbol, second + 999, 5))
      const last = model.recentTrades(exchange, symbol, 1, T0)[0]
      expect(last?.timestamp).toBeLessThan(second)
      expect(last?.price).toBe(model.price(exchange, symbol, T0))
    }
  })

  it("builds 1m candles exactly from the trades; a minute without trades repeats the previous close", () => {
    const model = new EmulatorModel(42, () => T0)
    for (const { exchange, symbol, decimals } of allMarkets) {
      const count = 180
      const from = Math.floor(T0 / MINUTE) * MINUTE - (count - 1) * MINUTE
      const candles = model.candles(exchange, symbol, MINUTE, from, count)
      expect(candles).toHaveLength(count)
      expect(candles.at(-1)?.closed).toBe(false)
      const trades = model.trades(exchange, symbol, from, T0)
      let previousClose: number | undefined
      for (const candle of candles) {
        const inside = trades.filter((t) => t.timestamp >= candle.timestamp && t.timestamp < candle.timestamp + MINUTE)
        expect(candle.trades).toBe(inside.length)
        expect(candle.high).toBeGreaterThanOrEqual(Math.max(candle.open, candle.close))
        expect(candle.low).toBeLessThanOrEqual(Math.min(candle.open, candle.close))
        if (inside.length === 0) {
          expect(candle.volume).toBe(0)
          if (previousClose !== undefined) {
            expect([candle.open, candle.high, candle.low, candle.close]).toEqual(Array(4).fill(previousClose))
          }
        } else {
          expect(candle.open).toBe(inside[0]?.price)
          expect(candle.close).toBe(inside.at(-1)?.price)
          expect(candle.high).toBe(Math.max(...inside.map((t) => t.price)))
          expect(candle.low).toBe(Math.min(...inside.map((t) => t.price)))
          expect(units(candle.volume, decimals)).toBe(inside.reduce((sum, t) => sum + units(t.amount, decimals), 0))
          expect(candle.firstTradeId).toBe(inside[0]?.id)
          expect(candle.lastTradeId).toBe(inside.at(-1)?.id)
        }
        previousClose = candle.close
      }
      const ids = trades.map((t) => t.id)
      expect([...ids].sort((x, y) => x - y)).toEqual(ids)
      expect(new Set(ids).size).toBe(ids.length)
      expect(new Set(trades.map((t) => t.side))).toEqual(new Set(["buy", "sell"]))
    }
  })

  it("has quiet minutes on the less liquid markets", () => {
    const model = new EmulatorModel(42, () => T0)
    const candles = model.latestCandles("kraken", "SOL/USD", "1m", 720)
    expect(candles.filter((c) => c.trades === 0 && c.closed).length).toBeGreaterThan(0)
  })

  it("aggregates coarser candles from the 1m candles (1h, 1d, Monday weeks, calendar months)", () => {
    const model = new EmulatorModel(42, () => T0)
    const check = (
      exchange: EmulatedExchange,
      symbol: string,
      interval: IntervalSpec,
      minutes: number,
      from: number
    ) => {
      const [coarse] = model.candles(exchange, symbol, interval, from, 1)
      const fine = model.candles(exchange, symbol, "1m", from, minutes).filter((c) => c.trades > 0)
      expect(coarse?.timestamp).toBe(from)
      expect(coarse?.open).toBe(fine[0]?.open)
      expect(coarse?.close).toBe(fine.at(-1)?.close)
      expect(coarse?.high).toBe(Math.max(...fine.map((c) => c.high)))
      expect(coarse?.low).toBe(Math.min(...fine.map((c) => c.low)))
      expect(coarse?.trades).toBe(fine.reduce((sum, c) => sum + c.trades, 0))
      const decimals = model.market(exchange, symbol).amountDecimals
      expect(units(coarse?.volume ?? 0, decimals)).toBe(fine.reduce((sum, c) => sum + units(c.volume, decimals), 0))
    }
    check("binance", "ETH/USDT", "1h", 60, Date.UTC(2023, 11, 31, 22))
    check("kraken", "BTC/USD", 4 * 3_600_000, 240, Date.UTC(2023, 11, 31, 16))
    check("coinbaseexchange", "SOL/USD", "1d", 1440, Date.UTC(2023, 11, 30))
    const [week] = model.candles("binance", "BTC/USDT", "1w", Date.UTC(2023, 11, 20), 1)
    expect(new Date(week?.timestamp ?? 0).getUTCDay()).toBe(1)
    const [month] = model.candles("binance", "BTC/USDT", "1M", Date.UTC(2023, 10, 15), 1)
    expect(month?.timestamp).toBe(Date.UTC(2023, 11, 1))
    expect(month?.closeTime).toBe(MIDNIGHT - 1)
  })

  it("keeps 100+ sorted, uncrossed levels on each side of the last price", () => {
    const model = new EmulatorModel(42, () => T0)
    for (const { exchange, symbol } of allMarkets) {
      const book = model.orderBook(exchange, symbol)
      const last = model.price(exchange, symbol)
      expect(book.bids.length).toBeGreaterThanOrEqual(100)
      expect(book.asks.length).toBeGreaterThanOrEqual(100)
      const bidPrices = book.bids.map(([p]) => p)
      const askPrices = book.asks.map(([p]) => p)
      expect(bidPrices).toEqual([...bidPrices].sort((x, y) => y - x))
      expect(askPrices).toEqual([...askPrices].sort((x, y) => x - y))
      expect(new Set(bidPrices).size).toBe(bidPrices.length)
      expect(bidPrices[0]).toBeLessThan(last)
      expect(askPrices[0]).toBeGreaterThan(last)
      expect([...book.bids, ...book.asks].every(([, amount]) => amount > 0)).toBe(true)
      expect(model.orderBook(exchange, symbol, T0, 7).bids).toEqual(book.bids.slice(0, 7))
    }
  })

  it("computes 24 h statistics that agree with the trades of the rolling window", () => {
    const model = new EmulatorModel(42, () => T0)
    const second = Math.floor(T0 / 1000) * 1000
    for (const exchange of EMULATED_EXCHANGES) {
      const symbol = MARKETS[exchange][1]?.symbol ?? ""
      const decimals = model.market(exchange, symbol).amountDecimals
      const ticker = model.ticker24h(exchange, symbol)
      const trades = model.trades(exchange, symbol, second - 86_400_000, second)
      expect(ticker.count).toBe(trades.length)
      expect(ticker.open).toBe(trades[0]?.price)
      expect(ticker.last).toBe(trades.at(-1)?.price)
      expect(ticker.lastQty).toBe(trades.at(-1)?.amount)
      expect(ticker.high).toBe(trades.reduce((max, t) => Math.max(max, t.price), 0))
      expect(ticker.low).toBe(trades.reduce((min, t) => Math.min(min, t.price), Number.POSITIVE_INFINITY))
      expect(units(ticker.baseVolume, decimals)).toBe(trades.reduce((sum, t) => sum + units(t.amount, decimals), 0))
      expect(ticker.quoteVolume).toBeCloseTo(
        trades.reduce((sum, t) => sum + t.cost, 0),
        4
      )
      expect(ticker.vwap).toBeCloseTo(ticker.quoteVolume / ticker.baseVolume, 6)
      expect(ticker.change).toBeCloseTo(ticker.last - ticker.open, 8)
      expect(ticker.firstTradeId).toBe(trades[0]?.id)
      const book = model.orderBook(exchange, symbol, T0, 1)
      expect([ticker.bid, ticker.bidQty]).toEqual(book.bids[0])
      expect([ticker.ask, ticker.askQty]).toEqual(book.asks[0])
    }
  })

  it("opens the markets at historyStart without changing any value after it", () => {
    const opened = Date.UTC(2023, 11, 31, 12)
    const long = new EmulatorModel(42, () => T0, Date.UTC(2023, 0, 1))
    const short = new EmulatorModel(42, () => T0, opened)
    expect(short.candles("binance", "BTC/USDT", "1h", opened, 20)).toEqual(
      long.candles("binance", "BTC/USDT", "1h", opened, 20)
    )
    expect(short.candles("binance", "BTC/USDT", "1h", Date.UTC(2023, 11, 30), 100)[0]?.timestamp).toBe(opened)
    expect(short.trades("kraken", "BTC/USD", opened - 3_600_000, opened)).toEqual([])
    expect(long.trades("kraken", "BTC/USD", opened - 3_600_000, opened).length).toBeGreaterThan(0)
    expect(short.ticker24h("coinbaseexchange", "ETH/USD").count).toBeLessThan(
      long.ticker24h("coinbaseexchange", "ETH/USD").count
    )
    expect(new EmulatorModel(1, () => T0).historyStart).toBe(T0 - 365 * 86_400_000)
  })

  it("answers 2000+ minutes of 1m candles quickly on a cold model", () => {
    const model = new EmulatorModel(7, () => T0)
    const started = performance.now()
    const candles = model.latestCandles("binance", "BTC/USDT", "1m", 2500)
    expect(candles).toHaveLength(2500)
    expect(candles[0]?.timestamp).toBe(Math.floor(T0 / MINUTE) * MINUTE - 2499 * MINUTE)
    expect(performance.now() - started).toBeLessThan(2000)
  })
})

describe("emulator control surface", () => {
  it("exposes URLs, env, the clock and the /__emulator control API", async () => {
    const emulator = await startEmulator({ clock: "frozen", startTime: T0, seed: 5 })
    try {
      expect(emulator.url).toBe(`http://127.0.0.1:${emulator.port}`)
      expect(emulator.apiBase("kraken")).toBe(`${emulator.url}/kraken`)
      expect(emulator.wsBase("binance")).toBe(`ws://127.0.0.1:${emulator.port}/binance`)
      expect(emulator.env()).toEqual({
        EXCHANGE_API_BASE_BINANCE: `${emulator.url}/binance`,
        EXCHANGE_WS_BASE_BINANCE: `ws://127.0.0.1:${emulator.port}/binance`,
        EXCHANGE_API_BASE_KRAKEN: `${emulator.url}/kraken`,
        EXCHANGE_WS_BASE_KRAKEN: `ws://127.0.0.1:${emulator.port}/kraken`,
        EXCHANGE_API_BASE_COINBASEEXCHANGE: `${emulator.url}/coinbaseexchange`,
        EXCHANGE_WS_BASE_COINBASEEXCHANGE: `ws://127.0.0.1:${emulator.port}/coinbaseexchange`
      })
      expect(emulator.model.seed).toBe(5)
      expect(emulator.now()).toBe(T0)
      emulator.advance(1500)
      expect(emulator.now()).toBe(T0 + 1500)
      emulator.setTime(T0)

      const control = `${emulator.url}/__emulator`
      const post = (path: string, body: unknown) =>
        fetch(`${control}${path}`, {
          method: "POST",
          body: JSON.stringify(body),
          headers: { "content-type": "application/json" }
        })
      expect(await (await post("/time", { advance: 60_000 })).json()).toEqual({ now: T0 + 60_000, clock: "frozen" })
      expect(emulator.now()).toBe(T0 + 60_000)
      await post("/time", { set: T0 })
      expect(emulator.now()).toBe(T0)
      expect((await post("/time", { nope: 1 })).status).toBe(400)

      expect((await post("/faults", { kind: "error-500", exchange: "kraken", times: 2 })).status).toBe(201)
      expect((await post("/faults", { kind: "bogus" })).status).toBe(400)
      expect((await fetch(`${emulator.apiBase("kraken")}/0/public/Time`)).status).toBe(500)
      expect((await fetch(`${emulator.apiBase("binance")}/api/v3/time`)).status).toBe(200)
      const stats = (await (await fetch(`${control}/stats`)).json()) as Record<string, unknown>
      expect(stats["now"]).toBe(T0)
      expect(stats["seed"]).toBe(5)
      expect(stats["requests"]).toEqual({
        binance: { "/api/v3/time": 1 },
        kraken: { "/0/public/Time": 1 },
        coinbaseexchange: {}
      })
      expect(stats["subscriptions"]).toEqual({ binance: 0, kraken: 0, coinbaseexchange: 0 })
      expect(stats["faults"]).toEqual([{ kind: "error-500", exchange: "kraken", times: 2, remaining: 1 }])
      expect((await fetch(`${control}/faults`, { method: "DELETE" })).status).toBe(200)
      expect((await fetch(`${emulator.apiBase("kraken")}/0/public/Time`)).status).toBe(200)
      expect(emulator.requestCount()).toBe(3)
      expect(emulator.requestCount("kraken", "/0/public/Time")).toBe(2)
      expect((await post("/reset-counts", {})).status).toBe(200)
      expect(emulator.requestCount()).toBe(0)
      const preflight = await fetch(`${emulator.apiBase("binance")}/api/v3/time`, { method: "OPTIONS" })
      expect(preflight.status).toBe(204)
      const cors = await fetch(`${emulator.apiBase("binance")}/api/v3/time`)
      expect(cors.headers.get("access-control-allow-origin")).toBe("*")
      expect(emulator.requestCount("binance")).toBe(1)
      expect((await fetch(`${emulator.url}/nowhere`)).status).toBe(404)
      expect((await fetch(`${control}/nowhere`)).status).toBe(404)
    } finally {
      await emulator.close()
    }
  })

  it("advances a live clock with wall time from startTime", async () => {
    const emulator = await startEmulator({ startTime: T0 })
    try {
      const first = emulator.now()
      expect(first).toBeGreaterThanOrEqual(T0)
      await new Promise((resolve) => setTimeout(resolve, 120))
      expect(emulator.now() - first).toBeGreaterThanOrEqual(100)
    } finally {
      await emulator.close()
    }
  })

  it("runs as a CLI that prints one JSON line and stops cleanly on SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/emulator/main.ts", "--port", "0", "--clock", "frozen"],
      {
        env: { ...process.env, EMULATOR_SEED: "9" },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    const lines: string[] = []
    const firstLine = new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).on("line", (line) => {
        lines.push(line)
        if (lines.length === 1) resolve(line)
      })
      child.once("exit", (code) => reject(new Error(`exited early with ${String(code)}`)))
    })
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    const info = JSON.parse(await firstLine) as { port: number; env: Record<string, string> }
    expect(info.port).toBeGreaterThan(0)
    expect(info.env["EXCHANGE_API_BASE_BINANCE"]).toBe(`http://127.0.0.1:${info.port}/binance`)
    const stats = (await (await fetch(`http://127.0.0.1:${info.port}/__emulator/stats`)).json()) as Record<
      string,
      unknown
    >
    expect(stats["seed"]).toBe(9)
    expect(stats["clock"]).toBe("frozen")
    child.kill("SIGTERM")
    expect(await exited).toBe(0)
    expect(lines).toHaveLength(1)
  })
})
