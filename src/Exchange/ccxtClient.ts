import type * as CcxtModule from "ccxt"
import { Data, Effect, Option, Predicate } from "effect"
import type { DescribableClient } from "./decode.js"
import { retryAfterMsOf } from "./errors.js"
import { assertIntegrity } from "./integrity.js"

/** The part of a ccxt exchange instance the service uses; every result is decoded before use. */
export interface CcxtClient extends DescribableClient {
  markets?: unknown
  /** ccxt keeps its last loadMarkets promise here, rejected ones included. */
  marketsLoading?: Promise<unknown> | undefined
  loadMarkets(reload?: boolean): Promise<unknown>
  fetchTicker(symbol: string): Promise<unknown>
  fetchTickers(symbols?: Array<string>): Promise<unknown>
  fetchOHLCV(symbol: string, timeframe?: string, since?: number, limit?: number): Promise<unknown>
  fetchOrderBook(symbol: string, limit?: number): Promise<unknown>
  fetchTrades(symbol: string, since?: number, limit?: number): Promise<unknown>
  close(): Promise<unknown>
  /** ccxt.pro only. */
  watchTicker?(symbol: string, params?: Record<string, unknown>): Promise<unknown>
  watchTrades?(symbol: string, since?: number, limit?: number): Promise<unknown>
  watchOrderBook?(symbol: string, limit?: number): Promise<unknown>
  watchOHLCV?(symbol: string, timeframe?: string, since?: number, limit?: number): Promise<unknown>
  currencies?: unknown
  /** Hands an instance the markets another one loaded, so it needs no loadMarkets request of its own. */
  setMarkets?(markets: unknown, currencies?: unknown): unknown
}

/** What creating an instance additionally touches. */
interface CcxtInstance extends CcxtClient {
  readonly urls: { readonly api?: unknown }
  loadHttpProxyAgent(): Promise<unknown>
  handleErrors(
    code: number,
    reason: string,
    url: string,
    method: string,
    headers: unknown,
    body: string,
    response: unknown,
    requestHeaders: unknown,
    requestBody: unknown
  ): unknown
  handleHttpStatusCode(code: number, reason: string, url: string, method: string, body: string): void
}

type CcxtConstructor = new (config?: Record<string, unknown>) => CcxtInstance

/** ccxt classes are only known by id at run time; this is the one place their type is asserted. */
const isCcxtConstructor = (u: unknown): u is CcxtConstructor => typeof u === "function"

export type Ccxt = typeof CcxtModule.default

/** ccxt costs about 0.7 s to import, so it is loaded on first use rather than at start-up. */
export const importCcxt: Effect.Effect<Ccxt> = Effect.promise(() => import("ccxt")).pipe(Effect.map((m) => m.default))

/** Every REST exchange id of the installed ccxt. */
export const ccxtExchangeIds: Effect.Effect<ReadonlyArray<string>> = Effect.map(importCcxt, (ccxt) => ccxt.exchanges)

export interface ClientSettings {
  readonly id: string
  readonly timeoutMs: number
  /** ccxt's own per-instance request throttle; off only against a local emulator. */
  readonly throttle?: boolean
  readonly apiBase: Option.Option<string>
  readonly wsBase: Option.Option<string>
}

export class CcxtClientError extends Data.TaggedError("CcxtClientError")<{
  readonly exchange: string
  readonly reason: "unsupported" | "failed"
  readonly cause?: unknown
}> {}

export type CreateClient = (settings: ClientSettings) => Effect.Effect<CcxtClient, CcxtClientError>

const SCHEME_AND_HOST = /^(https?|wss?):\/\/[^/]+/i

/**
 * Points every URL string under a ccxt `urls.api` at a local base, keeping the path: REST strings get `apiBase`, the
 * `ws` subtree (and any other ws:// or wss:// string) gets `wsBase`. A base may carry a path prefix. Missing bases leave
 * their URLs alone.
 */
export const localizeUrls = (api: unknown, apiBase: string | undefined, wsBase: string | undefined): unknown => {
  const rest = apiBase?.replace(/\/+$/, "")
  const ws = wsBase?.replace(/\/+$/, "")
  const go = (node: unknown, inWs: boolean): unknown => {
    if (typeof node === "string") {
      const base = inWs || /^wss?:\/\//i.test(node) ? ws : rest
      return base === undefined ? node : node.replace(SCHEME_AND_HOST, () => base)
    }
    if (Array.isArray(node)) return node.map((n) => go(n, inWs))
    if (Predicate.isRecord(node)) {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, go(v, inWs || k === "ws")]))
    }
    return node
  }
  return go(api, false)
}

