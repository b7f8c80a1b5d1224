import { direction, formatChange, formatPercent, formatPrice, formatVolume, spreadOf } from "../lib/format.js"
import { dayChange, type MarketState } from "../lib/streamState.js"

/** Last price (flashing on change), 24 h change, bid/ask/spread and 24 h high/low/volume. */
export const PriceHeader = (props: {
  readonly symbol: string
  readonly market: MarketState | undefined
  readonly tick: number | null
  readonly stale: boolean
}) => {
  const m = props.market
  const last = m?.ticker?.last ?? null
  const { change, percentage } = m === undefined ? { change: null, percentage: null } : dayChange(m)
  const bid = m?.ticker?.bid ?? null
  const ask = m?.ticker?.ask ?? null
  const spread = spreadOf(bid, ask)
  const base = props.symbol.split("/")[0] ?? ""
  return (
    <section className={`price-header${props.stale ? " is-stale" : ""}`} aria-label="Price">
      <div className="last">
        <span className="pair">{props.symbol}</span>
        {/* the key remounts the number on every change, which replays the flash animation */}
        <span
          key={last ?? "none"}
          className={`last-price flash-${m?.tick ?? "none"}`}
          data-testid="last-price"
          data-value={last ?? ""}
        >
          {formatPrice(last, props.tick)}
        </span>
        <span className={`change ${direction(change)}`} data-testid="day-change">
          {formatChange(change, props.tick)} ({formatPercent(percentage)})
        </span>
      </div>
      <dl className="stats">
        <div>
          <dt>Bid</dt>
          <dd className="up">{formatPrice(bid, props.tick)}</dd>
        </div>
        <div>
          <dt>Ask</dt>
          <dd className="down">{formatPrice(ask, props.tick)}</dd>
        </div>
        <div>
          <dt>Spread</dt>
          <dd>
            {spread === null
              ? "—"
              : `${formatPrice(spread.spread, props.tick)} (${spread.bps.toFixed(spread.bps < 1 ? 2 : 1)} bp)`}
          </dd>
        </div>
        <div>
          <dt>24h high</dt>
          <dd>{formatPrice(m?.stats?.high ?? null, props.tick)}</dd>
        </div>
        <div>
          <dt>24h low</dt>
          <dd>{formatPrice(m?.stats?.low ?? null, props.tick)}</dd>
        </div>
        <div>
          <dt>24h vol {base}</dt>
          <dd>{formatVolume(m?.stats?.baseVolume ?? null)}</dd>
        </div>
      </dl>
    </section>
  )
}
