import type { Candle, ExchangeInfo, MarketList, Ticker, Trade } from "./types.js"

/** A non-2xx answer of the API: its status and the JSON error's code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message)
  }
}

const API_KEY_STORAGE = "mcds.apiKey"

/** The part of the browser's localStorage the page uses. */
export interface KeyStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

export const storedApiKey = (storage: Pick<KeyStorage, "getItem"> | undefined): string | null => {
  const key = storage?.getItem(API_KEY_STORAGE) ?? null
  return key === null || key.trim() === "" ? null : key
}

export const storeApiKey = (storage: Pick<KeyStorage, "setItem" | "removeItem">, key: string | null): void => {
  if (key === null) storage.removeItem(API_KEY_STORAGE)
  else storage.setItem(API_KEY_STORAGE, key)
}

const query = (params: Readonly<Record<string, string | number | undefined>>): string =>
  Object.entries(params)
    .flatMap(([name, value]) =>
      value === undefined ? [] : [`${name}=${encodeURIComponent(String(value)).replace(/%2F/gi, "/")}`]
    )
    .join("&")

/** The REST API of the page's origin, with the API key (when there is one) as X-API-Key. */
export const makeApi = (apiKey: string | null, fetchImpl: typeof fetch = (...args) => fetch(...args)) => {
  const get = async <A>(path: string, params: Readonly<Record<string, string | number | undefined>> = {}) => {
    const search = query(params)
    const response = await fetchImpl(search === "" ? path : `${path}?${search}`, {
      headers: { accept: "application/json", ...(apiKey === null ? {} : { "x-api-key": apiKey }) }
    })
    const body: unknown = await response.json().catch(() => null)
    if (!response.ok) {
      const error = (body ?? {}) as { code?: unknown; message?: unknown }
      throw new ApiError(
        response.status,
        typeof error.code === "string" ? error.code : "http_error",
        typeof error.message === "string" ? error.message : `HTTP ${response.status}`
      )
    }
    return body as A
  }
  return {
    exchanges: () => get<{ exchanges: ReadonlyArray<ExchangeInfo> }>("/v1/exchanges").then((b) => b.exchanges),
    markets: (exchange: string, params: { q?: string; quote?: string; limit?: number } = {}) =>
      get<MarketList>("/v1/markets", { exchange, ...params }),
    ticker: (exchange: string, symbol: string) => get<Ticker>("/v1/markets/ticker", { exchange, symbol }),
    ohlcv: (exchange: string, symbol: string, interval: string, limit: number, since?: number) =>
      get<{ candles: ReadonlyArray<Candle> }>("/v1/markets/ohlcv", { exchange, symbol, interval, limit, since }).then(
        (b) => b.candles
      ),
    trades: (exchange: string, symbol: string, limit: number) =>
      get<{ trades: ReadonlyArray<Trade> }>("/v1/markets/trades", { exchange, symbol, limit }).then((b) => b.trades)
  }
}

export type Api = ReturnType<typeof makeApi>
