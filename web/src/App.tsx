import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react"
import { ApiKeyPrompt } from "./components/ApiKeyPrompt.js"
import { CandlesChart } from "./components/CandlesChart.js"
import { ConnectionStatus } from "./components/ConnectionStatus.js"
import { OrderBook } from "./components/OrderBook.js"
import { PriceHeader } from "./components/PriceHeader.js"
import { SymbolPicker } from "./components/SymbolPicker.js"
import { Trades } from "./components/Trades.js"
import { Watchlist } from "./components/Watchlist.js"
import { ApiError, makeApi, storeApiKey, storedApiKey } from "./lib/api.js"
import { olderPageSince } from "./lib/candles.js"
import {
  defaultWatchlist,
  marketKey,
  type MarketRef,
  parseViewQuery,
  parseWatchlist,
  resolveView,
  sameMarket,
  seriesKey,
  type View,
  viewQuery
} from "./lib/market.js"
import { freshness, initialState, reducer } from "./lib/streamState.js"
import type { ExchangeInfo, MarketInfo } from "./lib/types.js"
import { MuxClient, type Socket, type SocketHandlers, streamUrl, type Subscription } from "./lib/wsClient.js"

const HISTORY_CANDLES = 300
const OLDER_PAGE = 300
const BOOK_DEPTH = 20
const TICKER_REFRESH_MS = 30_000
const WATCHLIST_STORAGE = "mcds.watchlist"

const storage = (): Storage | undefined => {
  try {
    return window.localStorage
  } catch {
    return undefined
  }
}

const browserSocket = (url: string, handlers: SocketHandlers): Socket => {
  const ws = new WebSocket(url)
  let closed = false
  const close = () => {
    if (closed) return
    closed = true
    handlers.onClose()
  }
  ws.onopen = () => handlers.onOpen()
  ws.onmessage = (event) => {
    if (typeof event.data === "string") handlers.onMessage(event.data)
  }
  ws.onclose = close
  ws.onerror = close
  return {
    get isOpen() {
      return ws.readyState === WebSocket.OPEN
    },
    send: (text) => ws.send(text),
    close: (code, reason) => ws.close(code, reason)
  }
}

type KeyPrompt = "none" | "ask" | "rejected"

/** A labelled select; empty (and disabled) until its value is known. */
const Choice = (props: {
  readonly label: string
  readonly testId: string
  readonly value: string | undefined
  readonly options: ReadonlyArray<readonly [value: string, label: string]>
  readonly onChange: (value: string) => void
}) => (
  <label className="field">
    <span>{props.label}</span>
    <select
      data-testid={props.testId}
      value={props.value ?? ""}
      disabled={props.value === undefined}
      onChange={(e) => props.onChange(e.target.value)}
    >
      {props.value === undefined && <option value="">…</option>}
      {props.options.map(([value, label]) => (
        <option key={value} value={value}>
          {label}
        </option>
      ))}
    </select>
  </label>
)

