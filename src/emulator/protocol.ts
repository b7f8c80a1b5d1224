/** The contract between the HTTP/WebSocket server and the per-exchange protocol modules. */

import type { BookFeed } from "./book.js"
import type { Clock } from "./clock.js"
import type { FaultSpec, RawResponse } from "./faults.js"
import type { EmulatedExchange, MarketSpec } from "./markets.js"
import type { EmulatorModel } from "./model.js"

export interface RestRequest {
  readonly method: string
  /** Path without the exchange prefix, e.g. /api/v3/klines. */
  readonly path: string
  readonly params: URLSearchParams
  readonly now: number
}

export interface VenueContext {
  readonly model: EmulatorModel
  readonly clock: Clock
  /** The shared book feed of a market (one per exchange and symbol). */
  book(spec: MarketSpec): BookFeed
}

/** One WebSocket connection as seen by a protocol session. */
export interface WsPeer {
  /** Market data; dropped (returns false) while a ws-stall fault is active. */
  send(message: unknown): boolean
  /** Acks, errors and pongs: always delivered. */
  reply(message: unknown): void
  /** Called when a subscribe request arrives; terminates the connection while a ws-close fault is active. */
  subscribing(): boolean
}

export interface WsSession {
  onMessage(text: string): void
  /** Periodic push at model time `now`. */
  tick(now: number): void
  readonly subscriptionCount: number
  dispose(): void
}

export interface Venue {
  readonly id: EmulatedExchange
  /** Market-list endpoints a fault without an explicit endpoint leaves alone, so loadMarkets keeps working. */
  readonly marketListPaths: ReadonlySet<string>
  rest(request: RestRequest): RawResponse
  /** The venue's realistic answer for an injected REST fault (never called for delay/reset/ws faults). */
  faultResponse(spec: FaultSpec, request: RestRequest): RawResponse
  /** Whether a WebSocket upgrade to this path (without the exchange prefix) is served. */
  acceptsWsPath(path: string): boolean
  openSession(peer: WsPeer, path: string): WsSession
}

export const json = (status: number, body: unknown, headers?: Readonly<Record<string, string>>): RawResponse => ({
  status,
  body: JSON.stringify(body),
  contentType: "application/json;charset=UTF-8",
  ...(headers === undefined ? {} : { headers })
})

/** Integer query parameter; undefined when absent or malformed. */
export const intParam = (params: URLSearchParams, name: string): number | undefined => {
  const raw = params.get(name)
  if (raw === null || raw.trim() === "") return undefined
  const value = Number(raw)
  return Number.isFinite(value) ? Math.trunc(value) : undefined
}

export const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value))

export const parseJsonObject = (text: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

export const stringArray = (value: unknown): string[] | undefined =>
  Array.isArray(value) && value.every((v): v is string => typeof v === "string") ? value : undefined
