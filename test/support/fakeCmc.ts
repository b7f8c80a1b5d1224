/**
 * A local stand-in for CoinMarketCap's `/v1/cryptocurrency/quotes/latest` on 127.0.0.1 (random port).
 *
 * Without a script it behaves like CMC: checks `X-CMC_PRO_API_KEY` (401 with error 1002 when missing, 1001 when
 * wrong), knows BTC, ETH and SOL in USD and EUR with fixed values, leaves unknown symbols out of `data` when at least
 * one is known and answers 400 `Invalid value for "symbol"` when none is. `script(...)` queues what the next
 * requests get instead (429, 5xx, HTML, broken JSON, delays, dropped connections), one step per request.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, type Scope } from "effect"

export const FAKE_CMC_API_KEY = "fake-cmc-key-0123456789abcdef"

const TIMESTAMP = "2024-05-01T12:35:00.000Z"
export const QUOTE_LAST_UPDATED = "2024-05-01T12:34:00.000Z"

interface FixtureQuote {
  readonly price: number
  readonly volume_24h: number
  readonly volume_change_24h: number
  readonly percent_change_1h: number
  readonly percent_change_24h: number
  readonly percent_change_7d: number
  readonly market_cap: number
  readonly market_cap_dominance: number
  readonly fully_diluted_market_cap: number
}

const coin = (
  fields: {
    readonly id: number
    readonly name: string
    readonly symbol: string
    readonly slug: string
    readonly num_market_pairs: number
    readonly date_added: string
    readonly tags: ReadonlyArray<string>
    readonly max_supply: number | null
    readonly circulating_supply: number
    readonly total_supply: number
    readonly cmc_rank: number
  },
  quotes: Readonly<Record<string, FixtureQuote>>
) => ({
  id: fields.id,
  name: fields.name,
  symbol: fields.symbol,
  slug: fields.slug,
  num_market_pairs: fields.num_market_pairs,
  date_added: fields.date_added,
  tags: fields.tags,
  max_supply: fields.max_supply,
  circulating_supply: fields.circulating_supply,
  total_supply: fields.total_supply,
  is_active: 1,
  infinite_supply: fields.max_supply === null,
  platform: null,
  cmc_rank: fields.cmc_rank,
  is_fiat: 0,
  self_reported_circulating_supply: null,
  self_reported_market_cap: null,
  tvl_ratio: null,
  last_updated: QUOTE_LAST_UPDATED,
  quote: Object.fromEntries(
    Object.entries(quotes).map(([convert, q]) => [convert, { ...q, tvl: null, last_updated: QUOTE_LAST_UPDATED }])
  )
})

/** What the fake serves, keyed by symbol; EUR values are the USD ones at 0.93 EUR/USD, rounded. */
export const FAKE_CMC_COINS: Readonly<Record<string, ReturnType<typeof coin>>> = {
  BTC: coin(
    {
      id: 1,
      name: "Bitcoin",
      symbol: "BTC",
      slug: "bitcoin",
      num_market_pairs: 11021,
      date_added: "2010-07-13T00:00:00.000Z",
      tags: ["mineable", "pow", "sha-256", "store-of-value"],
      max_supply: 21000000,
      circulating_supply: 19689543,
      total_supply: 19689543,
      cmc_rank: 1
    },
    {
      USD: {
        price: 60512.34,
        volume_24h: 35123456789.12,
        volume_change_24h: 12.3456,
        percent_change_1h: -0.1234,
        percent_change_24h: 1.5678,
        percent_change_7d: -4.321,
        market_cap: 1191456789012.34,
        market_cap_dominance: 53.21,
        fully_diluted_market_cap: 1270759140000
      },
      EUR: {
        price: 56276.48,
        volume_24h: 32664814813.88,
        volume_change_24h: 12.3456,
        percent_change_1h: -0.1234,
        percent_change_24h: 1.5678,
        percent_change_7d: -4.321,
        market_cap: 1108054813781.48,
        market_cap_dominance: 53.21,
        fully_diluted_market_cap: 1181806000200
      }
    }
  ),
  ETH: coin(
    {
      id: 1027,
      name: "Ethereum",
      symbol: "ETH",
      slug: "ethereum",
      num_market_pairs: 8843,
      date_added: "2015-08-07T00:00:00.000Z",
      tags: ["pos", "smart-contracts", "ethereum-ecosystem"],
      max_supply: null,
      circulating_supply: 120078346.52,
      total_supply: 120078346.52,
      cmc_rank: 2
    },
    {
      USD: {
        price: 3012.5,
        volume_24h: 15234567890.5,
        volume_change_24h: -3.21,
        percent_change_1h: 0.2,
        percent_change_24h: -2.5,
        percent_change_7d: 1.75,
        market_cap: 361736018891.5,
        market_cap_dominance: 16.15,
        fully_diluted_market_cap: 361736018891.5
      },
      EUR: {
        price: 2801.63,
        volume_24h: 14168148138.17,
        volume_change_24h: -3.21,
        percent_change_1h: 0.2,
        percent_change_24h: -2.5,
        percent_change_7d: 1.75,
        market_cap: 336414497569.1,
        market_cap_dominance: 16.15,
        fully_diluted_market_cap: 336414497569.1
      }
    }
  ),
  SOL: coin(
    {
      id: 5426,
      name: "Solana",
      symbol: "SOL",
      slug: "solana",
      num_market_pairs: 612,
      date_added: "2020-04-10T00:00:00.000Z",
      tags: ["pos", "platform", "solana-ecosystem"],
      max_supply: null,
      circulating_supply: 447123456.78,
      total_supply: 578123456.78,
      cmc_rank: 5
    },
    {
      USD: {
        price: 135.79,
        volume_24h: 2345678901.23,
        volume_change_24h: 8.5,
        percent_change_1h: 0.05,
        percent_change_24h: 3.33,
        percent_change_7d: -7.77,
        market_cap: 60715893991.26,
        market_cap_dominance: 2.71,
        fully_diluted_market_cap: 78503384153.17
      },
      EUR: {
        price: 126.28,
        volume_24h: 2181481378.14,
        volume_change_24h: 8.5,
        percent_change_1h: 0.05,
        percent_change_24h: 3.33,
        percent_change_7d: -7.77,
        market_cap: 56465781411.87,
        market_cap_dominance: 2.71,
        fully_diluted_market_cap: 73008097124.45
      }
    }
  )
}

