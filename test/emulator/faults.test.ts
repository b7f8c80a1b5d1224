import { DDoSProtection, ExchangeNotAvailable, NetworkError, RateLimitExceeded, type Exchange } from "ccxt"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { startEmulator, type EmulatedExchange, type Emulator, type FaultKind } from "../../src/emulator/index.js"
import { EXCHANGES, SYMBOL, T0, errorName, eventually, getJson, makeExchange, rejection, within } from "./helpers.js"

/** ccxt-offline.md §6.1: the error class ccxt 4.5.84 raises from fetchTicker for each injected failure. */
const EXPECTED: Readonly<Record<EmulatedExchange, Readonly<Partial<Record<FaultKind, string>>>>> = {
  binance: {
    "rate-limit-429": "DDoSProtection",
    "ban-418": "DDoSProtection",
    "error-500": "ExchangeNotAvailable",
    "error-502-html": "ExchangeNotAvailable",
    "error-503": "ExchangeNotAvailable",
    "error-503-json": "ExchangeError",
    "truncated-json": "TypeError",
    "html-200": "TypeError",
    "empty-200": "TypeError",
    reset: "NetworkError"
  },
  kraken: {
    "rate-limit-429": "RateLimitExceeded",
    "ban-418": "DDoSProtection",
    "error-500": "ExchangeNotAvailable",
    "error-502-html": "ExchangeNotAvailable",
    "error-503": "ExchangeNotAvailable",
    "error-503-json": "ExchangeNotAvailable",
    reset: "NetworkError"
  },
  coinbaseexchange: {
    "rate-limit-429": "RateLimitExceeded",
    "ban-418": "DDoSProtection",
    "error-500": "ExchangeNotAvailable",
    "error-502-html": "ExchangeNotAvailable",
    "error-503": "ExchangeNotAvailable",
    "error-503-json": "ExchangeNotAvailable",
    reset: "NetworkError"
  }
}

/** Malformed 200 bodies raise nothing on kraken and coinbaseexchange: the ticker just comes back empty. */
const SILENT: ReadonlyArray<FaultKind> = ["truncated-json", "html-200", "empty-200"]

let emulator: Emulator
const clients = new Map<EmulatedExchange, Exchange>()
const client = (id: EmulatedExchange): Exchange => {
  const exchange = clients.get(id)
  if (exchange === undefined) throw new Error(`no client for ${id}`)
  return exchange
}

beforeAll(async () => {
  emulator = await startEmulator({ clock: "frozen", startTime: T0, wsPushIntervalMs: 40 })
  for (const id of EXCHANGES) {
    const exchange = await makeExchange(emulator, id, { timeout: 800 })
    await exchange.loadMarkets()
    clients.set(id, exchange)
  }
})

afterEach(() => {
  emulator.clearFaults()
})

afterAll(async () => {
  for (const exchange of clients.values()) await exchange.close()
  await emulator.close()
})

