/** Identity of a market and of a view (exchange, symbol, interval), and the view's place in the URL. */

export interface MarketRef {
  readonly exchange: string
  readonly symbol: string
}

export interface View extends MarketRef {
  readonly interval: string
}

export const marketKey = (m: MarketRef): string => `${m.exchange}|${m.symbol}`

export const seriesKey = (m: MarketRef, interval: string): string => `${marketKey(m)}|${interval}`

export const sameMarket = (a: MarketRef, b: MarketRef): boolean => a.exchange === b.exchange && a.symbol === b.symbol

/** What the query string asks for; each part may be missing. */
export const parseViewQuery = (search: string): Partial<View> => {
  const params = new URLSearchParams(search)
  const pick = (name: string, pattern: RegExp): string | undefined => {
    const value = params.get(name)?.trim()
    return value !== undefined && pattern.test(value) ? value : undefined
  }
  const exchange = pick("exchange", /^[a-z0-9]{1,32}$/)
  const symbol = pick("symbol", /^[A-Za-z0-9._:/-]{1,64}$/)
  const interval = pick("interval", /^[0-9]{1,4}[smhdwyM]$/)
  return {
    ...(exchange === undefined ? {} : { exchange }),
    ...(symbol === undefined ? {} : { symbol: symbol.toUpperCase() }),
    ...(interval === undefined ? {} : { interval })
  }
}

/** `?exchange=kraken&symbol=BTC/USD&interval=5m`, with the slash of the symbol left readable. */
export const viewQuery = (view: View): string => {
  const part = (value: string) => encodeURIComponent(value).replace(/%2F/gi, "/")
  return `?exchange=${part(view.exchange)}&symbol=${part(view.symbol)}&interval=${part(view.interval)}`
}

const PREFERRED_QUOTES = ["USDT", "USD", "USDC", "EUR", "BTC"]

/** The market a view opens on when the URL names none: BTC against the most common quote, else the first. */
export const defaultSymbol = (symbols: ReadonlyArray<string>): string | undefined => {
  for (const quote of PREFERRED_QUOTES) {
    const candidate = `BTC/${quote}`
    if (symbols.includes(candidate)) return candidate
  }
  return symbols[0]
}

/** The interval a view opens on: the asked one if the exchange has it, else 1m, else its first. */
export const pickInterval = (intervals: ReadonlyArray<string>, asked: string | undefined): string | undefined => {
  if (asked !== undefined && intervals.includes(asked)) return asked
  if (intervals.includes("1m")) return "1m"
  return intervals[0]
}

/** The default watchlist: the main assets against the view's quote on its exchange, the view's market first. */
export const defaultWatchlist = (view: MarketRef, symbols: ReadonlyArray<string>): ReadonlyArray<MarketRef> => {
  const quote = view.symbol.split("/")[1] ?? "USDT"
  const wanted = [view.symbol, ...["BTC", "ETH", "SOL", "XRP", "ADA"].map((base) => `${base}/${quote}`)]
  const seen = new Set<string>()
  const list: Array<MarketRef> = []
  for (const symbol of wanted) {
    if (seen.has(symbol) || (symbol !== view.symbol && !symbols.includes(symbol))) continue
    seen.add(symbol)
    list.push({ exchange: view.exchange, symbol })
  }
  return list.slice(0, 5)
}

/** What the symbol box sends as `q`: the characters the API accepts in a filter, at most 40, upper case. */
export const searchTerm = (text: string): string =>
  text
    .toUpperCase()
    .replace(/[^A-Z0-9./:_-]/g, "")
    .slice(0, 40)

/** Parses a stored watchlist, dropping anything that is not a list of {exchange, symbol}. */
export const parseWatchlist = (text: string | null): ReadonlyArray<MarketRef> | null => {
  if (text === null) return null
  try {
    const value: unknown = JSON.parse(text)
    if (!Array.isArray(value)) return null
    return value.flatMap((item: unknown) =>
      typeof item === "object" &&
      item !== null &&
      "exchange" in item &&
      "symbol" in item &&
      typeof item.exchange === "string" &&
      typeof item.symbol === "string"
        ? [{ exchange: item.exchange, symbol: item.symbol }]
        : []
    )
  } catch {
    return null
  }
}

interface ExchangeIntervals {
  readonly id: string
  readonly intervals: ReadonlyArray<string>
}

interface SymbolLookup<M extends { readonly symbol: string }> {
  (exchange: string, params: { q?: string; limit?: number }): Promise<{ readonly markets: ReadonlyArray<M> }>
}

/**
 * The view the page shows for what the URL (or a click) asks: an enabled exchange (else the first), a symbol it
 * lists (else BTC against a common quote, else its first market) and one of its intervals (else 1m). Returns the
 * market's listing too, for its precision. Undefined when the exchange lists no market at all.
 */
export const resolveView = async <M extends { readonly symbol: string }>(
  exchanges: ReadonlyArray<ExchangeIntervals>,
  asked: Partial<View>,
  markets: SymbolLookup<M>
): Promise<{ readonly view: View; readonly market: M } | undefined> => {
  const exchange = exchanges.find((e) => e.id === asked.exchange) ?? exchanges[0]
  if (exchange === undefined) return undefined
  const interval = pickInterval(exchange.intervals, asked.interval) ?? "1m"
  const found = async (q: string, limit: number, pick: (list: ReadonlyArray<M>) => M | undefined) =>
    pick((await markets(exchange.id, { ...(q === "" ? {} : { q }), limit })).markets)
  const market =
    (asked.symbol === undefined
      ? undefined
      : await found(searchTerm(asked.symbol), 100, (list) => list.find((m) => m.symbol === asked.symbol))) ??
    (await found("BTC", 1000, (list) => {
      const symbol = defaultSymbol(list.map((m) => m.symbol))
      return list.find((m) => m.symbol === symbol)
    })) ??
    (await found("", 1, (list) => list[0]))
  return market === undefined ? undefined : { view: { exchange: exchange.id, symbol: market.symbol, interval }, market }
}
