/**
 * The raw half of the integrity gate: the body of every successful (2xx) REST answer ccxt receives must be the JSON the
 * exchange documents for that endpoint. ccxt parses an unparseable body into `undefined` and then builds empty books,
 * candle lists or tickers out of it without raising, so nothing after ccxt can tell "no data" from "broken data".
 */
import { Predicate } from "effect"

/** Thrown from inside ccxt's response handling; mapped to `bad_upstream_response` (errors.ts). */
export class IntegrityViolation extends Error {
  override readonly name = "IntegrityViolation"
  constructor(
    readonly exchange: string,
    readonly endpoint: string,
    readonly reason: string
  ) {
    super(`${exchange} ${endpoint}: ${reason}`)
  }
}

/** A problem with a value, or undefined when it is as documented. */
type Check = (value: unknown) => string | undefined

const describeValue = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
      ? "a list"
      : typeof value === "object"
        ? "an object"
        : typeof value === "string"
          ? `a string ${JSON.stringify(value.length > 24 ? `${value.slice(0, 24)}…` : value)}`
          : typeof value

const anything: Check = () => undefined

const numeric: Check = (v) =>
  (typeof v === "number" && Number.isFinite(v)) ||
  (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v)))
    ? undefined
    : `expected a number, got ${describeValue(v)}`

const text: Check = (v) => (typeof v === "string" ? undefined : `expected a string, got ${describeValue(v)}`)

const list =
  (item: Check, nonEmpty = false): Check =>
  (v) => {
    if (!Array.isArray(v)) return `expected a list, got ${describeValue(v)}`
    if (nonEmpty && v.length === 0) return "an empty list"
    for (let i = 0; i < v.length; i++) {
      const problem = item(v[i])
      if (problem !== undefined) return `[${i}]: ${problem}`
    }
    return undefined
  }

/** A list whose first `items.length` entries pass their checks (exchanges append fields over time). */
const tuple =
  (...items: ReadonlyArray<Check>): Check =>
  (v) => {
    if (!Array.isArray(v)) return `expected a list, got ${describeValue(v)}`
    if (v.length < items.length) return `expected at least ${items.length} entries, got ${v.length}`
    for (let i = 0; i < items.length; i++) {
      const problem = items[i]?.(v[i])
      if (problem !== undefined) return `[${i}]: ${problem}`
    }
    return undefined
  }

const isObject = (v: unknown): v is Readonly<Record<string, unknown>> => Predicate.isRecord(v)

const struct =
  (fields: Readonly<Record<string, Check>>): Check =>
  (v) => {
    if (!isObject(v)) return `expected an object, got ${describeValue(v)}`
    for (const [key, check] of Object.entries(fields)) {
      if (!Object.hasOwn(v, key)) return `${key}: missing`
      const problem = check(v[key])
      if (problem !== undefined) return `${key}: ${problem}`
    }
    return undefined
  }

const dict =
  (value: Check, nonEmpty = false): Check =>
  (v) => {
    if (!isObject(v)) return `expected an object, got ${describeValue(v)}`
    const entries = Object.entries(v)
    if (nonEmpty && entries.length === 0) return "an empty object"
    for (const [key, entry] of entries) {
      const problem = value(entry)
      if (problem !== undefined) return `${key}: ${problem}`
    }
    return undefined
  }

const level = tuple(numeric, numeric)
const candleRow = tuple(numeric, numeric, numeric, numeric, numeric, numeric)

/** What one endpoint documents; `params` are the request's query parameters. */
type Rule = (json: unknown, params: URLSearchParams) => string | undefined

const at =
  (check: Check): Rule =>
  (json) =>
    check(json)

// binance spot /api/v3
const binanceTicker = struct({ symbol: text, lastPrice: numeric })
const BINANCE: ReadonlyArray<readonly [string, Rule]> = [
  [
    "/api/v3/exchangeInfo",
    at(struct({ symbols: list(struct({ symbol: text, status: text, baseAsset: text, quoteAsset: text }), true) }))
  ],
  ["/api/v3/ticker/24hr", (json, params) => binanceTickers(json, params)],
  ["/api/v3/klines", at(list(candleRow))],
  ["/api/v3/depth", at(struct({ lastUpdateId: numeric, bids: list(level), asks: list(level) }))],
  ["/api/v3/aggTrades", at(list(struct({ a: numeric, p: numeric, q: numeric, T: numeric })))],
  ["/api/v3/trades", at(list(struct({ id: numeric, price: numeric, qty: numeric, time: numeric })))],
  ["/api/v3/time", at(struct({ serverTime: numeric }))]
]

/** kraken: `{"error":[],"result":…}`; per-pair answers are keyed by every pair asked for, nothing else will do. */
const krakenResult =
  (result: Check): Rule =>
  (json) =>
    struct({ error: list(anything), result })(json)

const krakenPairs =
  (entry: Check, extra: Readonly<Record<string, Check>> = {}): Rule =>
  (json, params) => {
    const pairs = (params.get("pair") ?? "").split(",").filter((p) => p !== "")
    if (pairs.length === 0) return krakenResult(dict(entry, true))(json, params)
    return krakenResult(struct({ ...Object.fromEntries(pairs.map((p) => [p, entry])), ...extra }))(json, params)
  }

