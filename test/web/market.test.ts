import { describe, expect, it } from "vitest"
import { ApiError, makeApi, storeApiKey, storedApiKey } from "../../web/src/lib/api.js"
import {
  defaultSymbol,
  defaultWatchlist,
  parseViewQuery,
  parseWatchlist,
  pickInterval,
  resolveView,
  searchTerm,
  viewQuery
} from "../../web/src/lib/market.js"

describe("view in the URL", () => {
  it("reads exchange, symbol and interval from the query string", () => {
    expect(parseViewQuery("?exchange=kraken&symbol=BTC/USD&interval=5m")).toEqual({
      exchange: "kraken",
      symbol: "BTC/USD",
      interval: "5m"
    })
    expect(parseViewQuery("?symbol=btc%2Fusd")).toEqual({ symbol: "BTC/USD" })
  })

  it("ignores malformed parts", () => {
    expect(parseViewQuery("?exchange=Kra ken&symbol=<script>&interval=5 minutes")).toEqual({})
    expect(parseViewQuery("")).toEqual({})
  })

  it("writes a readable, shareable query string", () => {
    expect(viewQuery({ exchange: "kraken", symbol: "BTC/USD", interval: "5m" })).toBe(
      "?exchange=kraken&symbol=BTC/USD&interval=5m"
    )
    const round = parseViewQuery(viewQuery({ exchange: "binance", symbol: "ETH/USDT", interval: "1h" }))
    expect(round).toEqual({ exchange: "binance", symbol: "ETH/USDT", interval: "1h" })
  })
})

describe("defaults", () => {
  it("opens on BTC against the most common quote", () => {
    expect(defaultSymbol(["ETH/USD", "BTC/EUR", "BTC/USD"])).toBe("BTC/USD")
    expect(defaultSymbol(["ETH/USDT", "BTC/USDT", "BTC/USD"])).toBe("BTC/USDT")
    expect(defaultSymbol(["DOGE/JPY"])).toBe("DOGE/JPY")
    expect(defaultSymbol([])).toBeUndefined()
  })

  it("keeps an interval the exchange has, else 1m, else its first", () => {
    expect(pickInterval(["1m", "5m", "1h"], "5m")).toBe("5m")
    expect(pickInterval(["1m", "5m", "1h"], "3m")).toBe("1m")
    expect(pickInterval(["5m", "1h"], undefined)).toBe("5m")
  })

  it("watches the main assets against the view's quote, the view's market first", () => {
    const symbols = ["BTC/USD", "ETH/USD", "SOL/USD", "ETH/BTC"]
    expect(defaultWatchlist({ exchange: "kraken", symbol: "ETH/USD" }, symbols)).toEqual([
      { exchange: "kraken", symbol: "ETH/USD" },
      { exchange: "kraken", symbol: "BTC/USD" },
      { exchange: "kraken", symbol: "SOL/USD" }
    ])
  })

  it("reads a stored watchlist defensively", () => {
    expect(parseWatchlist('[{"exchange":"kraken","symbol":"BTC/USD"},{"x":1},3]')).toEqual([
      { exchange: "kraken", symbol: "BTC/USD" }
    ])
    expect(parseWatchlist("{")).toBeNull()
    expect(parseWatchlist('{"a":1}')).toBeNull()
    expect(parseWatchlist(null)).toBeNull()
  })

  it("sends only characters the markets filter accepts", () => {
    expect(searchTerm(" eth/u sd ")).toBe("ETH/USD")
    expect(searchTerm("<b>")).toBe("B")
    expect(searchTerm("x".repeat(50))).toHaveLength(40)
  })
})

describe("resolving a view", () => {
  const exchanges = [
    { id: "binance", intervals: ["1m", "5m", "1h"] },
    { id: "kraken", intervals: ["1m", "5m", "15m"] }
  ]
  const listings: Record<string, ReadonlyArray<string>> = {
    binance: ["BTC/USDT", "ETH/USDT", "ETH/BTC"],
    kraken: ["BTC/USD", "ETH/USD"]
  }
  const calls: Array<string> = []
  const markets = async (exchange: string, params: { q?: string; limit?: number }) => {
    calls.push(`${exchange}:${params.q ?? ""}:${params.limit ?? ""}`)
    const all = listings[exchange] ?? []
    const hits = all.filter((s) => params.q === undefined || s.includes(params.q)).slice(0, params.limit)
    return { markets: hits.map((symbol) => ({ symbol })) }
  }

  it("takes what the URL asks when the exchange has it", async () => {
    const resolved = await resolveView(exchanges, { exchange: "kraken", symbol: "ETH/USD", interval: "15m" }, markets)
    expect(resolved?.view).toEqual({ exchange: "kraken", symbol: "ETH/USD", interval: "15m" })
  })

  it("falls back to the first exchange, BTC and 1m", async () => {
    const resolved = await resolveView(exchanges, { exchange: "nope", symbol: "DOGE/USD", interval: "2d" }, markets)
    expect(resolved?.view).toEqual({ exchange: "binance", symbol: "BTC/USDT", interval: "1m" })
  })

  it("keeps the interval when the symbol does not exist on the new exchange", async () => {
    calls.length = 0
    const resolved = await resolveView(exchanges, { exchange: "kraken", symbol: "BTC/USDT", interval: "5m" }, markets)
    expect(resolved?.view).toEqual({ exchange: "kraken", symbol: "BTC/USD", interval: "5m" })
    expect(calls).toEqual(["kraken:BTC/USDT:100", "kraken:BTC:1000"])
  })

  it("gives nothing for an exchange without markets", async () => {
    expect(await resolveView([{ id: "empty", intervals: ["1m"] }], {}, markets)).toBeUndefined()
    expect(await resolveView([], {}, markets)).toBeUndefined()
  })
})

describe("REST client", () => {
  const respond = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })

  it("sends the API key as X-API-Key and builds readable query strings", async () => {
    const seen: Array<{ url: string; headers: Record<string, string> }> = []
    const api = makeApi("secret", async (input, init) => {
      seen.push({ url: String(input), headers: init?.headers as Record<string, string> })
      return respond(200, { candles: [] })
    })
    await api.ohlcv("kraken", "BTC/USD", "5m", 300, 1000)
    expect(seen).toEqual([
      {
        url: "/v1/markets/ohlcv?exchange=kraken&symbol=BTC/USD&interval=5m&limit=300&since=1000",
        headers: { accept: "application/json", "x-api-key": "secret" }
      }
    ])
  })

  it("turns JSON errors into ApiError with status and code", async () => {
    const api = makeApi(null, async () => respond(401, { code: "unauthorized", message: "An API key is required" }))
    const error = await api.exchanges().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect(error).toMatchObject({ status: 401, code: "unauthorized", message: "An API key is required" })
  })

  it("keeps the key in storage", () => {
    const map = new Map<string, string>()
    const storage = {
      getItem: (k: string) => map.get(k) ?? null,
      setItem: (k: string, v: string) => void map.set(k, v),
      removeItem: (k: string) => void map.delete(k)
    }
    expect(storedApiKey(storage)).toBeNull()
    storeApiKey(storage, "k1")
    expect(storedApiKey(storage)).toBe("k1")
    storeApiKey(storage, null)
    expect(storedApiKey(storage)).toBeNull()
    expect(storedApiKey(undefined)).toBeNull()
  })
})