describe.each(EXCHANGES)("%s REST faults", (id) => {
  const symbol = SYMBOL[id]

  it("maps every fault kind to the documented ccxt error class", async () => {
    for (const [kind, expected] of Object.entries(EXPECTED[id])) {
      emulator.inject({ kind: kind as FaultKind, exchange: id, times: 1 })
      expect(errorName(await rejection(client(id).fetchTicker(symbol))), kind).toBe(expected)
    }
    if (id !== "binance") {
      for (const kind of SILENT) {
        emulator.inject({ kind, exchange: id, times: 1 })
        const ticker = await client(id).fetchTicker(symbol)
        expect([ticker.last, ticker.bid, ticker.baseVolume], kind).toEqual([undefined, undefined, undefined])
      }
    }
    expect((await client(id).fetchTicker(symbol)).last).toBe(emulator.model.price(id, symbol))
  })

  it("delays past the client timeout into RequestTimeout, and within it into a normal answer", async () => {
    emulator.inject({ kind: "delay", exchange: id, delayMs: 1200, times: 1 })
    expect(errorName(await rejection(client(id).fetchTicker(symbol)))).toBe("RequestTimeout")
    emulator.inject({ kind: "delay", exchange: id, delayMs: 150, times: 1 })
    const started = Date.now()
    expect((await client(id).fetchTicker(symbol)).last).toBe(emulator.model.price(id, symbol))
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
  })

  it("honours `times` and counts faulted requests", async () => {
    emulator.resetCounts()
    emulator.inject({ kind: "error-502-html", exchange: id, times: 2 })
    await expect(client(id).fetchOrderBook(symbol)).rejects.toBeInstanceOf(ExchangeNotAvailable)
    await expect(client(id).fetchTrades(symbol)).rejects.toBeInstanceOf(ExchangeNotAvailable)
    expect((await client(id).fetchOrderBook(symbol)).bids.length).toBeGreaterThan(0)
    expect(emulator.requestCount(id)).toBe(3)
    expect(emulator.requestCount()).toBe(3)
  })

  it("leaves the market list alone unless it is named, and scopes faults by endpoint and exchange", async () => {
    emulator.inject({ kind: "error-500" })
    const fresh = await makeExchange(emulator, id, { timeout: 800 })
    try {
      expect(Object.keys(await fresh.loadMarkets())).toContain(symbol)
      await expect(fresh.fetchTicker(symbol)).rejects.toBeInstanceOf(ExchangeNotAvailable)
      emulator.clearFaults()
      const depthPath = { binance: "/api/v3/depth", kraken: "/0/public/Depth", coinbaseexchange: "/products/" }[id]
      emulator.inject({ kind: "reset", exchange: id, endpoint: depthPath })
      if (id === "coinbaseexchange") {
        // a prefix: every /products/<id>/… path, but not the /products list
        await expect(fresh.fetchTicker(symbol)).rejects.toBeInstanceOf(NetworkError)
      } else {
        expect((await fresh.fetchTicker(symbol)).last).toBe(emulator.model.price(id, symbol))
      }
      await expect(fresh.fetchOrderBook(symbol)).rejects.toBeInstanceOf(NetworkError)
      const other = EXCHANGES.find((e) => e !== id) ?? "binance"
      expect((await client(other).fetchOrderBook(SYMBOL[other])).asks.length).toBeGreaterThan(0)
      emulator.clearFaults()
      const marketsPath = {
        binance: "/api/v3/exchangeInfo",
        kraken: "/0/public/AssetPairs",
        coinbaseexchange: "/products"
      }[id]
      emulator.inject({ kind: "error-503", exchange: id, endpoint: marketsPath })
      await expect(fresh.loadMarkets(true)).rejects.toBeInstanceOf(ExchangeNotAvailable)
    } finally {
      await fresh.close()
    }
  })
})

