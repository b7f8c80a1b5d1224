import { formatAmount, formatPrice } from "../lib/format.js"
import type { MarketState } from "../lib/streamState.js"
import type { BookLevel } from "../lib/types.js"

export const BOOK_LEVELS = 12

const Side = (props: {
  readonly levels: ReadonlyArray<BookLevel>
  readonly side: "bid" | "ask"
  readonly maxAmount: number
  readonly tick: number | null
  readonly step: number | null
}) => {
  // always BOOK_LEVELS rows so the panel never changes height while the book fills
  const rows = Array.from({ length: BOOK_LEVELS }, (_, i) => props.levels[i])
  const ordered = props.side === "ask" ? [...rows].reverse() : rows
  return (
    <div className={`book-side ${props.side}s`}>
      {ordered.map((level, i) =>
        level === undefined ? (
          <div className="book-row empty" key={`empty-${i}`} />
        ) : (
          <div className="book-row" key={i}>
            <span
              className="depth"
              style={{ width: `${props.maxAmount > 0 ? (level.amount / props.maxAmount) * 100 : 0}%` }}
            />
            <span className="price">{formatPrice(level.price, props.tick)}</span>
            <span className="amount">{formatAmount(level.amount, props.step)}</span>
          </div>
        )
      )}
    </div>
  )
}

/** Top of the book: asks above (best at the bottom), bids below, depth bars by size. */
export const OrderBook = (props: {
  readonly market: MarketState | undefined
  readonly tick: number | null
  readonly step: number | null
  readonly stale: boolean
}) => {
  const book = props.market?.book ?? null
  const bids = book?.bids.slice(0, BOOK_LEVELS) ?? []
  const asks = book?.asks.slice(0, BOOK_LEVELS) ?? []
  const maxAmount = Math.max(0, ...bids.map((l) => l.amount), ...asks.map((l) => l.amount))
  const bestBid = bids[0]?.price
  const bestAsk = asks[0]?.price
  return (
    <section
      className={`panel orderbook${props.stale ? " is-stale" : ""}`}
      data-testid="orderbook"
      data-best-bid={bestBid ?? ""}
      data-best-ask={bestAsk ?? ""}
      aria-label="Order book"
    >
      <header className="panel-title">
        <h2>Order book</h2>
        <span className="cols">
          <span>Price</span>
          <span>Amount</span>
        </span>
      </header>
      <Side levels={asks} side="ask" maxAmount={maxAmount} tick={props.tick} step={props.step} />
      <div className="book-mid">
        {bestBid !== undefined && bestAsk !== undefined
          ? `spread ${formatPrice(bestAsk - bestBid, props.tick)}`
          : book === null
            ? "waiting for the book…"
            : "—"}
      </div>
      <Side levels={bids} side="bid" maxAmount={maxAmount} tick={props.tick} step={props.step} />
    </section>
  )
}