export const QUOTES_PATH = "/v1/cryptocurrency/quotes/latest"

export type FakeCmcStep =
  /** 429 with CMC's envelope; `retryAfter` is sent verbatim as the Retry-After header when given. */
  | { readonly kind: "rateLimited"; readonly retryAfter?: string; readonly errorCode?: 1008 | 1009 | 1010 | 1011 }
  /** Any status with CMC's JSON error envelope. */
  | { readonly kind: "error"; readonly status: number; readonly errorCode?: number; readonly errorMessage?: string }
  /** An HTML page, as a CDN or load balancer sends it. */
  | { readonly kind: "html"; readonly status: number }
  /** `Content-Type: application/json` with a truncated JSON body. */
  | { readonly kind: "malformedJson"; readonly status?: number }
  /** Any JSON body. */
  | { readonly kind: "json"; readonly status?: number; readonly body: unknown }
  /** Wait, then answer as if unscripted (the client may give up first). */
  | { readonly kind: "delay"; readonly ms: number }
  /** Destroy the socket without answering. */
  | { readonly kind: "drop" }

export interface FakeCmcRequest {
  readonly method: string
  readonly path: string
  /** The request target as received, e.g. `/v1/cryptocurrency/quotes/latest?symbol=BTC,ETH&convert=USD`. */
  readonly rawUrl: string
  readonly query: Readonly<Record<string, string>>
  readonly headers: IncomingHttpHeaders
  /** Date.now() when the request arrived. */
  readonly receivedAt: number
}

export interface FakeCmc {
  /** What to put in CMC_API_URL, e.g. `http://127.0.0.1:40123/v1`. */
  readonly baseUrl: string
  readonly apiKey: string
  readonly requests: ReadonlyArray<FakeCmcRequest>
  readonly requestCount: () => number
  /** Queue behaviours for the next requests, one step per request, in order. */
  readonly script: (...steps: ReadonlyArray<FakeCmcStep>) => void
  readonly close: () => Promise<void>
}

const statusEnvelope = (errorCode: number, errorMessage: string | null, creditCount = 0) => ({
  status: {
    timestamp: TIMESTAMP,
    error_code: errorCode,
    error_message: errorMessage,
    elapsed: errorCode === 0 ? 12 : 0,
    credit_count: creditCount,
    notice: null
  }
})

/** A 200 body in CMC's envelope around `data` (for `json` steps). */
export const fakeCmcSuccessBody = (data: unknown) => ({ ...statusEnvelope(0, null, 1), data })

const RATE_LIMIT_MESSAGES: Readonly<Record<number, string>> = {
  1008: "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute.",
  1009: "You've exceeded your API Key's daily rate limit.",
  1010: "You've exceeded your API Key's monthly rate limit.",
  1011: "You've hit an IP rate limit."
}

const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  if (res.destroyed) return
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers })
  res.end(JSON.stringify(body))
}

