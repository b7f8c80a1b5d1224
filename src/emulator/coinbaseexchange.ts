/** Coinbase Exchange (ex Coinbase Pro): public REST (/products/…) and the ws-feed protocol. */

import { diffBooks, type BookEvent, type BookLevels, type Level } from "./book.js"
import { genericFault, withRetryAfter, type FaultSpec, type RawResponse } from "./faults.js"
import { decimal, isoMicros, scaled } from "./format.js"
import { bucketBack, bucketStart, fixedBucket, SECOND, type Bucket } from "./intervals.js"
import { MARKETS, type MarketSpec } from "./markets.js"
import { secondOfTradeId, type RawCandle, type RawTrade, type Series } from "./model.js"
import { hash } from "./random.js"
import {
  clamp,
  intParam,
  json,
  parseJsonObject,
  stringArray,
  type RestRequest,
  type Venue,
  type VenueContext,
  type WsPeer,
  type WsSession
} from "./protocol.js"
import { TradeCursor } from "./streams.js"

const GRANULARITIES = [60, 300, 900, 3600, 21600, 86400]
const MAX_CANDLES = 300

const notFound = (): RawResponse => json(404, { message: "NotFound" })
const badRequest = (message: string): RawResponse => json(400, { message })

const findProduct = (id: string): MarketSpec | undefined =>
  MARKETS.coinbaseexchange.find((m) => m.id === id.toUpperCase())

const price = (spec: MarketSpec, ticks: number): string => decimal(ticks, spec.priceDecimals)
const size = (spec: MarketSpec, units: number): string => decimal(units, spec.amountDecimals)
const num = (spec: MarketSpec, ticks: number): number => scaled(ticks, spec.priceDecimals)

