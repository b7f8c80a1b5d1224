/**
 * Exchange emulator: a deterministic simulated market that speaks the public REST and WebSocket protocols of
 * binance (spot), kraken and coinbaseexchange on one local port, closely enough for unmodified ccxt / ccxt.pro.
 */

import type { FaultSpec } from "./faults.js"
import { EMULATED_EXCHANGES, type EmulatedExchange } from "./markets.js"
import type { MarketModel } from "./model.js"
import { EmulatorServer } from "./server.js"

export type { FaultKind, FaultSpec } from "./faults.js"
export { FAULT_KINDS } from "./faults.js"
export { EMULATED_EXCHANGES, MARKETS, type EmulatedExchange, type MarketSpec } from "./markets.js"
export type { Candle, IntervalSpec, MarketModel, ModelTrade, OrderBookSnapshot, Ticker24h } from "./model.js"

export interface EmulatorOptions {
  /** default 42 */
  seed?: number
  /** default 0 (a free port) */
  port?: number
  /** default "127.0.0.1" */
  host?: string
  /** ms epoch of the model clock at start; default Date.UTC(2024, 0, 1). The simulated markets open one year earlier. */
  startTime?: number
  /** live: model time advances with real time from startTime; frozen: only setTime/advance move it. Default "live". */
  clock?: "live" | "frozen"
  /** how often WS pushes updates, default 250 */
  wsPushIntervalMs?: number
}

export interface Emulator {
  readonly port: number
  /** http://127.0.0.1:PORT */
  readonly url: string
  /** http://127.0.0.1:PORT/<exchange> */
  apiBase(exchange: EmulatedExchange): string
  /** ws://127.0.0.1:PORT/<exchange> */
  wsBase(exchange: EmulatedExchange): string
  /** EXCHANGE_API_BASE_<ID> and EXCHANGE_WS_BASE_<ID> for every emulated exchange. */
  env(): Record<string, string>
  /** Read access to the deterministic state. */
  readonly model: MarketModel
  now(): number
  setTime(ms: number): void
  advance(ms: number): void
  inject(fault: FaultSpec): void
  clearFaults(): void
  /** endpoint = path without the exchange prefix, e.g. "/api/v3/ticker/24hr" */
  requestCount(exchange?: EmulatedExchange, endpoint?: string): number
  /** Live subscriptions (one per stream/channel and symbol). */
  wsSubscriptions(exchange?: EmulatedExchange): number
  resetCounts(): void
  close(): Promise<void>
}

export const DEFAULT_SEED = 42
export const DEFAULT_START_TIME = Date.UTC(2024, 0, 1)

/** The host clients should dial: wildcard binds are reached over loopback, IPv6 literals need brackets. */
const dialHost = (host: string): string => {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1"
  if (host === "::") return "[::1]"
  return host.includes(":") ? `[${host}]` : host
}

export const startEmulator = async (options: EmulatorOptions = {}): Promise<Emulator> => {
  const host = options.host ?? "127.0.0.1"
  const server = new EmulatorServer({
    seed: options.seed ?? DEFAULT_SEED,
    port: options.port ?? 0,
    host,
    startTime: options.startTime ?? DEFAULT_START_TIME,
    clock: options.clock ?? "live",
    wsPushIntervalMs: options.wsPushIntervalMs ?? 250
  })
  await server.start()
  const origin = `${dialHost(host)}:${server.port}`
  const url = `http://${origin}`
  const apiBase = (exchange: EmulatedExchange) => `${url}/${exchange}`
  const wsBase = (exchange: EmulatedExchange) => `ws://${origin}/${exchange}`
  let closing: Promise<void> | undefined
  return {
    port: server.port,
    url,
    apiBase,
    wsBase,
    env: () =>
      Object.fromEntries(
        EMULATED_EXCHANGES.flatMap((exchange) => [
          [`EXCHANGE_API_BASE_${exchange.toUpperCase()}`, apiBase(exchange)],
          [`EXCHANGE_WS_BASE_${exchange.toUpperCase()}`, wsBase(exchange)]
        ])
      ),
    model: server.model,
    now: () => server.clock.now(),
    setTime: (ms) => server.clock.setTime(ms),
    advance: (ms) => server.clock.advance(ms),
    inject: (fault) => server.inject(fault),
    clearFaults: () => server.faults.clear(),
    requestCount: (exchange, endpoint) => server.requestCount(exchange, endpoint),
    wsSubscriptions: (exchange) => server.wsSubscriptions(exchange),
    resetCounts: () => server.resetCounts(),
    close: () => {
      closing ??= server.close()
      return closing
    }
  }
}
