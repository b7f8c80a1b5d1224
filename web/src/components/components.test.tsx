// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react"
import { afterEach, describe, expect, it, vi } from "vitest"
import type { Api } from "../lib/api.js"
import { emptyMarket, type MarketState } from "../lib/streamState.js"
import type { MarketList, Trade } from "../lib/types.js"
import { ConnectionStatus } from "./ConnectionStatus.js"
import { BOOK_LEVELS, OrderBook } from "./OrderBook.js"
import { PriceHeader } from "./PriceHeader.js"
import { SymbolPicker } from "./SymbolPicker.js"
import { TAPE_ROWS, Trades } from "./Trades.js"

afterEach(cleanup)

const market = (patch: Partial<MarketState>): MarketState => ({ ...emptyMarket, ...patch })

const stats = {
  exchange: "kraken",
  symbol: "BTC/USD",
  bid: null,
  ask: null,
  last: 100,
  timestamp: null,
  high: 43_210.5,
  low: 41_000,
  open: 42_000,
  baseVolume: 1234.5,
  quoteVolume: null,
  change: null,
  percentage: null
}

describe("price header", () => {
  it("shows the live price at the market's precision, its 24 h change and the quote", () => {
    render(
      <PriceHeader
        symbol="BTC/USD"
        tick={0.1}
        stale={false}
        market={market({ ticker: { bid: 42_099.9, ask: 42_100.1, last: 42_100, timestamp: 1 }, stats, tick: "up" })}
      />
    )
    const last = screen.getByTestId("last-price")
    expect(last.textContent).toBe("42,100.0")
    expect(last.className).toBe("last-price flash-up")
    expect(last.dataset["value"]).toBe("42100")
    expect(screen.getByTestId("day-change").textContent).toBe("+100.0 (+0.24%)")
    expect(screen.getByTestId("day-change").className).toBe("change up")
    const text = screen.getByLabelText("Price").textContent ?? ""
    expect(text).toContain("Bid42,099.9")
    expect(text).toContain("Ask42,100.1")
    expect(text).toContain("Spread0.2 (0.05 bp)")
    expect(text).toContain("24h high43,210.5")
    expect(text).toContain("24h vol BTC1,235")
  })

  it("shows dashes before any data and dims stale data", () => {
    render(<PriceHeader symbol="ETH/USD" tick={null} stale market={undefined} />)
    expect(screen.getByTestId("last-price").textContent).toBe("—")
    expect(screen.getByLabelText("Price").className).toBe("price-header is-stale")
  })
})

describe("order book", () => {
  it("keeps a fixed number of rows and draws depth bars against the largest level", () => {
    const book = {
      bids: [
        { price: 99, amount: 2 },
        { price: 98, amount: 4 }
      ],
      asks: [
        { price: 101, amount: 1 },
        { price: 102, amount: 3 }
      ]
    }
    render(<OrderBook market={market({ book })} tick={1} step={0.01} stale={false} />)
    const panel = screen.getByTestId("orderbook")
    const asks = panel.querySelectorAll(".asks .book-row")
    const bids = panel.querySelectorAll(".bids .book-row")
    expect(asks).toHaveLength(BOOK_LEVELS)
    expect(bids).toHaveLength(BOOK_LEVELS)
    // asks read upwards from the best one next to the spread
    const filledAsks = [...panel.querySelectorAll(".asks .book-row:not(.empty) .price")].map((e) => e.textContent)
    expect(filledAsks).toEqual(["102", "101"])
    const bars = [...panel.querySelectorAll<HTMLElement>(".bids .depth")].map((e) => e.style.width)
    expect(bars).toEqual(["50%", "100%"])
    expect(panel.querySelector(".book-mid")?.textContent).toBe("spread 2")
    expect(panel.dataset["bestBid"]).toBe("99")
  })
})

describe("trades tape", () => {
  it("lists the newest trades first, coloured by side, at most a screenful", () => {
    const trades: ReadonlyArray<Trade> = Array.from({ length: 40 }, (_, i) => ({
      trade_id: String(40 - i),
      timestamp: Date.UTC(2024, 0, 1, 12, 0, 40 - i),
      price: 100 + i,
      amount: 0.5,
      side: i % 2 === 0 ? "buy" : "sell"
    }))
    render(<Trades market={market({ trades })} tick={1} step={0.1} stale={false} />)
    const rows = screen.getByTestId("trades").querySelectorAll(".trade-row")
    expect(rows).toHaveLength(TAPE_ROWS)
    expect(rows[0]?.className).toBe("trade-row buy")
    expect(rows[1]?.className).toBe("trade-row sell")
    expect(rows[0]?.textContent).toBe("1000.512:00:40")
  })
})

describe("connection status", () => {
  it("says the state in words", () => {
    render(<ConnectionStatus state="reconnecting" detail="connection reconnecting, attempt 2" />)
    const status = screen.getByTestId("connection-status")
    expect(status.textContent).toBe("reconnecting")
    expect(status.title).toBe("connection reconnecting, attempt 2")
  })
})

describe("symbol picker", () => {
  it("asks the server for matching symbols as one types and opens the picked one", async () => {
    vi.useFakeTimers()
    try {
      const calls: Array<unknown> = []
      const markets = async (exchange: string, params: { q?: string; limit?: number } = {}): Promise<MarketList> => {
        calls.push({ exchange, ...params })
        const all = ["BTC/USD", "ETH/USD", "ETH/BTC"].filter((s) => params.q === undefined || s.includes(params.q))
        return {
          exchange,
          total: all.length + (params.q === undefined ? 2000 : 0),
          markets: all.map((symbol) => ({
            symbol,
            base: symbol.split("/")[0] ?? "",
            quote: symbol.split("/")[1] ?? "",
            active: true,
            precision: { price: 0.1, amount: 0.0001 }
          }))
        }
      }
      const api = { markets } as unknown as Api
      const picked: Array<string> = []
      render(<SymbolPicker api={api} exchange="kraken" symbol="BTC/USD" onSelect={(s) => picked.push(s)} />)
      const box = screen.getByTestId("symbol-select") as HTMLInputElement
      expect(box.value).toBe("BTC/USD")
      fireEvent.focus(box)
      await act(() => vi.advanceTimersByTimeAsync(0))
      expect(screen.getAllByRole("option").map((o) => o.textContent)).toEqual(["BTC/USD", "ETH/USD", "ETH/BTC"])
      expect(screen.getByText("2000 more: type to narrow down")).toBeTruthy()
      fireEvent.change(box, { target: { value: "eth usd" } })
      await act(() => vi.advanceTimersByTimeAsync(200))
      expect(calls.at(-1)).toEqual({ exchange: "kraken", q: "ETHUSD", limit: 50 })
      fireEvent.change(box, { target: { value: "eth/u" } })
      await act(() => vi.advanceTimersByTimeAsync(200))
      expect(screen.getAllByRole("option").map((o) => o.textContent)).toEqual(["ETH/USD"])
      fireEvent.keyDown(box, { key: "Enter" })
      expect(picked).toEqual(["ETH/USD"])
    } finally {
      vi.useRealTimers()
    }
  })
})
