/** Shared helpers for the emulator tests: ccxt instances pointed at the emulator, and small waiting utilities. */

import ccxt, { type Exchange } from "ccxt"
import type { EmulatedExchange, Emulator } from "../../src/emulator/index.js"

export const SYMBOL: Readonly<Record<EmulatedExchange, string>> = {
  binance: "BTC/USDT",
  kraken: "BTC/USD",
  coinbaseexchange: "BTC/USD"
}

export const EXCHANGES: ReadonlyArray<EmulatedExchange> = ["binance", "kraken", "coinbaseexchange"]

/** 10:17:23.456 UTC: mid-minute, so the newest candle and the 24 h window edges are partial. */
export const T0 = Date.UTC(2024, 0, 1, 10, 17, 23, 456)

/** Replace scheme+host of every URL string, keeping the path (ccxt-offline.md §2). */
export const localize = (api: unknown, base: string): unknown => {
  if (typeof api === "string") return api.replace(/^(https?|wss?):\/\/[^/]+/, base)
  if (typeof api === "object" && api !== null) {
    return Object.fromEntries(Object.entries(api).map(([key, value]) => [key, localize(value, base)]))
  }
  return api
}

type ExchangeConstructor = new (config?: Record<string, unknown>) => Exchange

const proClass = (id: EmulatedExchange): ExchangeConstructor => ccxt.pro[id] as unknown as ExchangeConstructor

/** A ccxt.pro instance whose REST and WebSocket URLs point at the emulator. */
export const makeExchange = async (
  emulator: Emulator,
  id: EmulatedExchange,
  config: Record<string, unknown> = {}
): Promise<Exchange> => {
  const Pro = proClass(id)
  const defaults = new Pro().urls["api"] as Record<string, unknown>
  const api = localize(defaults, emulator.apiBase(id)) as Record<string, unknown>
  api["ws"] = localize(defaults["ws"], emulator.wsBase(id))
  const options = {
    ...(id === "binance" ? { fetchMarkets: { types: ["spot"] } } : {}),
    ...(config["options"] as object)
  }
  // coinbaseexchange signs its level2 subscription, so it needs (any) credentials with a base64 secret
  const credentials = id === "coinbaseexchange" ? { apiKey: "key", secret: "c2VjcmV0", password: "pass" } : {}
  const exchange = new Pro({ enableRateLimit: false, timeout: 5000, ...credentials, ...config, urls: { api }, options })
  await exchange.loadHttpProxyAgent()
  return exchange
}

/** Resolves with "pending" when the promise has not settled within `ms`. */
export const within = async <A>(promise: Promise<A>, ms: number): Promise<A | "pending"> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<"pending">((resolve) => {
    timer = setTimeout(() => resolve("pending"), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** The error a promise rejects with (fails the test when it resolves). */
export const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected the call to fail")
}

export const errorName = (error: unknown): string =>
  typeof error === "object" && error !== null ? error.constructor.name : typeof error

/** [timestamp, open, high, low, close, volume] as ccxt returns them. */
export const ohlcvRow = (c: {
  timestamp: number
  open: number
  high: number
  low: number
  close: number
  volume: number
}): number[] => [c.timestamp, c.open, c.high, c.low, c.close, c.volume]

export const getJson = async (
  url: string,
  init?: RequestInit
): Promise<{ status: number; body: unknown; text: string }> => {
  const response = await fetch(url, init)
  const text = await response.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  return { status: response.status, body, text }
}

/** Polls `read` until it returns `expected` (sockets close asynchronously on the server side). */
export const eventually = async <A>(read: () => A, expected: A, ms = 2000): Promise<A> => {
  const deadline = Date.now() + ms
  let value = read()
  while (value !== expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    value = read()
  }
  return value
}