const krakenTicker = struct({ a: tuple(numeric), b: tuple(numeric), c: tuple(numeric, numeric) })
const KRAKEN: ReadonlyArray<readonly [string, Rule]> = [
  ["/0/public/Assets", krakenResult(dict(struct({ altname: text }), true))],
  ["/0/public/AssetPairs", krakenResult(dict(struct({ altname: text, base: text, quote: text }), true))],
  ["/0/public/Ticker", krakenPairs(krakenTicker)],
  ["/0/public/OHLC", krakenPairs(list(tuple(numeric, numeric, numeric, numeric, numeric, numeric, numeric)))],
  ["/0/public/Depth", krakenPairs(struct({ asks: list(level), bids: list(level) }))],
  ["/0/public/Trades", krakenPairs(list(tuple(numeric, numeric, numeric)))],
  ["/0/public/Time", krakenResult(struct({ unixtime: numeric }))]
]

const COINBASE_EXCHANGE: ReadonlyArray<readonly [RegExp, Rule]> = [
  [/\/currencies$/, at(list(struct({ id: text }), true))],
  [/\/products$/, at(list(struct({ id: text, base_currency: text, quote_currency: text }), true))],
  [/\/products\/spark-lines$/, at(dict(list(tuple(numeric, numeric, numeric, numeric, numeric))))],
  [/\/products\/[^/]+\/ticker$/, at(struct({ price: numeric, time: text }))],
  [/\/products\/[^/]+\/stats$/, at(struct({ open: numeric, high: numeric, low: numeric, last: numeric }))],
  [/\/products\/[^/]+\/candles$/, at(list(candleRow))],
  [/\/products\/[^/]+\/book$/, at(struct({ bids: list(level), asks: list(level) }))],
  [/\/products\/[^/]+\/trades$/, at(list(struct({ trade_id: numeric, price: numeric, size: numeric, time: text })))],
  [/\/time$/, at(struct({ iso: text }))]
]

const ruleFor = (exchange: string, pathname: string): Rule | undefined => {
  if (exchange === "binance") return BINANCE.find(([suffix]) => pathname.endsWith(suffix))?.[1]
  if (exchange === "kraken") return KRAKEN.find(([suffix]) => pathname.endsWith(suffix))?.[1]
  if (exchange === "coinbaseexchange") return COINBASE_EXCHANGE.find(([pattern]) => pattern.test(pathname))?.[1]
  return undefined
}

/** kraken answers its own errors (rate limits, unknown pairs, maintenance) with a 200 envelope ccxt interprets. */
const carriesExchangeError = (exchange: string, json: unknown): boolean =>
  exchange === "kraken" && isObject(json) && Array.isArray(json["error"]) && json["error"].length > 0

const parseScalar = (body: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    return { ok: true, value: JSON.parse(body) as unknown }
  } catch {
    return { ok: false }
  }
}

/** `symbols=["BTCUSDT",…]` of a binance request: every one must be answered. */
const requestedBinanceSymbols = (params: URLSearchParams): ReadonlyArray<string> => {
  const raw = params.get("symbols")
  const parsed = raw === null ? { ok: false as const } : parseScalar(raw)
  return parsed.ok && Array.isArray(parsed.value) ? parsed.value.filter((s) => typeof s === "string") : []
}

const binanceTickers: Rule = (json, params) => {
  if (params.has("symbol")) return binanceTicker(json)
  const problem = list(binanceTicker)(json)
  if (problem !== undefined || !Array.isArray(json)) return problem
  const answered = new Set(json.map((t: unknown) => (isObject(t) ? t["symbol"] : undefined)))
  const missing = requestedBinanceSymbols(params).find((s) => !answered.has(s))
  return missing === undefined ? undefined : `no ticker for ${missing}`
}

/** The endpoint part of a URL, for messages: path without host and query. */
export const endpointOf = (url: string): string => {
  try {
    return new URL(url).pathname
  } catch {
    return url.split("?")[0] ?? url
  }
}

/**
 * Why a 2xx answer of `exchange` to `url` is not the JSON documented for it, or undefined when it is. `json` is ccxt's
 * parse of `body` (undefined when it is not JSON). Every exchange's body must at least be a JSON object or list;
 * binance, kraken and coinbaseexchange endpoints are checked against their documented shapes.
 */
export const violationOf = (exchange: string, url: string, body: string, json: unknown): string | undefined => {
  const trimmed = body.trim()
  if (trimmed === "") return "an empty body"
  if (json === undefined || typeof json === "string") {
    if (trimmed.startsWith("<")) return "an HTML page instead of JSON"
    // ccxt parses objects and lists only; a bare `null` or number is JSON all the same
    const scalar = parseScalar(trimmed)
    return scalar.ok
      ? `JSON ${describeValue(scalar.value)} instead of an object or a list`
      : `a body that is not valid JSON (${trimmed.length} bytes, truncated?)`
  }
  if (json === null || typeof json !== "object") return `JSON ${describeValue(json)} instead of an object or a list`
  if (carriesExchangeError(exchange, json)) return undefined
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return undefined
  }
  const rule = ruleFor(exchange, parsed.pathname)
  if (rule === undefined) return undefined
  const problem = rule(json, parsed.searchParams)
  if (problem === undefined) return undefined
  const envelope = isObject(json) && (Object.hasOwn(json, "msg") || Object.hasOwn(json, "message"))
  return envelope ? `an error envelope instead of data (${problem.slice(0, 120)})` : `unexpected shape: ${problem}`
}

/** Throws IntegrityViolation for a 2xx answer that is not the documented JSON. */
export const assertIntegrity = (exchange: string, code: number, url: string, body: string, json: unknown): void => {
  if (code < 200 || code >= 300) return
  const reason = violationOf(exchange, url, typeof body === "string" ? body : "", json)
  if (reason !== undefined) throw new IntegrityViolation(exchange, endpointOf(url), reason)
}
