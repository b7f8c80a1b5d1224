import { Clock, Context, Duration, Effect, Layer, Option, type ParseResult, Schema } from "effect"
import { AppConfig } from "../AppConfig.js"
import { type CachedResponse, type Fetched, ResponseCache } from "../Cache/ResponseCache.js"
import { Cmc, type CmcService } from "../Cmc/Cmc.js"
import { fallbackConvert, splitSymbol, tickerFromCmc } from "../Cmc/Ticker.js"
import type { ApiError } from "../Domain/Errors.js"
import { ExchangeList, MarketList, Ohlcv, OrderBook, Ticker, Tickers, Trades } from "../Domain/Market.js"
import { Exchange, type ResolvedMarket } from "../Exchange/Exchange.js"
import { timeframeToMs } from "../Exchange/ohlcvPaging.js"
import { normalizeSymbol } from "../Exchange/symbols.js"
import { isUpstreamFailure, observeCmc } from "../Resilience/CmcFallback.js"
import { withRequestDeadline } from "../Resilience/Deadline.js"

/** A market answer as the cache holds it: the encoded body, its freshness, and the value decoded on demand. */
export interface Cached<A> {
  readonly response: CachedResponse
  readonly ttl: Duration.Duration
  /** The body decoded back into its domain type, so a hit yields exactly what a miss does. */
  readonly value: Effect.Effect<A>
}

export interface MarketParams {
  readonly exchange: string
  readonly symbol: string
}

export interface TickerQueryParams extends MarketParams {
  /** Currency of a CoinMarketCap fallback answer; exchange answers are always in the symbol's quote currency. */
  readonly convert?: string | undefined
}

export interface OhlcvQueryParams extends MarketParams {
  readonly interval: string
  readonly since?: number | undefined
  readonly limit: number
}

export interface DepthParams extends MarketParams {
  readonly limit: number
}

export interface MarketsQueryParams {
  readonly exchange: string
  readonly q?: string | undefined
  readonly base?: string | undefined
  readonly quote?: string | undefined
  readonly offset: number
  readonly limit: number
}

/**
 * Market data through the response cache, keyed so that every interface asking the same question (REST, MCP)
 * shares one cache entry and one upstream call.
 *
 * When the upstream fails (after the retries of the Exchange layer) a previous answer younger than TTL +
 * STALE_IF_ERROR is served as STALE. For a single ticker with no such answer, CoinMarketCap answers instead when a Cmc
 * service is provided and CMC_API_KEY is set: stale exchange data first (it is the venue the client asked about, and
 * costs no CMC credit), CoinMarketCap second, the exchange's error last. Errors about the question itself (unknown
 * symbol or exchange, bad parameter, unsupported method) are returned as they are. This holds when the market list
 * itself cannot be loaded too: the cache is then looked up under the client's symbol, normalized.
 *
 * Each query runs under REQUEST_DEADLINE: its market list load, upstream call and retries share one deadline.
 */
interface Codec<A> {
  readonly encode: (value: A) => Effect.Effect<unknown, ParseResult.ParseError>
  readonly decode: (body: string) => Effect.Effect<A, ParseResult.ParseError>
}

// Built once per schema: a parseJson schema made per request would be compiled again on every request.
const codecs = new WeakMap<object, Codec<unknown>>()

const codecOf = <A, I>(schema: Schema.Schema<A, I>): Codec<A> => {
  const known = codecs.get(schema) as Codec<A> | undefined
  if (known !== undefined) return known
  const codec: Codec<A> = { encode: Schema.encode(schema), decode: Schema.decode(Schema.parseJson(schema)) }
  codecs.set(schema, codec as Codec<unknown>)
  return codec
}

