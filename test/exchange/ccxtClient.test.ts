import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { createCcxtClient, exchangeOptions, hasPlainWsUrl, localizeUrls } from "../../src/Exchange/ccxtClient.js"

/** Default `urls.api` of ccxt 4.5.84 (trimmed). */
const BINANCE_API = {
  public: "https://api.binance.com/api/v3",
  private: "https://api.binance.com/api/v3",
  fapiPublic: "https://fapi.binance.com/fapi/v1",
  ws: {
    spot: "wss://stream.binance.com:9443/ws",
    "ws-api": { spot: "wss://ws-api.binance.com:443/ws-api/v3" }
  }
}
const KRAKEN_API = {
  public: "https://api.kraken.com",
  private: "https://api.kraken.com",
  ws: { public: "wss://ws.kraken.com", publicV2: "wss://ws.kraken.com/v2" }
}
const COINBASEEXCHANGE_API = {
  public: "https://api.{hostname}",
  private: "https://api.{hostname}",
  ws: "wss://ws-feed.exchange.coinbase.com"
}

describe("localizeUrls", () => {
  it("keeps binance's /api/v3 after a prefixed base and leaves ws alone", () => {
    assert.deepStrictEqual(localizeUrls(BINANCE_API, "http://127.0.0.1:9000/binance", undefined), {
      public: "http://127.0.0.1:9000/binance/api/v3",
      private: "http://127.0.0.1:9000/binance/api/v3",
      fapiPublic: "http://127.0.0.1:9000/binance/fapi/v1",
      ws: BINANCE_API.ws
    })
  })

  it("replaces the ws subtree with the ws base only", () => {
    assert.deepStrictEqual(localizeUrls(BINANCE_API, undefined, "ws://127.0.0.1:9001/"), {
      ...BINANCE_API,
      ws: { spot: "ws://127.0.0.1:9001/ws", "ws-api": { spot: "ws://127.0.0.1:9001/ws-api/v3" } }
    })
  })

  it("maps kraken's bare hosts", () => {
    assert.deepStrictEqual(localizeUrls(KRAKEN_API, "http://127.0.0.1:9000", "ws://127.0.0.1:9001/kraken"), {
      public: "http://127.0.0.1:9000",
      private: "http://127.0.0.1:9000",
      ws: { public: "ws://127.0.0.1:9001/kraken", publicV2: "ws://127.0.0.1:9001/kraken/v2" }
    })
  })

  it("drops coinbaseexchange's {hostname} placeholder and handles a string ws", () => {
    assert.deepStrictEqual(localizeUrls(COINBASEEXCHANGE_API, "http://127.0.0.1:9000/cbx", "ws://127.0.0.1:9001"), {
      public: "http://127.0.0.1:9000/cbx",
      private: "http://127.0.0.1:9000/cbx",
      ws: "ws://127.0.0.1:9001"
    })
  })

  it("detects plain ws:// URLs", () => {
    assert.isFalse(hasPlainWsUrl(BINANCE_API))
    assert.isTrue(hasPlainWsUrl({ ws: { spot: "ws://127.0.0.1:1/ws" } }))
  })

  it("asks binance, okx and bybit for spot markets only", () => {
    assert.deepStrictEqual(exchangeOptions("binance"), { fetchMarkets: { types: ["spot"] } })
    assert.deepStrictEqual(exchangeOptions("bybit"), { fetchMarkets: { types: ["spot"] }, defaultType: "spot" })
    assert.deepStrictEqual(exchangeOptions("kraken"), {})
  })
})

/** Reads a nested property of a loosely typed ccxt instance. */
const pick = (value: unknown, ...path: Array<string>): unknown =>
  path.reduce<unknown>(
    (node, key) => (typeof node === "object" && node !== null ? (node as Record<string, unknown>)[key] : undefined),
    value
  )

describe("createCcxtClient", () => {
  it.effect("builds a pro instance with the overrides applied through the constructor", () =>
    Effect.gen(function* () {
      const client = yield* createCcxtClient({
        id: "coinbaseexchange",
        timeoutMs: 1234,
        apiBase: Option.some("http://127.0.0.1:9000/cbx"),
        wsBase: Option.some("ws://127.0.0.1:9001")
      })
      assert.strictEqual(pick(client, "urls", "api", "public"), "http://127.0.0.1:9000/cbx")
      assert.strictEqual(pick(client, "urls", "api", "ws"), "ws://127.0.0.1:9001")
      assert.strictEqual(pick(client, "timeout"), 1234)
      assert.strictEqual(pick(client, "enableRateLimit"), true)
      assert.strictEqual(client.has["watchTicker"], true)
      yield* Effect.promise(() => client.close())
    })
  )

  it.effect("applies spot-only options and leaves URLs alone without overrides", () =>
    Effect.gen(function* () {
      const client = yield* createCcxtClient({
        id: "bybit",
        timeoutMs: 10_000,
        apiBase: Option.none(),
        wsBase: Option.none()
      })
      assert.deepStrictEqual(pick(client, "options", "fetchMarkets", "types"), ["spot"])
      assert.strictEqual(pick(client, "options", "defaultType"), "spot")
      assert.strictEqual(pick(client, "urls", "api", "public"), "https://api.{hostname}")
      yield* Effect.promise(() => client.close())
    })
  )

  it.effect("fails for an id ccxt does not know", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        createCcxtClient({ id: "nosuchexchange", timeoutMs: 1000, apiBase: Option.none(), wsBase: Option.none() })
      )
      assert.strictEqual(error.reason, "unsupported")
    })
  )
})

describe("lazy ccxt", () => {
  it("imports ccxt only dynamically, in ccxtClient.ts", () => {
    const dir = join(import.meta.dirname, "../../src/Exchange")
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
      const source = readFileSync(join(dir, file), "utf8")
      assert.notMatch(source, /^import (?!type )[^\n]*from "ccxt"/m, file)
      if (file !== "ccxtClient.ts") assert.notInclude(source, 'import("ccxt")', file)
    }
  })
})
