/** The server's public API shapes the dashboard reads (README "REST API" and "Live streams"). */

export interface ExchangeInfo {
  readonly id: string
  readonly name: string
  readonly capabilities: {
    readonly ticker: boolean
    readonly ohlcv: boolean
    readonly orderbook: boolean
    readonly trades: boolean
    readonly websocket: boolean
  }
  readonly intervals: ReadonlyArray<string>
  readonly maxCandlesPerRequest: number
}

export interface MarketInfo {
  readonly symbol: string
  readonly base: string
  readonly quote: string
  readonly active: boolean | null
  readonly precision: { readonly price: number | null; readonly amount: number | null }
}

export interface MarketList {
  readonly exchange: string
  readonly total: number
  readonly markets: ReadonlyArray<MarketInfo>
}

export interface Ticker {
  readonly exchange: string
  readonly symbol: string
  readonly bid: number | null
  readonly ask: number | null
  readonly last: number
  readonly timestamp: number | null
  readonly high: number | null
  readonly low: number | null
  readonly open: number | null
  readonly baseVolume: number | null
  readonly quoteVolume: number | null
  readonly change: number | null
  readonly percentage: number | null
}

export interface Candle {
  readonly timestamp: number
  readonly open: number
  readonly high: number
  readonly low: number
  readonly close: number
  readonly volume: number
}

export interface BookLevel {
  readonly price: number
  readonly amount: number
}

export interface Trade {
  readonly trade_id: string | null
  readonly timestamp: number
  readonly price: number
  readonly amount: number
  readonly side: "buy" | "sell" | null
}

export type Channel = "ticker" | "trades" | "orderbook" | "ohlcv"

interface Addressed {
  readonly channel: Channel
  readonly exchange: string
  readonly symbol: string
}

/** Events of the multiplexed `/ws` (src/Streams/Protocol.ts, README "Events"). */
export type ServerEvent =
  | (Addressed & {
      readonly event_type: "ticker"
      readonly bid: number | null
      readonly ask: number | null
      readonly last: number
      readonly timestamp: number
    })
  | (Addressed & { readonly event_type: "trades"; readonly trades: ReadonlyArray<Trade>; readonly dropped: number })
  | (Addressed & {
      readonly event_type: "orderbook"
      readonly bids: ReadonlyArray<BookLevel>
      readonly asks: ReadonlyArray<BookLevel>
      readonly timestamp: number | null
    })
  | (Addressed & Candle & { readonly event_type: "ohlcv"; readonly interval: string })
  | (Addressed & {
      readonly event_type: "status"
      readonly status: "reconnecting" | "live"
      readonly interval?: string
      readonly reason?: string
      readonly attempt?: number
    })
  | { readonly event_type: "status"; readonly status: "closing"; readonly reason?: string }
  | {
      readonly event_type: "error"
      readonly code: string
      readonly message: string
      readonly channel?: Channel
      readonly exchange?: string
      readonly symbol?: string
      readonly interval?: string
      readonly op?: string
    }
  | { readonly event_type: "heartbeat"; readonly timestamp: number }
  | {
      readonly event_type: "ack"
      readonly op: string
      readonly channel?: Channel
      readonly exchange?: string
      readonly symbol?: string
      readonly interval?: string
    }
