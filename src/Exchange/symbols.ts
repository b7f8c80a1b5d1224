import { UnknownExchange } from "../Domain/Errors.js"

/** Ids ccxt removed, mapped to their replacement (a Map: client-given names must never reach Object.prototype). */
export const EXCHANGE_ALIASES: ReadonlyMap<string, string> = new Map([["coinbasepro", "coinbaseexchange"]])

export const canonicalExchangeId = (raw: string): string => {
  const id = raw.trim().toLowerCase()
  return EXCHANGE_ALIASES.get(id) ?? id
}

/** ccxt ids are short lowercase alphanumerics; anything else cannot be one, so ccxt need not be imported to reject it. */
export const isPlausibleExchangeId = (id: string): boolean => /^[a-z0-9]{2,40}$/.test(id)

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
export const editDistance = (a: string, b: string): number => {
  if (a === b) return 0
  if (a.length === 0) return b.length
  if (b.length === 0) return a.length
  const width = b.length + 1
  const d = new Array<number>((a.length + 1) * width).fill(0)
  const at = (i: number, j: number): number => d[i * width + j] ?? 0
  for (let i = 0; i <= a.length; i++) d[i * width] = i
  for (let j = 0; j <= b.length; j++) d[j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      d[i * width + j] = best
    }
  }
  return at(a.length, b.length)
}

const maxDistance = (input: string): number => (input.length <= 4 ? 1 : input.length <= 8 ? 2 : 3)

/** How close `candidate` is to `input`; undefined when it is too far to be worth suggesting. */
const closeness = (input: string, candidate: string): number | undefined => {
  const distance = editDistance(input, candidate)
  if (distance <= maxDistance(input)) return distance
  const prefixRelated =
    Math.min(input.length, candidate.length) >= 3 && (candidate.startsWith(input) || input.startsWith(candidate))
  return prefixRelated ? maxDistance(input) + 1 : undefined
}

const uniq = (xs: ReadonlyArray<string>): Array<string> => Array.from(new Set(xs))

/** Closest exchange ids: enabled ones first, then by distance, at most `max`. */
export const suggestExchanges = (
  input: string,
  enabled: ReadonlyArray<string>,
  known: ReadonlyArray<string>,
  max = 3
): Array<string> => {
  const needle = input.trim().toLowerCase()
  const enabledSet = new Set(enabled)
  const scored: Array<{ id: string; enabled: number; score: number }> = []
  for (const id of uniq([...enabled, ...known])) {
    if (id === needle) continue
    const score = closeness(needle, id)
    if (score !== undefined) scored.push({ id, enabled: enabledSet.has(id) ? 0 : 1, score })
  }
  scored.sort((x, y) => x.enabled - y.enabled || x.score - y.score || x.id.localeCompare(y.id))
  return scored.slice(0, max).map((s) => s.id)
}

const quoteList = (xs: ReadonlyArray<string>): string => {
  const quoted = xs.map((x) => `"${x}"`)
  return quoted.length <= 1 ? quoted.join("") : `${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}`
}

/**
 * The error for an exchange id that is not enabled. `known` is every id ccxt supports (empty when it was not worth
 * importing ccxt to find out).
 */
export const unknownExchangeError = (
  input: string,
  enabled: ReadonlyArray<string>,
  known: ReadonlyArray<string>
): UnknownExchange => {
  const raw = input.trim()
  const lower = raw.toLowerCase()
  const id = canonicalExchangeId(raw)
  const enabledList = enabled.join(", ")
  const aliasTarget = EXCHANGE_ALIASES.get(lower)
  if (aliasTarget !== undefined) {
    return new UnknownExchange({
      message:
        `Exchange "${raw}" is now called "${aliasTarget}", which is not enabled on this server. ` +
        `Add ${aliasTarget} to ENABLED_EXCHANGES to use it. Enabled exchanges: ${enabledList}`,
      exchange: raw,
      suggestions: uniq([aliasTarget, ...suggestExchanges(lower, enabled, known)]).slice(0, 3),
      enabled: [...enabled]
    })
  }
  const suggestions = suggestExchanges(lower, enabled, known)
  if (known.includes(id)) {
    return new UnknownExchange({
      message:
        `Exchange "${id}" is supported but not enabled on this server. ` +
        `Add it to ENABLED_EXCHANGES to use it. Enabled exchanges: ${enabledList}`,
      exchange: raw,
      suggestions,
      enabled: [...enabled]
    })
  }
  const hint = suggestions.length > 0 ? ` Did you mean ${quoteList(suggestions)}?` : ""
  const disabled = suggestions.filter((s) => !enabled.includes(s))
  const howToEnable =
    disabled.length === 0
      ? ""
      : ` ${quoteList(disabled)} ${disabled.length === 1 ? "is" : "are"} supported but not enabled on this server: ` +
        `add ${disabled.length === 1 ? "it" : "them"} to ENABLED_EXCHANGES to use ${disabled.length === 1 ? "it" : "them"}.`
  return new UnknownExchange({
    message: `Unknown exchange "${raw}".${hint}${howToEnable} Enabled exchanges: ${enabledList}`,
    exchange: raw,
    suggestions,
    enabled: [...enabled]
  })
}