export const makeMarketQueries = Effect.gen(function* () {
  const exchange = yield* Exchange
  const cache = yield* ResponseCache
  const config = yield* AppConfig
  // optional so that servers without CoinMarketCap (tests, the MCP stdio server) need not provide it
  const cmc = Option.filter(yield* Effect.serviceOption(Cmc), (service) => service.configured)

  const deadline = withRequestDeadline(Duration.toMillis(config.requestDeadline))

  /** `ttlOf` may shorten the freshness of one answer (an OHLCV answer with the still open candle). */
  const cached = <A, I, E>(
    schema: Schema.Schema<A, I>,
    key: string,
    ttl: Duration.Duration,
    fetch: Effect.Effect<A, E>,
    serveStale: (error: E) => boolean,
    ttlOf?: (value: A) => Effect.Effect<Duration.Duration>
  ): Effect.Effect<Cached<A>, E> => {
    const { encode, decode } = codecOf(schema)
    return cache
      .getOrFetch(
        key,
        ttl,
        fetch.pipe(
          Effect.flatMap((value) =>
            Effect.flatMap(Effect.orDie(encode(value)), (encoded): Effect.Effect<string | Fetched> => {
              const body = JSON.stringify(encoded)
              return ttlOf === undefined
                ? Effect.succeed(body)
                : Effect.map(ttlOf(value), (own) => ({ body, ttl: own }))
            })
          )
        ),
        { staleIfError: config.staleIfError, serveStale }
      )
      .pipe(Effect.map((response) => ({ response, ttl, value: Effect.orDie(decode(response.body)) })))
  }

  const fromUpstream = <A, I>(
    schema: Schema.Schema<A, I>,
    key: string,
    ttl: Duration.Duration,
    fetch: Effect.Effect<A, ApiError>,
    ttlOf?: (value: A) => Effect.Effect<Duration.Duration>
  ) => cached(schema, key, ttl, fetch, isUpstreamFailure, ttlOf)

  /**
   * An answer about one market. When the market list cannot be loaded (an upstream failure, e.g. after a restart
   * during an outage), the cache is looked up under the client's symbol normalized: a fresh entry is a HIT, one within
   * STALE_IF_ERROR is served STALE, else the load's error stands.
   */
  const aboutMarket = <A, I>(
    params: MarketParams,
    schema: Schema.Schema<A, I>,
    keyOf: (market: ResolvedMarket) => string,
    ttl: Duration.Duration,
    fetch: (market: ResolvedMarket) => Effect.Effect<A, ApiError>,
    ttlOf?: (value: A) => Effect.Effect<Duration.Duration>
  ): Effect.Effect<Cached<A>, ApiError> =>
    exchange.resolve(params.exchange, params.symbol).pipe(
      Effect.matchEffect({
        onSuccess: (market) => fromUpstream(schema, keyOf(market), ttl, fetch(market), ttlOf),
        onFailure: (failure) =>
          isUpstreamFailure(failure)
            ? Effect.flatMap(
                Effect.orElse(exchange.resolveExchange(params.exchange), () => Effect.fail(failure)),
                (id) =>
                  fromUpstream(
                    schema,
                    keyOf({ exchange: id, symbol: normalizeSymbol(params.symbol) }),
                    ttl,
                    Effect.fail(failure)
                  )
              )
            : Effect.fail(failure)
      })
    )

  /** An OHLCV answer that includes the still open candle is fresh for OHLCV_OPEN_CACHE_TTL only. */
  const ohlcvTtl = (interval: string) => (value: Ohlcv) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const last = value.candles[value.candles.length - 1]
      const open = Option.match(timeframeToMs(interval), {
        onNone: () => true,
        // no candle yet (a window reaching into the future) is as short-lived as an open one
        onSome: (ms) => last === undefined || last.timestamp + ms > now
      })
      return open ? config.ohlcvOpenCacheTtl : config.ohlcvCacheTtl
    })

  const fromCoinMarketCap = (service: CmcService, params: TickerQueryParams, failure: ApiError) =>
    Option.match(splitSymbol(params.symbol), {
      onNone: () => Effect.fail(failure),
      onSome: (pair) => {
        const convert = fallbackConvert(pair, params.convert)
        const quote = observeCmc(service.quote(pair.base, convert)).pipe(
          Effect.flatMap((q) =>
            Option.match(tickerFromCmc(q), {
              onNone: () => Effect.fail(`CoinMarketCap has no ${convert} price for ${pair.base}`),
              onSome: Effect.succeed
            })
          )
        )
        return cached(
          Ticker,
          `v1:ticker:coinmarketcap:${pair.base}:${convert}`,
          config.cmcCacheTtl,
          quote,
          () => true
        ).pipe(
          Effect.tap(() =>
            Effect.logInfo(`${params.exchange} failed; ticker answered from CoinMarketCap`, failure.message)
          ),
          Effect.catchAll((cmcError) =>
            Effect.logWarning(
              `${params.exchange} failed and the CoinMarketCap fallback failed too`,
              typeof cmcError === "string" ? cmcError : cmcError.message
            ).pipe(Effect.zipRight(Effect.fail(failure)))
          ),
          Effect.annotateLogs({ component: "markets", symbol: params.symbol, convert })
        )
      }
    })

  const ticker = (params: TickerQueryParams): Effect.Effect<Cached<Ticker>, ApiError> => {
    const fromExchange = aboutMarket(
      params,
      Ticker,
      (market) => `v1:ticker:${market.exchange}:${market.symbol}`,
      config.tickerCacheTtl,
      (market) => exchange.ticker(market)
    )
    return Option.match(cmc, {
      onNone: () => fromExchange,
      onSome: (service) =>
        fromExchange.pipe(Effect.catchIf(isUpstreamFailure, (failure) => fromCoinMarketCap(service, params, failure)))
    }).pipe(deadline)
  }

  const ohlcv = (params: OhlcvQueryParams) =>
    aboutMarket(
      params,
      Ohlcv,
      (market) =>
        `v1:ohlcv:${market.exchange}:${market.symbol}:${params.interval}:${params.since ?? "latest"}:${params.limit}`,
      config.ohlcvCacheTtl,
      (market) =>
        exchange.ohlcv(market, {
          interval: params.interval,
          since: Option.fromNullable(params.since),
          limit: params.limit
        }),
      ohlcvTtl(params.interval)
    ).pipe(deadline)

  const orderBook = (params: DepthParams) =>
    aboutMarket(
      params,
      OrderBook,
      (market) => `v1:orderbook:${market.exchange}:${market.symbol}:${params.limit}`,
      config.orderbookCacheTtl,
      (market) => exchange.orderBook(market, params.limit)
    ).pipe(deadline)

  const trades = (params: DepthParams) =>
    aboutMarket(
      params,
      Trades,
      (market) => `v1:trades:${market.exchange}:${market.symbol}:${params.limit}`,
      config.tradesCacheTtl,
      (market) => exchange.trades(market, params.limit)
    ).pipe(deadline)

  const tickers = (params: { readonly exchange: string; readonly symbols: ReadonlyArray<string> }) =>
    Effect.flatMap(exchange.resolveExchange(params.exchange), (id) =>
      fromUpstream(
        Tickers,
        `v1:tickers:${id}:${params.symbols.map((s) => s.toUpperCase()).join(",")}`,
        config.tickerCacheTtl,
        exchange.tickers(id, params.symbols).pipe(Effect.map((list) => new Tickers({ exchange: id, tickers: list })))
      )
    ).pipe(deadline)

  const markets = (params: MarketsQueryParams) =>
    Effect.flatMap(exchange.resolveExchange(params.exchange), (id) => {
      const q = params.q?.toUpperCase()
      const base = params.base?.toUpperCase()
      const quote = params.quote?.toUpperCase()
      const key = `v1:markets:${id}:${q ?? ""}:${base ?? ""}:${quote ?? ""}:${params.offset}:${params.limit}`
      return fromUpstream(
        MarketList,
        key,
        config.marketsCacheTtl,
        exchange.markets(id).pipe(
          Effect.map((all) => {
            const matching = all.filter(
              (m) =>
                (q === undefined || m.symbol.toUpperCase().includes(q)) &&
                (base === undefined || m.base.toUpperCase() === base) &&
                (quote === undefined || m.quote.toUpperCase() === quote)
            )
            return new MarketList({
              exchange: id,
              total: matching.length,
              offset: params.offset,
              limit: params.limit,
              markets: matching.slice(params.offset, params.offset + params.limit)
            })
          })
        )
      )
    }).pipe(deadline)

  const exchanges = fromUpstream(
    ExchangeList,
    `v1:exchanges:${exchange.enabled.join(",")}`,
    config.marketsCacheTtl,
    Effect.forEach(exchange.enabled, (id) => exchange.describe(id)).pipe(
      Effect.map((list) => new ExchangeList({ exchanges: list }))
    )
  )

  return { ticker, tickers, ohlcv, orderBook, trades, markets, exchanges } as const
})

export type MarketQueriesService = Effect.Effect.Success<typeof makeMarketQueries>

/** The market queries of every interface (REST routes, MCP tools): one instance, over the one response cache. */
export class MarketQueries extends Context.Tag("app/MarketQueries")<MarketQueries, MarketQueriesService>() {}

export const MarketQueriesLive = Layer.effect(MarketQueries, makeMarketQueries)