const answerQuotes = (res: ServerResponse, query: Readonly<Record<string, string>>) => {
  const symbols = (query["symbol"] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  const converts = (query["convert"] ?? "USD").split(",").map((s) => s.trim().toUpperCase())
  if (symbols.length === 0) {
    return sendJson(res, 400, statusEnvelope(400, '"value" must contain at least one of [id, symbol, slug]'))
  }
  const badConverts = converts.filter((c) => c !== "USD" && c !== "EUR")
  if (badConverts.length > 0) {
    return sendJson(res, 400, statusEnvelope(400, `Invalid value for "convert": "${badConverts.join(",")}"`))
  }
  const known = symbols.filter((s) => FAKE_CMC_COINS[s.toUpperCase()] !== undefined)
  const unknown = symbols.filter((s) => FAKE_CMC_COINS[s.toUpperCase()] === undefined)
  if (known.length === 0) {
    const noun = unknown.length > 1 ? "values" : "value"
    return sendJson(res, 400, statusEnvelope(400, `Invalid ${noun} for "symbol": "${unknown.join(",")}"`))
  }
  const data: Record<string, unknown> = {}
  for (const s of known) {
    const c = FAKE_CMC_COINS[s.toUpperCase()]
    if (c === undefined) continue
    const quote = Object.fromEntries(converts.map((cv) => [cv, c.quote[cv]]))
    data[s.toUpperCase()] = { ...c, quote }
  }
  sendJson(res, 200, fakeCmcSuccessBody(data))
}

export const startFakeCmc = (options: { readonly apiKey?: string } = {}): Promise<FakeCmc> => {
  const apiKey = options.apiKey ?? FAKE_CMC_API_KEY
  const requests: Array<FakeCmcRequest> = []
  const queue: Array<FakeCmcStep> = []
  const timers = new Set<NodeJS.Timeout>()

  const answer = (path: string, headers: IncomingHttpHeaders, query: Record<string, string>, res: ServerResponse) => {
    if (path !== QUOTES_PATH) return sendJson(res, 404, statusEnvelope(404, "Not found"))
    const key = headers["x-cmc_pro_api_key"]
    if (key === undefined || key === "") return sendJson(res, 401, statusEnvelope(1002, "API key missing."))
    if (key !== apiKey) return sendJson(res, 401, statusEnvelope(1001, "This API Key is invalid."))
    answerQuotes(res, query)
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1")
    const query = Object.fromEntries(url.searchParams)
    requests.push({
      method: req.method ?? "GET",
      path: url.pathname,
      rawUrl: req.url ?? "/",
      query,
      headers: req.headers,
      receivedAt: Date.now()
    })
    const step = queue.shift()
    switch (step?.kind) {
      case undefined:
        return answer(url.pathname, req.headers, query, res)
      case "rateLimited": {
        const code = step.errorCode ?? 1008
        const headers: Record<string, string> = step.retryAfter === undefined ? {} : { "retry-after": step.retryAfter }
        return sendJson(res, 429, statusEnvelope(code, RATE_LIMIT_MESSAGES[code] ?? "Rate limited"), headers)
      }
      case "error":
        return sendJson(res, step.status, statusEnvelope(step.errorCode ?? step.status, step.errorMessage ?? null))
      case "html":
        res.writeHead(step.status, { "content-type": "text/html; charset=utf-8" })
        return res.end(
          `<!DOCTYPE html>\n<html><head><title>${step.status} Bad Gateway</title></head>` +
            `<body><h1>${step.status} Bad Gateway</h1><hr><center>cloudflare</center></body></html>\n`
        )
      case "malformedJson":
        res.writeHead(step.status ?? 200, { "content-type": "application/json; charset=utf-8" })
        return res.end('{"status":{"timestamp":"2024-05-01T12:35:00.000Z","error_code":0,"data":{"BTC":{"id":1,')
      case "json":
        return sendJson(res, step.status ?? 200, step.body)
      case "delay": {
        const timer = setTimeout(() => {
          timers.delete(timer)
          answer(url.pathname, req.headers, query, res)
        }, step.ms)
        timers.add(timer)
        return
      }
      case "drop":
        return req.socket.destroy()
    }
  })

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        baseUrl: `http://127.0.0.1:${port}/v1`,
        apiKey,
        requests,
        requestCount: () => requests.length,
        script: (...steps) => {
          queue.push(...steps)
        },
        close: () =>
          new Promise<void>((done) => {
            for (const timer of timers) clearTimeout(timer)
            timers.clear()
            server.close(() => done())
            server.closeAllConnections()
          })
      })
    })
  })
}

/** startFakeCmc tied to a Scope: closed when the scope closes. */
export const fakeCmc = (options: { readonly apiKey?: string } = {}): Effect.Effect<FakeCmc, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startFakeCmc(options)),
    (fake) => Effect.promise(() => fake.close())
  )