/**
 * Canonical spelling of a user symbol: trimmed, uppercase, `BTC-USDT` / `BTC_USDT` read as `BTC/USDT`. A `:SETTLE`
 * suffix is kept as is.
 */
export const normalizeSymbol = (raw: string): string => {
  const compact = raw.replace(/\s+/g, "").toUpperCase()
  const colon = compact.indexOf(":")
  const pair = colon === -1 ? compact : compact.slice(0, colon)
  const settle = colon === -1 ? "" : compact.slice(colon)
  if (pair.includes("/")) return pair + settle
  const separators = pair.match(/[-_]/g) ?? []
  return (separators.length === 1 ? pair.replace(/[-_]/, "/") : pair) + settle
}

export interface SymbolEntry {
  readonly symbol: string
  readonly id: string
  readonly base: string
  readonly quote: string
}

/** Case-insensitive indexes over a market list, built once per markets load. */
export interface SymbolIndex {
  readonly bySymbol: ReadonlyMap<string, string>
  readonly byId: ReadonlyMap<string, string>
  readonly byCompact: ReadonlyMap<string, string>
  readonly entries: ReadonlyArray<SymbolEntry>
}

const compactOf = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9]/g, "")

export const makeSymbolIndex = (entries: ReadonlyArray<SymbolEntry>): SymbolIndex => {
  const bySymbol = new Map<string, string>()
  const byId = new Map<string, string>()
  const byCompact = new Map<string, string>()
  for (const e of entries) {
    bySymbol.set(e.symbol.toUpperCase(), e.symbol)
    if (!byId.has(e.id.toUpperCase())) byId.set(e.id.toUpperCase(), e.symbol)
    const key = compactOf(e.base + e.quote)
    const existing = byCompact.get(key)
    // a spot market (no settle suffix) wins over derivatives sharing the same base and quote
    if (existing === undefined || (existing.includes(":") && !e.symbol.includes(":"))) byCompact.set(key, e.symbol)
  }
  return { bySymbol, byId, byCompact, entries }
}

/** The listed unified symbol the user meant, if any: exact symbol, then exchange-native id, then `BTCUSDT` spelling. */
export const lookupSymbol = (index: SymbolIndex, raw: string): string | undefined => {
  const normalized = normalizeSymbol(raw)
  const direct = index.bySymbol.get(normalized) ?? index.byId.get(raw.trim().toUpperCase())
  if (direct !== undefined) return direct
  return normalized.includes("/") || normalized.includes(":") ? undefined : index.byCompact.get(compactOf(normalized))
}

/** Up to `max` listed symbols sharing the base or the quote of `raw`, closest first. */
export const suggestSymbols = (index: SymbolIndex, raw: string, max = 5): Array<string> => {
  const normalized = normalizeSymbol(raw)
  const pair = normalized.split(":")[0] ?? normalized
  const slash = pair.indexOf("/")
  const base = slash === -1 ? undefined : pair.slice(0, slash)
  const quote = slash === -1 ? undefined : pair.slice(slash + 1)
  const scored: Array<{ symbol: string; rank: number; distance: number }> = []
  for (const e of index.entries) {
    const upper = e.symbol.toUpperCase()
    if (upper === normalized) continue
    const sameBase = base !== undefined && e.base.toUpperCase() === base
    const sameQuote = quote !== undefined && e.quote.toUpperCase() === quote
    if (sameBase || sameQuote) {
      scored.push({ symbol: e.symbol, rank: sameBase && sameQuote ? 0 : 1, distance: editDistance(normalized, upper) })
      continue
    }
    const target = slash === -1 ? compactOf(normalized) : normalized
    const distance = editDistance(target, slash === -1 ? compactOf(e.base + e.quote) : upper)
    if (distance <= maxDistance(target)) scored.push({ symbol: e.symbol, rank: 2, distance })
  }
  scored.sort((x, y) => x.rank - y.rank || x.distance - y.distance || x.symbol.localeCompare(y.symbol))
  return scored.slice(0, max).map((s) => s.symbol)
}

export const symbolNotFoundMessage = (exchange: string, symbol: string, suggestions: ReadonlyArray<string>): string =>
  `Symbol "${symbol}" is not listed on ${exchange}.` +
  (suggestions.length > 0 ? ` Did you mean ${quoteList(suggestions)}?` : "")