/** True when some URL under `api` is a plain ws:// one, which ccxt only opens after loadHttpProxyAgent(). */
export const hasPlainWsUrl = (api: unknown): boolean =>
  typeof api === "string"
    ? /^ws:\/\//i.test(api)
    : Array.isArray(api)
      ? api.some(hasPlainWsUrl)
      : Predicate.isRecord(api) && Object.values(api).some(hasPlainWsUrl)

const SPOT_MARKETS = { fetchMarkets: { types: ["spot"] } }

/** Spot only: without this binance, okx and bybit also load (and depend on) their derivatives endpoints. */
export const exchangeOptions = (id: string): Readonly<Record<string, unknown>> =>
  id === "bybit" ? { ...SPOT_MARKETS, defaultType: "spot" } : id === "binance" || id === "okx" ? SPOT_MARKETS : {}

/**
 * The `limit` to hand watchOrderBook for books of `depth` levels. binance keeps a local book from a REST snapshot
 * `limit` deep plus diffs: a shallow snapshot leaves holes once the price moves past it, so it keeps ccxt's deep
 * default. Elsewhere the limit picks the depth of the exchange's own book feed.
 */
export const watchOrderBookLimit = (id: string, depth: number): number | undefined =>
  id.startsWith("binance") ? undefined : depth

/** binance's default ticker stream (miniTicker) carries neither bid nor ask; its full `ticker` stream does. */
export const watchTickerParams = (id: string): Record<string, unknown> =>
  id.startsWith("binance") ? { name: "ticker" } : {}

/**
 * Subclass whose errors carry `httpStatus` and `retryAfterMs` from the very response that caused them (ccxt only
 * exposes headers through `last_response_headers`, which concurrent requests overwrite), and the integrity gate: ccxt
 * calls handleErrors with the raw body and its parse for every REST answer, before it builds a result out of it, so a
 * 2xx body that is not the documented JSON is rejected here (integrity.ts) and never becomes an empty result.
 */
const withHttpMeta = (Base: CcxtConstructor): CcxtConstructor =>
  class extends Base {
    override handleErrors(
      code: number,
      reason: string,
      url: string,
      method: string,
      headers: unknown,
      body: string,
      response: unknown,
      requestHeaders: unknown,
      requestBody: unknown
    ): unknown {
      try {
        assertIntegrity(this.id, code, url, typeof body === "string" ? body : "", response)
        const skip = super.handleErrors(code, reason, url, method, headers, body, response, requestHeaders, requestBody)
        if (skip === undefined) this.handleHttpStatusCode(code, reason, url, method, body)
        return true
      } catch (error) {
        if (typeof error === "object" && error !== null) {
          const headerRecord = Predicate.isRecord(headers) ? headers : undefined
          const text = typeof body === "string" ? body : ""
          Object.assign(error, { httpStatus: code, retryAfterMs: retryAfterMsOf(headerRecord, text, Date.now()) })
        }
        throw error
      }
    }
  }

/** `ccxt.pro[id]` when it exists (the same instance can later serve watch*), else `ccxt[id]`. */
const constructorFor = (ccxt: Ccxt, id: string): CcxtConstructor | undefined => {
  const pro: Readonly<Record<string, unknown>> = ccxt.pro
  const rest: Readonly<Record<string, unknown>> = ccxt
  if (!ccxt.exchanges.includes(id)) return undefined
  const streaming = pro[id]
  if (isCcxtConstructor(streaming)) return streaming
  const plain = rest[id]
  return isCcxtConstructor(plain) ? plain : undefined
}

/** A ccxt instance for `settings.id`, with the URL overrides, spot-only options and Retry-After capture applied. */
export const createCcxtClient: CreateClient = (settings) =>
  Effect.gen(function* () {
    const { id } = settings
    const ccxt = yield* importCcxt
    const Base = constructorFor(ccxt, id)
    if (Base === undefined) return yield* new CcxtClientError({ exchange: id, reason: "unsupported" })
    const failed = (cause: unknown) => new CcxtClientError({ exchange: id, reason: "failed", cause })
    const config: Record<string, unknown> = {
      enableRateLimit: settings.throttle ?? true,
      timeout: settings.timeoutMs,
      options: exchangeOptions(id)
    }
    const apiBase = Option.getOrUndefined(settings.apiBase)
    const wsBase = Option.getOrUndefined(settings.wsBase)
    if (apiBase !== undefined || wsBase !== undefined) {
      // through the constructor so that ccxt's `{hostname}` placeholders disappear with the replaced host
      const defaults = yield* Effect.try({ try: () => new Base().urls.api, catch: failed })
      config["urls"] = { api: localizeUrls(defaults, apiBase, wsBase) }
    }
    const Client = withHttpMeta(Base)
    const client = yield* Effect.try({ try: () => new Client(config), catch: failed })
    if (hasPlainWsUrl(client.urls.api)) {
      yield* Effect.tryPromise({ try: () => client.loadHttpProxyAgent(), catch: failed })
    }
    return client
  })
