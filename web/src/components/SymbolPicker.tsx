import { type KeyboardEvent, useEffect, useRef, useState } from "react"
import type { Api } from "../lib/api.js"
import { searchTerm } from "../lib/market.js"
import type { MarketInfo } from "../lib/types.js"

const RESULTS = 50

/**
 * A searchable symbol box: typing asks the server for matching markets (`/v1/markets?q=`, at most 50), so an
 * exchange with thousands of symbols never renders them all.
 */
export const SymbolPicker = (props: {
  readonly api: Api
  readonly exchange: string
  readonly symbol: string
  readonly onSelect: (symbol: string) => void
}) => {
  const { api, exchange } = props
  const [open, setOpen] = useState(false)
  const [text, setText] = useState("")
  const [results, setResults] = useState<ReadonlyArray<MarketInfo>>([])
  const [total, setTotal] = useState(0)
  const [active, setActive] = useState(0)
  const input = useRef<HTMLInputElement>(null)

  useEffect(() => {
    if (!open) return
    let cancelled = false
    const query = searchTerm(text)
    const timer = window.setTimeout(
      () => {
        api
          .markets(exchange, { ...(query === "" ? {} : { q: query }), limit: RESULTS })
          .then((list) => {
            if (cancelled) return
            setResults(list.markets)
            setTotal(list.total)
            setActive(0)
          })
          .catch(() => {
            if (!cancelled) setResults([])
          })
      },
      query === "" ? 0 : 150
    )
    return () => {
      cancelled = true
      window.clearTimeout(timer)
    }
  }, [api, exchange, text, open])

  const choose = (symbol: string) => {
    setOpen(false)
    setText("")
    input.current?.blur()
    props.onSelect(symbol)
  }

  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key === "ArrowDown") setActive((i) => Math.min(i + 1, results.length - 1))
    else if (event.key === "ArrowUp") setActive((i) => Math.max(i - 1, 0))
    else if (event.key === "Enter") {
      const picked = results[active]
      if (picked !== undefined) choose(picked.symbol)
    } else if (event.key === "Escape") {
      setOpen(false)
      setText("")
      input.current?.blur()
    } else return
    event.preventDefault()
  }

  return (
    <div className="symbol-picker">
      <input
        ref={input}
        data-testid="symbol-select"
        role="combobox"
        aria-label="Symbol"
        aria-expanded={open}
        aria-controls="symbol-results"
        autoComplete="off"
        spellCheck={false}
        value={open ? text : props.symbol}
        placeholder={props.symbol}
        onFocus={() => {
          setText("")
          setOpen(true)
        }}
        onBlur={() => window.setTimeout(() => setOpen(false), 150)}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
      />
      {open && (
        <ul className="symbol-results" id="symbol-results" role="listbox">
          {results.map((market, i) => (
            <li
              key={market.symbol}
              role="option"
              aria-selected={i === active}
              data-symbol={market.symbol}
              className={i === active ? "active" : undefined}
              onMouseDown={(e) => {
                e.preventDefault()
                choose(market.symbol)
              }}
            >
              <span>{market.symbol}</span>
              {market.active === false && <span className="muted">inactive</span>}
            </li>
          ))}
          {results.length === 0 && <li className="muted">No market matches</li>}
          {total > results.length && <li className="muted">{total - results.length} more: type to narrow down</li>}
        </ul>
      )}
    </div>
  )
}
