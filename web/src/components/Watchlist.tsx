import { direction, formatPercent, formatPrice } from "../lib/format.js"
import { marketKey, type MarketRef, sameMarket } from "../lib/market.js"
import { dayChange, type MarketState } from "../lib/streamState.js"

/** Tickers of several markets on the same /ws connection; a click opens the market in the main view. */
export const Watchlist = (props: {
  readonly items: ReadonlyArray<MarketRef>
  readonly markets: Readonly<Record<string, MarketState>>
  readonly current: MarketRef
  readonly onSelect: (market: MarketRef) => void
  readonly onRemove: (market: MarketRef) => void
  readonly onToggleCurrent: () => void
  readonly watchingCurrent: boolean
}) => (
  <nav className="watchlist" data-testid="watchlist" aria-label="Watchlist">
    {props.items.map((item) => {
      const m = props.markets[marketKey(item)]
      const { percentage } = m === undefined ? { percentage: null } : dayChange(m)
      const current = sameMarket(item, props.current)
      return (
        <div className={`watch-item${current ? " current" : ""}`} key={marketKey(item)}>
          <button
            type="button"
            className="watch-open"
            data-exchange={item.exchange}
            data-symbol={item.symbol}
            aria-current={current}
            onClick={() => props.onSelect(item)}
          >
            <span className="watch-symbol">{item.symbol}</span>
            <span className="watch-exchange">{item.exchange}</span>
            <span className="watch-last">{formatPrice(m?.ticker?.last ?? null)}</span>
            <span className={`watch-change ${direction(percentage)}`}>{formatPercent(percentage)}</span>
          </button>
          <button
            type="button"
            className="watch-remove"
            aria-label={`Remove ${item.symbol} on ${item.exchange}`}
            onClick={() => props.onRemove(item)}
          >
            ×
          </button>
        </div>
      )
    })}
    <button type="button" className="watch-toggle" onClick={props.onToggleCurrent}>
      {props.watchingCurrent ? "− unwatch" : "+ watch"}
    </button>
  </nav>
)
