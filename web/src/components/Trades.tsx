import { formatAmount, formatPrice, formatTime } from "../lib/format.js"
import type { MarketState } from "../lib/streamState.js"

export const TAPE_ROWS = 24

/** The trades tape, newest first; buys green, sells red. */
export const Trades = (props: {
  readonly market: MarketState | undefined
  readonly tick: number | null
  readonly step: number | null
  readonly stale: boolean
}) => {
  const trades = (props.market?.trades ?? []).slice(0, TAPE_ROWS)
  return (
    <section
      className={`panel trades${props.stale ? " is-stale" : ""}`}
      data-testid="trades"
      data-newest={trades[0]?.trade_id ?? trades[0]?.timestamp ?? ""}
      aria-label="Trades"
    >
      <header className="panel-title">
        <h2>Trades</h2>
        <span className="cols">
          <span>Price</span>
          <span>Amount</span>
          <span>Time (UTC)</span>
        </span>
      </header>
      <div className="tape">
        {trades.map((t, i) => (
          <div className={`trade-row ${t.side ?? "unknown"}`} key={t.trade_id ?? `${t.timestamp}-${i}`}>
            <span className="price">{formatPrice(t.price, props.tick)}</span>
            <span className="amount">{formatAmount(t.amount, props.step)}</span>
            <span className="time">{formatTime(t.timestamp)}</span>
          </div>
        ))}
        {trades.length === 0 && <div className="muted placeholder">waiting for trades…</div>}
      </div>
    </section>
  )
}