describe("fault bodies and headers", () => {
  it("binance sends its -1003 bodies with Retry-After and the ban deadline", async () => {
    const base = emulator.apiBase("binance")
    emulator.inject({ kind: "rate-limit-429", exchange: "binance", retryAfter: 7, times: 1 })
    const limited = await fetch(`${base}/api/v3/ticker/24hr?symbol=BTCUSDT`)
    expect(limited.status).toBe(429)
    expect(limited.headers.get("retry-after")).toBe("7")
    expect(await limited.json()).toMatchObject({ code: -1003 })
    const bannedUntil = T0 + 600_000
    emulator.inject({ kind: "ban-418", exchange: "binance", bannedUntil, retryAfter: 600, times: 1 })
    const banned = await getJson(`${base}/api/v3/time`)
    expect(banned.status).toBe(418)
    expect(banned.body).toEqual({
      code: -1003,
      msg: `Way too much request weight used; IP banned until ${bannedUntil}. Please use WebSocket Streams for live updates to avoid bans.`
    })
    emulator.inject({ kind: "rate-limit-429", exchange: "binance", retryAfter: 3, times: 1 })
    const error = await rejection(client("binance").fetchTicker("BTC/USDT"))
    expect(error).toBeInstanceOf(DDoSProtection)
    expect(client("binance").last_response_headers?.["Retry-After"]).toBe("3")
  })

  it("kraken's 429 comes from its CDN (RateLimitExceeded), its 503 carries EService:Unavailable", async () => {
    emulator.inject({ kind: "rate-limit-429", exchange: "kraken", retryAfter: 2, times: 1 })
    await expect(client("kraken").fetchTrades("BTC/USD")).rejects.toBeInstanceOf(RateLimitExceeded)
    expect(client("kraken").last_response_headers?.["Retry-After"]).toBe("2")
    emulator.inject({ kind: "error-503-json", exchange: "kraken", times: 1 })
    expect((await getJson(`${emulator.apiBase("kraken")}/0/public/Time`)).body).toEqual({
      error: ["EService:Unavailable"]
    })
  })

  it("truncated JSON is a cut-off version of the real body", async () => {
    const url = `${emulator.apiBase("coinbaseexchange")}/products/BTC-USD/stats`
    const whole = (await getJson(url)).text
    emulator.inject({ kind: "truncated-json", times: 1 })
    const cut = await getJson(url)
    expect(cut.status).toBe(200)
    expect(cut.body).toBeUndefined()
    expect(whole.startsWith(cut.text)).toBe(true)
    expect(cut.text.length).toBeLessThan(whole.length)
  })
})

describe("broken 200 bodies (the integrity gate's test kinds)", () => {
  const ticker = {
    binance: "/api/v3/ticker/24hr?symbol=BTCUSDT",
    kraken: "/0/public/Ticker?pair=XXBTZUSD",
    coinbaseexchange: "/products/BTC-USD/ticker"
  } as const

  it("{}, [] and null, on any endpoint including the market lists", async () => {
    for (const id of EXCHANGES) {
      for (const [kind, text] of [
        ["empty-object-200", "{}"],
        ["empty-array-200", "[]"],
        ["null-200", "null"]
      ] as const) {
        emulator.inject({ kind, exchange: id, times: 1 })
        const res = await getJson(`${emulator.apiBase(id)}${ticker[id]}`)
        expect([id, kind, res.status, res.text]).toEqual([id, kind, 200, text])
      }
    }
    emulator.inject({ kind: "empty-array-200", exchange: "binance", endpoint: "/api/v3/exchangeInfo", times: 1 })
    expect((await getJson(`${emulator.apiBase("binance")}/api/v3/exchangeInfo`)).text).toBe("[]")
  })

  it("error envelopes in each venue's own shape, with status 200", async () => {
    const expected = {
      binance: { code: -1001, msg: "Internal error; unable to process your request. Please try again." },
      kraken: { error: ["EGeneral:Invalid arguments"] },
      coinbaseexchange: { message: "Internal server error" }
    }
    for (const id of EXCHANGES) {
      emulator.inject({ kind: "error-envelope-200", exchange: id, times: 1 })
      const res = await getJson(`${emulator.apiBase(id)}${ticker[id]}`)
      expect([res.status, res.body]).toEqual([200, expected[id]])
    }
  })

  it("wrong field types keep the normal answer's shape with every value turned into true", async () => {
    emulator.inject({ kind: "wrong-types-200", exchange: "kraken", times: 1 })
    const res = await getJson(`${emulator.apiBase("kraken")}${ticker.kraken}`)
    const normal = (await getJson(`${emulator.apiBase("kraken")}${ticker.kraken}`)).body as {
      result: { XXBTZUSD: { a: ReadonlyArray<unknown> } }
    }
    const broken = res.body as { error: ReadonlyArray<unknown>; result: { XXBTZUSD: { a: ReadonlyArray<unknown> } } }
    expect(broken.error).toEqual([])
    expect(Object.keys(broken.result.XXBTZUSD)).toEqual(Object.keys(normal.result.XXBTZUSD))
    expect(broken.result.XXBTZUSD.a).toEqual(normal.result.XXBTZUSD.a.map(() => true))
  })

  it("another symbol's payload: the next market's answer, in the path or the query", async () => {
    emulator.inject({ kind: "other-symbol", exchange: "binance", times: 1 })
    expect(((await getJson(`${emulator.apiBase("binance")}${ticker.binance}`)).body as { symbol: string }).symbol).toBe(
      "ETHUSDT"
    )
    emulator.inject({ kind: "other-symbol", exchange: "kraken", times: 1 })
    const kraken = (await getJson(`${emulator.apiBase("kraken")}${ticker.kraken}`)).body as { result: object }
    expect(Object.keys(kraken.result)).toEqual(["XETHZUSD"])
    emulator.inject({ kind: "other-symbol", exchange: "coinbaseexchange", times: 1 })
    const swapped = await getJson(`${emulator.apiBase("coinbaseexchange")}${ticker.coinbaseexchange}`)
    emulator.clearFaults()
    const eth = await getJson(`${emulator.apiBase("coinbaseexchange")}/products/ETH-USD/ticker`)
    expect(swapped.body).toEqual(eth.body)
  })

  it("`after` lets matching requests through first; `keepBytes` sets the truncation", async () => {
    const url = `${emulator.apiBase("binance")}${ticker.binance}`
    const whole = (await getJson(url)).text
    emulator.inject({ kind: "truncated-json", exchange: "binance", after: 1, times: 1, keepBytes: 7 })
    expect((await getJson(url)).text).toBe(whole)
    expect((await getJson(url)).text).toBe(whole.slice(0, 7))
    expect((await getJson(url)).text).toBe(whole)
    emulator.inject({ kind: "truncated-json", exchange: "binance", times: 1, keepBytes: 1e9 })
    expect((await getJson(url)).text).toBe(whole.slice(0, -1))
  })
})