export const App = () => {
  const [apiKey, setApiKey] = useState<string | null>(() => storedApiKey(storage()))
  const [keyPrompt, setKeyPrompt] = useState<KeyPrompt>("none")
  const api = useMemo(() => makeApi(apiKey), [apiKey])
  const [exchanges, setExchanges] = useState<ReadonlyArray<ExchangeInfo> | null>(null)
  const [problem, setProblem] = useState<string | null>(null)
  const [view, setView] = useState<View | null>(null)
  const [listing, setListing] = useState<MarketInfo | null>(null)
  const [state, dispatch] = useReducer(reducer, initialState)
  const [watchlist, setWatchlist] = useState<ReadonlyArray<MarketRef> | null>(() =>
    parseWatchlist(storage()?.getItem(WATCHLIST_STORAGE) ?? null)
  )
  const [now, setNow] = useState(() => Date.now())
  const [older, setOlder] = useState<{ readonly loading: boolean; readonly done: ReadonlySet<string> }>({
    loading: false,
    done: new Set()
  })

  const failed = useCallback(
    (error: unknown) => {
      if (error instanceof ApiError && error.status === 401) {
        setKeyPrompt(apiKey === null ? "ask" : "rejected")
        return
      }
      setProblem(error instanceof Error ? error.message : String(error))
    },
    [apiKey]
  )

  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), 2000)
    return () => window.clearInterval(timer)
  }, [])

  useEffect(() => {
    let cancelled = false
    api
      .exchanges()
      .then((list) => {
        if (!cancelled) setExchanges(list)
      })
      .catch((error: unknown) => {
        if (!cancelled) failed(error)
      })
    return () => {
      cancelled = true
    }
  }, [api, failed])

  const navigate = useCallback(
    (asked: Partial<View>, history: "push" | "replace") => {
      if (exchanges === null) return
      resolveView(exchanges, asked, api.markets)
        .then((resolved) => {
          if (resolved === undefined) {
            setProblem("The exchange lists no markets")
            return
          }
          setProblem(null)
          setListing(resolved.market)
          setView(resolved.view)
          const url = `${window.location.pathname}${viewQuery(resolved.view)}`
          if (history === "push") window.history.pushState(null, "", url)
          else window.history.replaceState(null, "", url)
        })
        .catch(failed)
    },
    [api, exchanges, failed]
  )

  useEffect(() => {
    navigate(parseViewQuery(window.location.search), "replace")
    const onPop = () => navigate(parseViewQuery(window.location.search), "replace")
    window.addEventListener("popstate", onPop)
    return () => window.removeEventListener("popstate", onPop)
  }, [navigate])

  // the default watchlist follows the first view until the user edits it
  useEffect(() => {
    if (view === null || watchlist !== null) return
    let cancelled = false
    const quote = view.symbol.split("/")[1]
    api
      .markets(view.exchange, { ...(quote === undefined ? {} : { quote }), limit: 1000 })
      .then((list) => {
        if (!cancelled)
          setWatchlist(
            defaultWatchlist(
              view,
              list.markets.map((m) => m.symbol)
            )
          )
      })
      .catch(() => undefined)
    return () => {
      cancelled = true
    }
  }, [api, view, watchlist])

  const editWatchlist = (next: ReadonlyArray<MarketRef>) => {
    setWatchlist(next)
    storage()?.setItem(WATCHLIST_STORAGE, JSON.stringify(next))
  }

  // one multiplexed connection for everything on the page
  const client = useRef<MuxClient | null>(null)
  const subscriptions = useMemo((): ReadonlyArray<Subscription> => {
    if (view === null) return []
    const main: ReadonlyArray<Subscription> = [
      { channel: "ticker", exchange: view.exchange, symbol: view.symbol, threshold: 0 },
      { channel: "orderbook", exchange: view.exchange, symbol: view.symbol, depth: BOOK_DEPTH },
      { channel: "trades", exchange: view.exchange, symbol: view.symbol },
      { channel: "ohlcv", exchange: view.exchange, symbol: view.symbol, interval: view.interval }
    ]
    const watched = (watchlist ?? [])
      .filter((m) => !sameMarket(m, view))
      .map((m): Subscription => ({ channel: "ticker", exchange: m.exchange, symbol: m.symbol, threshold: 0 }))
    return [...main, ...watched]
  }, [view, watchlist])
  const subscriptionsRef = useRef(subscriptions)
  subscriptionsRef.current = subscriptions

  useEffect(() => {
    if (keyPrompt !== "none") return
    const mux = new MuxClient({
      url: streamUrl(window.location, apiKey),
      connect: browserSocket,
      onEvent: (event) => dispatch({ type: "event", event, at: Date.now() }),
      onState: (connection, attempt) => dispatch({ type: "connection", state: connection, attempt })
    })
    client.current = mux
    mux.setSubscriptions(subscriptionsRef.current)
    mux.start()
    return () => {
      mux.stop()
      client.current = null
    }
  }, [apiKey, keyPrompt])

  useEffect(() => {
    client.current?.setSubscriptions(subscriptions)
  }, [subscriptions])

  // REST snapshots: candle history, recent trades, and the 24 h statistics the stream does not carry
  useEffect(() => {
    if (view === null) return
    let cancelled = false
    api
      .ohlcv(view.exchange, view.symbol, view.interval, HISTORY_CANDLES)
      .then((candles) => {
        if (!cancelled) dispatch({ type: "candles", market: view, interval: view.interval, candles })
      })
      .catch(failed)
    api
      .trades(view.exchange, view.symbol, 30)
      .then((trades) => {
        if (!cancelled) dispatch({ type: "trades-snapshot", market: view, trades })
      })
      .catch(() => undefined)
    return () => {
      cancelled = true
    }
  }, [api, view, failed])

  const watchKeys = (watchlist ?? []).map(marketKey).join(",")
  useEffect(() => {
    if (view === null) return
    const markets = [view, ...(watchlist ?? []).filter((m) => !sameMarket(m, view))]
    const refresh = () => {
      for (const m of markets) {
        api
          .ticker(m.exchange, m.symbol)
          .then((ticker) => dispatch({ type: "ticker-snapshot", ticker, at: Date.now() }))
          .catch(() => undefined)
      }
    }
    refresh()
    const timer = window.setInterval(refresh, TICKER_REFRESH_MS)
    return () => window.clearInterval(timer)
    // watchKeys stands for the watchlist's content, so a new array with the same markets does not refetch
  }, [api, view, watchKeys])

  const key = view === null ? null : seriesKey(view, view.interval)
  const candles = useMemo(() => (key === null ? [] : (state.series[key] ?? [])), [key, state.series])

  const loadOlder = useCallback(() => {
    const oldest = candles[0]
    if (view === null || key === null || oldest === undefined || older.loading || older.done.has(key)) return
    const since = olderPageSince(oldest.timestamp, view.interval, OLDER_PAGE)
    if (since === null) return
    setOlder((o) => ({ ...o, loading: true }))
    api
      .ohlcv(view.exchange, view.symbol, view.interval, OLDER_PAGE, since)
      .then((page) => {
        const earlier = page.filter((c) => c.timestamp < oldest.timestamp)
        dispatch({ type: "candles", market: view, interval: view.interval, candles: earlier })
        setOlder((o) => ({ loading: false, done: earlier.length === 0 ? new Set([...o.done, key]) : o.done }))
      })
      .catch(() => setOlder((o) => ({ loading: false, done: new Set([...o.done, key]) })))
  }, [api, view, key, candles, older])

  const market = view === null ? undefined : state.markets[marketKey(view)]
  const status = freshness(state, market, now)
  const stale = status !== "live"
  const exchange = exchanges?.find((e) => e.id === view?.exchange)
  const tick = listing?.precision.price ?? null
  const step = listing?.precision.amount ?? null
  const watching = view !== null && (watchlist ?? []).some((m) => sameMarket(m, view))

  const saveKey = (next: string) => {
    const store = storage()
    if (store !== undefined) storeApiKey(store, next)
    setKeyPrompt("none")
    setApiKey(next)
  }

  return (
    <div className="app">
      <header className="toolbar">
        <a className="brand" href="/docs" title="API documentation">
          <span className="logo" aria-hidden="true" />
          Markets
        </a>
        <Choice
          label="Exchange"
          testId="exchange-select"
          value={view?.exchange}
          options={(exchanges ?? []).map((e) => [e.id, e.name] as const)}
          onChange={(id) =>
            navigate(
              { exchange: id, ...(view === null ? {} : { symbol: view.symbol, interval: view.interval }) },
              "push"
            )
          }
        />
        <label className="field symbol-field">
          <span>Symbol</span>
          <SymbolPicker
            api={api}
            exchange={view?.exchange ?? ""}
            symbol={view?.symbol ?? ""}
            onSelect={(symbol) => view !== null && navigate({ ...view, symbol }, "push")}
          />
        </label>
        <Choice
          label="Interval"
          testId="interval-select"
          value={view?.interval}
          options={(exchange?.intervals ?? []).map((i) => [i, i] as const)}
          onChange={(interval) => view !== null && navigate({ ...view, interval }, "push")}
        />
        <ConnectionStatus
          state={status}
          detail={
            state.connection !== "live"
              ? `connection ${state.connection}${state.attempt > 0 ? `, attempt ${state.attempt}` : ""}`
              : (market?.upstreamReason ?? "streaming")
          }
        />
      </header>

      {view !== null && (
        <Watchlist
          items={watchlist ?? []}
          markets={state.markets}
          current={view}
          onSelect={(m) => navigate({ ...m, interval: view.interval }, "push")}
          onRemove={(m) => editWatchlist((watchlist ?? []).filter((w) => !sameMarket(w, m)))}
          onToggleCurrent={() =>
            editWatchlist(
              watching
                ? (watchlist ?? []).filter((w) => !sameMarket(w, view))
                : [...(watchlist ?? []), { exchange: view.exchange, symbol: view.symbol }]
            )
          }
          watchingCurrent={watching}
        />
      )}

      {problem !== null && (
        <div className="problem" role="alert">
          {problem}
        </div>
      )}
      {market?.error != null && (
        <div className="problem" role="alert">
          {market.error}
        </div>
      )}

      <main className="layout">
        <PriceHeader symbol={view?.symbol ?? "—"} market={market} tick={tick} stale={stale} />
        <CandlesChart
          view={key ?? ""}
          candles={candles}
          tick={tick}
          loading={older.loading || (view !== null && candles.length === 0)}
          onNeedOlder={loadOlder}
        />
        <OrderBook market={market} tick={tick} step={step} stale={stale} />
        <Trades market={market} tick={tick} step={step} stale={stale} />
      </main>

      <footer className="footer">
        <span>
          Data from this server&apos;s <a href="/docs">REST API</a> and <code>/ws</code> stream.
        </span>
        <span>
          Charts by{" "}
          <a href="https://www.tradingview.com/" rel="noreferrer" target="_blank">
            TradingView Lightweight Charts
          </a>
        </span>
      </footer>

      {keyPrompt !== "none" && <ApiKeyPrompt rejected={keyPrompt === "rejected"} onSubmit={saveKey} />}
    </div>
  )
}