/** Deterministic UUID-shaped id. */
const uuid = (a: number, b: number): string => {
  const hex = [hash(a, b, 1), hash(a, b, 2), hash(a, b, 3), hash(a, b, 4)]
    .map((h) => h.toString(16).padStart(8, "0"))
    .join("")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

/** ISO 8601 or unix seconds, as coinbase accepts both. */
const parseTime = (raw: string | null): number | undefined => {
  if (raw === null || raw.trim() === "") return undefined
  if (/^\d+(\.\d+)?$/.test(raw.trim())) return Math.floor(Number(raw) * 1000)
  const parsed = Date.parse(raw)
  return Number.isNaN(parsed) ? undefined : parsed
}

const CURRENCIES: ReadonlyArray<{ id: string; name: string; minSize: string; precision: string; type: string }> = [
  { id: "BTC", name: "Bitcoin", minSize: "0.00000001", precision: "0.00000001", type: "crypto" },
  { id: "ETH", name: "Ether", minSize: "0.00000001", precision: "0.00000001", type: "crypto" },
  { id: "SOL", name: "Solana", minSize: "0.00000001", precision: "0.000000001", type: "crypto" },
  { id: "USD", name: "United States Dollar", minSize: "0.01", precision: "0.01", type: "fiat" }
]

const currency = (c: (typeof CURRENCIES)[number]) => ({
  id: c.id,
  name: c.name,
  min_size: c.minSize,
  status: "online",
  message: "",
  max_precision: c.precision,
  convertible_to: [],
  details: {
    type: c.type,
    symbol: c.type === "fiat" ? "$" : null,
    network_confirmations: c.type === "fiat" ? 0 : 2,
    sort_order: CURRENCIES.indexOf(c),
    crypto_address_link: "",
    crypto_transaction_link: "",
    push_payment_methods: c.type === "fiat" ? [] : ["crypto"],
    group_types: [],
    display_name: null,
    processing_time_seconds: null,
    min_withdrawal_amount: Number(c.minSize),
    max_withdrawal_amount: 10000
  },
  default_network: c.type === "fiat" ? "" : c.id.toLowerCase(),
  supported_networks: [],
  display_name: c.id
})

const product = (spec: MarketSpec) => ({
  id: spec.id,
  base_currency: spec.base,
  quote_currency: spec.quote,
  quote_increment: decimal(1, spec.priceDecimals),
  base_increment: decimal(1, spec.amountDecimals),
  display_name: spec.symbol,
  min_market_funds: "1",
  margin_enabled: false,
  post_only: false,
  limit_only: false,
  cancel_only: false,
  status: "online",
  status_message: "",
  trading_disabled: false,
  fx_stablecoin: false,
  max_slippage_percentage: "0.02000000",
  auction_mode: false,
  high_bid_limit_percentage: ""
})

export class CoinbaseExchangeVenue implements Venue {
  readonly id = "coinbaseexchange" as const
  readonly marketListPaths: ReadonlySet<string> = new Set(["/products", "/currencies"])

  constructor(private readonly ctx: VenueContext) {}

  private series(spec: MarketSpec): Series {
    return this.ctx.model.series("coinbaseexchange", spec.symbol)
  }

  rest(request: RestRequest): RawResponse {
    const { params, now } = request
    const path = request.path.replace(/\/+$/, "")
    if (path === "/time") return json(200, { iso: new Date(now).toISOString(), epoch: now / 1000 })
    if (path === "/currencies") return json(200, CURRENCIES.map(currency))
    if (path === "/products") return json(200, MARKETS.coinbaseexchange.map(product))
    if (path === "/products/spark-lines") return this.sparkLines(now)
    if (path === "/products/stats") {
      return json(
        200,
        Object.fromEntries(
          MARKETS.coinbaseexchange.map((spec) => {
            const stats = this.stats(spec, now)
            return [spec.id, { stats_30day: { volume: stats.volume_30day }, stats_24hour: stats }]
          })
        )
      )
    }
    const currencyMatch = /^\/currencies\/([^/]+)$/.exec(path)
    if (currencyMatch !== null) {
      const found = CURRENCIES.find((c) => c.id === (currencyMatch[1] ?? "").toUpperCase())
      return found === undefined ? notFound() : json(200, currency(found))
    }
    const match = /^\/products\/([^/]+)(\/[^/]+)?$/.exec(path)
    if (match === null) return notFound()
    const spec = findProduct(match[1] ?? "")
    if (spec === undefined) return notFound()
    switch (match[2]) {
      case undefined:
        return json(200, product(spec))
      case "/ticker":
        return json(200, this.ticker(spec, now))
      case "/stats":
        return json(200, this.stats(spec, now))
      case "/candles":
        return this.candles(spec, params, now)
      case "/book":
        return this.book(spec, params, now)
      case "/trades":
        return this.trades(spec, params, now)
      default:
        return notFound()
    }
  }

  private ticker(spec: MarketSpec, now: number) {
    const series = this.series(spec)
    const second = Math.floor(now / 1000)
    const stats = series.stats(second - 86_400, second)
    const book = this.ctx.book(spec).current(now).book
    const last = stats.last
    return {
      ask: price(spec, book.asks[0]?.[0] ?? 0),
      bid: price(spec, book.bids[0]?.[0] ?? 0),
      volume: size(spec, stats.window.volume),
      trade_id: last?.id ?? 0,
      price: price(spec, stats.lastPrice),
      size: size(spec, last?.amount ?? 0),
      time: isoMicros(last?.timestamp ?? now),
      rfq_volume: "0.000000"
    }
  }

  private stats(spec: MarketSpec, now: number) {
    const series = this.series(spec)
    const second = Math.floor(now / 1000)
    const stats = series.stats(second - 86_400, second)
    const month = series.aggregate(second - 30 * 86_400, second)
    return {
      open: price(spec, stats.open),
      high: price(spec, stats.high),
      low: price(spec, stats.low),
      last: price(spec, stats.lastPrice),
      volume: size(spec, stats.window.volume),
      volume_30day: size(spec, month.volume),
      rfq_volume_24hour: "0.000000",
      rfq_volume_30day: "0.000000",
      conversions_volume_24hour: "0.000000",
      conversions_volume_30day: "0.000000"
    }
  }

  private sparkLines(now: number): RawResponse {
    const bucket = fixedBucket(3600 * SECOND)
    return json(
      200,
      Object.fromEntries(
        MARKETS.coinbaseexchange.map((spec) => [
          spec.id,
          this.series(spec)
            .latestCandles(bucket, 24, now)
            .reverse()
            .map((c) => [c.start / 1000, num(spec, c.low), num(spec, c.high), num(spec, c.open), num(spec, c.close)])
        ])
      )
    )
  }

  private candles(spec: MarketSpec, params: URLSearchParams, now: number): RawResponse {
    const granularity = intParam(params, "granularity") ?? 60
    if (!GRANULARITIES.includes(granularity)) {
      return badRequest("Unsupported granularity")
    }
    const bucket = fixedBucket(granularity * SECOND)
    const start = parseTime(params.get("start"))
    const end = parseTime(params.get("end"))
    if ((params.has("start") && start === undefined) || (params.has("end") && end === undefined)) {
      return badRequest("Invalid start or end time")
    }
    const series = this.series(spec)
    let candles: RawCandle[]
    if (start !== undefined) {
      const last = end ?? bucketBack(bucketStart(start, bucket), bucket, -(MAX_CANDLES - 1))
      if (last < start) return badRequest("start must be before end")
      const count = Math.floor((bucketStart(last, bucket) - bucketStart(start, bucket)) / (granularity * SECOND)) + 1
      if (count > MAX_CANDLES) {
        return badRequest(
          "granularity too small for the requested time range. Count of aggregations requested exceeds 300"
        )
      }
      candles = series.candles(bucket, start, count + 1, now).filter((c) => c.start <= last)
    } else {
      candles =
        end === undefined ? series.latestCandles(bucket, MAX_CANDLES, now) : this.endingAt(series, bucket, end, now)
    }
    // coinbase omits buckets without trades, and lists the newest first
    const rows = candles
      .filter((c) => c.agg.count > 0)
      .reverse()
      .map((c) => [
        c.start / 1000,
        num(spec, c.low),
        num(spec, c.high),
        num(spec, c.open),
        num(spec, c.close),
        scaled(c.agg.volume, spec.amountDecimals)
      ])
    return json(200, rows)
  }

  private endingAt(series: Series, bucket: Bucket, end: number, now: number): RawCandle[] {
    const last = bucketStart(Math.min(end, now), bucket)
    return series.candles(bucket, bucketBack(last, bucket, MAX_CANDLES - 1), MAX_CANDLES, now)
  }

  private book(spec: MarketSpec, params: URLSearchParams, now: number): RawResponse {
    const level = intParam(params, "level") ?? 1
    if (level < 1 || level > 3) return badRequest("Invalid level")
    const state = this.ctx.book(spec).current(now)
    const depth = level === 1 ? 1 : state.book.bids.length
    const side = (levels: ReadonlyArray<Level>) =>
      levels
        .slice(0, depth)
        .map(([p, q]) =>
          level === 3
            ? [price(spec, p), size(spec, q), uuid(p, q)]
            : [price(spec, p), size(spec, q), 1 + (hash(p, 7) % 12)]
        )
    return json(200, {
      bids: side(state.book.bids),
      asks: side(state.book.asks),
      sequence: state.id,
      auction_mode: false,
      auction: null,
      time: isoMicros(now)
    })
  }

  private trades(spec: MarketSpec, params: URLSearchParams, now: number): RawResponse {
    const limit = clamp(intParam(params, "limit") ?? 100, 1, 1000)
    const after = intParam(params, "after")
    const before = intParam(params, "before")
    const series = this.series(spec)
    const visible = Math.floor(now / 1000)
    let trades: RawTrade[]
    if (after !== undefined) {
      // older than `after`
      const cutoff = Math.min(visible, secondOfTradeId(after) + 1)
      trades = series.tradesBefore(cutoff, limit + 16).filter((t) => t.id < after)
      trades = trades.slice(-limit)
    } else if (before !== undefined) {
      // newer than `before`
      trades = series
        .tradesBetween(secondOfTradeId(before), visible, limit + 16)
        .filter((t) => t.id > before)
        .slice(0, limit)
    } else {
      trades = series.tradesBefore(visible, limit)
    }
    const newestFirst = [...trades].reverse()
    const headers: Record<string, string> = {}
    const first = newestFirst[0]
    const lastTrade = newestFirst.at(-1)
    if (first !== undefined) headers["cb-before"] = String(first.id)
    if (lastTrade !== undefined) headers["cb-after"] = String(lastTrade.id)
    return json(
      200,
      newestFirst.map((t) => ({
        trade_id: t.id,
        side: t.buy ? "sell" : "buy",
        size: size(spec, t.amount),
        price: price(spec, t.price),
        time: isoMicros(t.timestamp)
      })),
      headers
    )
  }

  faultResponse(spec: FaultSpec, request: RestRequest): RawResponse {
    if (spec.kind === "rate-limit-429")
      return withRetryAfter(json(429, { message: "Public rate limit exceeded" }), spec)
    return genericFault(spec, () => this.rest(request))
  }

  acceptsWsPath(path: string): boolean {
    return path === "" || path === "/"
  }

  openSession(peer: WsPeer): WsSession {
    return new CoinbaseSession(peer, this.ctx)
  }
}

const CHANNELS = ["ticker", "ticker_batch", "matches", "level2", "level2_batch", "heartbeat"]

type Subscription =
  | { readonly channel: "ticker" | "ticker_batch" | "heartbeat"; readonly spec: MarketSpec }
  | { readonly channel: "matches"; readonly spec: MarketSpec; readonly cursor: TradeCursor }
  | {
      readonly channel: "level2" | "level2_batch"
      readonly spec: MarketSpec
      sent: BookLevels
      readonly unsubscribe: () => void
    }

class CoinbaseSession implements WsSession {
  private readonly subscriptions = new Map<string, Subscription>()

  constructor(
    private readonly peer: WsPeer,
    private readonly ctx: VenueContext
  ) {}

  get subscriptionCount(): number {
    return this.subscriptions.size
  }

  private series(spec: MarketSpec): Series {
    return this.ctx.model.series("coinbaseexchange", spec.symbol)
  }

  private error(message: string, reason: string): void {
    this.peer.reply({ type: "error", message, reason })
  }

  onMessage(text: string): void {
    const message = parseJsonObject(text)
    if (message === undefined) {
      this.error("Failed to parse message", "malformed JSON")
      return
    }
    const type = message["type"]
    if (type !== "subscribe" && type !== "unsubscribe") {
      this.error("Failed to subscribe", `${String(type)} is not a valid type`)
      return
    }
    const defaultProducts = stringArray(message["product_ids"]) ?? []
    const channels = message["channels"]
    if (!Array.isArray(channels) || channels.length === 0) {
      this.error("Failed to subscribe", "channels is required")
      return
    }
    const pairs: Array<{ channel: string; productId: string }> = []
    for (const entry of channels) {
      if (typeof entry === "string") {
        for (const productId of defaultProducts) pairs.push({ channel: entry, productId })
      } else if (typeof entry === "object" && entry !== null) {
        const record = entry as Record<string, unknown>
        const name = record["name"]
        const ids = stringArray(record["product_ids"]) ?? defaultProducts
        if (typeof name === "string") for (const productId of ids) pairs.push({ channel: name, productId })
      }
    }
    const badChannel = pairs.find((p) => !CHANNELS.includes(p.channel))
    if (badChannel !== undefined) {
      this.error("Failed to subscribe", `${badChannel.channel} is not a valid channel`)
      return
    }
    const badProduct = pairs.find((p) => findProduct(p.productId) === undefined)
    if (badProduct !== undefined) {
      this.error("Failed to subscribe", `${badProduct.productId} is not a valid product`)
      return
    }
    if (pairs.length === 0) {
      this.error("Failed to subscribe", "product_ids is required")
      return
    }
    if (type === "unsubscribe") {
      for (const { channel, productId } of pairs) this.remove(`${channel}:${productId.toUpperCase()}`)
      this.acknowledge()
      return
    }
    if (!this.peer.subscribing()) return
    const added: Subscription[] = []
    for (const { channel, productId } of pairs) {
      const spec = findProduct(productId)
      if (spec === undefined) continue
      const key = `${channel}:${spec.id}`
      if (this.subscriptions.has(key)) continue
      const subscription = this.create(channel, spec, key)
      this.subscriptions.set(key, subscription)
      added.push(subscription)
    }
    this.acknowledge()
    const now = this.ctx.clock.now()
    for (const subscription of added) this.pushInitial(subscription, now)
  }

  private create(channel: string, spec: MarketSpec, key: string): Subscription {
    switch (channel) {
      case "matches":
        return { channel: "matches", spec, cursor: new TradeCursor(this.series(spec)) }
      case "level2":
      case "level2_batch": {
        const feed = this.ctx.book(spec)
        const unsubscribe = feed.subscribe((event) => this.onBook(key, event))
        return { channel, spec, sent: feed.current(this.ctx.clock.now()).book, unsubscribe }
      }
      case "ticker_batch":
      case "heartbeat":
        return { channel, spec }
      default:
        return { channel: "ticker", spec }
    }
  }

  private remove(key: string): void {
    const subscription = this.subscriptions.get(key)
    if (subscription === undefined) return
    if (subscription.channel === "level2" || subscription.channel === "level2_batch") subscription.unsubscribe()
    this.subscriptions.delete(key)
  }

  private acknowledge(): void {
    const byChannel = new Map<string, string[]>()
    for (const subscription of this.subscriptions.values()) {
      const ids = byChannel.get(subscription.channel) ?? []
      ids.push(subscription.spec.id)
      byChannel.set(subscription.channel, ids)
    }
    this.peer.reply({
      type: "subscriptions",
      channels: [...byChannel.entries()].map(([name, productIds]) => ({
        name,
        product_ids: productIds,
        account_ids: null
      }))
    })
  }

  private pushInitial(subscription: Subscription, now: number): void {
    switch (subscription.channel) {
      case "matches": {
        const last = subscription.cursor.snapshot(now, 1).at(-1)
        if (last !== undefined) this.peer.send(this.match(subscription.spec, last, "last_match", now))
        return
      }
      case "level2":
      case "level2_batch": {
        const spec = subscription.spec
        const side = (levels: ReadonlyArray<Level>) => levels.map(([p, q]) => [price(spec, p), size(spec, q)])
        this.peer.send({
          type: "snapshot",
          product_id: spec.id,
          bids: side(subscription.sent.bids),
          asks: side(subscription.sent.asks)
        })
        return
      }
      default:
        this.push(subscription, now)
    }
  }

  private push(subscription: Subscription, now: number): void {
    switch (subscription.channel) {
      case "ticker":
      case "ticker_batch":
        this.peer.send(this.tickerMessage(subscription.spec, now))
        return
      case "heartbeat": {
        const spec = subscription.spec
        this.peer.send({
          type: "heartbeat",
          sequence: this.ctx.book(spec).current(now).id,
          last_trade_id: this.series(spec).lastTradeBefore(Math.floor(now / 1000))?.id ?? 0,
          product_id: spec.id,
          time: isoMicros(now)
        })
        return
      }
      case "matches":
        for (const trade of subscription.cursor.poll(now, this.ctx.clock.frozen)) {
          this.peer.send(this.match(subscription.spec, trade, "match", now))
        }
        return
      default:
        return
    }
  }

  tick(now: number): void {
    for (const subscription of this.subscriptions.values()) this.push(subscription, now)
  }

  private onBook(key: string, event: BookEvent): void {
    const subscription = this.subscriptions.get(key)
    if (subscription === undefined || (subscription.channel !== "level2" && subscription.channel !== "level2_batch"))
      return
    const spec = subscription.spec
    const changes = diffBooks(subscription.sent, event.book)
    let bids = changes.bids
    let asks = changes.asks
    if (bids.length === 0 && asks.length === 0) {
      if (!event.heartbeat) return
      bids = event.book.bids.slice(0, 1)
      asks = event.book.asks.slice(0, 1)
    }
    const delivered = this.peer.send({
      type: "l2update",
      product_id: spec.id,
      changes: [
        ...bids.map(([p, q]) => ["buy", price(spec, p), size(spec, q)]),
        ...asks.map(([p, q]) => ["sell", price(spec, p), size(spec, q)])
      ],
      time: isoMicros(event.time)
    })
    if (delivered) subscription.sent = event.book
  }

  private tickerMessage(spec: MarketSpec, now: number) {
    const series = this.series(spec)
    const second = Math.floor(now / 1000)
    const stats = series.stats(second - 86_400, second)
    const month = series.aggregate(second - 30 * 86_400, second)
    const state = this.ctx.book(spec).current(now)
    const last = stats.last
    return {
      type: "ticker",
      sequence: state.id,
      product_id: spec.id,
      price: price(spec, stats.lastPrice),
      open_24h: price(spec, stats.open),
      volume_24h: size(spec, stats.window.volume),
      low_24h: price(spec, stats.low),
      high_24h: price(spec, stats.high),
      volume_30d: size(spec, month.volume),
      best_bid: price(spec, state.book.bids[0]?.[0] ?? 0),
      best_bid_size: size(spec, state.book.bids[0]?.[1] ?? 0),
      best_ask: price(spec, state.book.asks[0]?.[0] ?? 0),
      best_ask_size: size(spec, state.book.asks[0]?.[1] ?? 0),
      side: last?.buy === false ? "sell" : "buy",
      time: isoMicros(last?.timestamp ?? now),
      trade_id: last?.id ?? 0,
      last_size: size(spec, last?.amount ?? 0)
    }
  }

  private match(spec: MarketSpec, t: RawTrade, type: "match" | "last_match", now: number) {
    return {
      type,
      trade_id: t.id,
      maker_order_id: uuid(t.id, 1),
      taker_order_id: uuid(t.id, 2),
      // coinbase reports the maker's side
      side: t.buy ? "sell" : "buy",
      size: size(spec, t.amount),
      price: price(spec, t.price),
      product_id: spec.id,
      sequence: this.ctx.book(spec).current(now).id,
      time: isoMicros(t.timestamp)
    }
  }

  dispose(): void {
    for (const key of [...this.subscriptions.keys()]) this.remove(key)
  }
}