describe.each(EXCHANGES)("%s WebSocket faults", (id) => {
  const symbol = SYMBOL[id]

  it("ws-stall keeps the connection open but silent; clearing it resumes the pushes", async () => {
    const exchange = await makeExchange(emulator, id)
    try {
      await exchange.watchTicker(symbol)
      emulator.inject({ kind: "ws-stall", exchange: id })
      expect(await within(exchange.watchTicker(symbol), 400)).toBe("pending")
      emulator.clearFaults()
      const resumed = await within(exchange.watchTicker(symbol), 2000)
      expect(resumed).not.toBe("pending")
    } finally {
      await exchange.close()
    }
  })

  it("ws-close drops open connections and new ones right after subscribing (NetworkError)", async () => {
    // ccxt backs off exponentially (from 1 s) before redialling; keep that short here
    const exchange = await makeExchange(emulator, id, { options: { ws: { backoff: { base: 20 } } } })
    try {
      await exchange.watchTicker(symbol)
      const pending = exchange.watchTicker(symbol)
      emulator.inject({ kind: "ws-close", exchange: id })
      await expect(pending).rejects.toBeInstanceOf(NetworkError)
      await expect(exchange.watchTrades(symbol)).rejects.toBeInstanceOf(NetworkError)
      expect(await eventually(() => emulator.wsSubscriptions(id), 0)).toBe(0)
      emulator.clearFaults()
      expect((await exchange.watchTicker(symbol)).last).toBe(emulator.model.price(id, symbol))
      emulator.inject({ kind: "ws-close", exchange: id, times: 1 })
      await expect(exchange.watchTicker(symbol)).rejects.toBeInstanceOf(NetworkError)
      expect((await exchange.watchTicker(symbol)).last).toBe(emulator.model.price(id, symbol))
    } finally {
      await exchange.close()
    }
  })
})
