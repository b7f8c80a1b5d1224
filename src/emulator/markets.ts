/** Static description of the emulated markets: ids, precisions and the parameters of their simulated activity. */

export type EmulatedExchange = "binance" | "kraken" | "coinbaseexchange"

export const EMULATED_EXCHANGES: ReadonlyArray<EmulatedExchange> = ["binance", "kraken", "coinbaseexchange"]

export const isEmulatedExchange = (value: string): value is EmulatedExchange =>
  (EMULATED_EXCHANGES as ReadonlyArray<string>).includes(value)

export type AssetCode = "BTC" | "ETH" | "SOL"

export interface AssetSpec {
  readonly code: AssetCode
  readonly index: number
  /** Price level the walk is pinned around at the model origin (2024-01-01). */
  readonly anchor: number
  readonly annualVolatility: number
}

export const ASSETS: Readonly<Record<AssetCode, AssetSpec>> = {
  BTC: { code: "BTC", index: 1, anchor: 42_300, annualVolatility: 0.55 },
  ETH: { code: "ETH", index: 2, anchor: 2_290, annualVolatility: 0.65 },
  SOL: { code: "SOL", index: 3, anchor: 101, annualVolatility: 0.9 }
}

export interface MarketSpec {
  readonly exchange: EmulatedExchange
  readonly exchangeIndex: number
  /** Unified ccxt symbol, e.g. BTC/USDT. */
  readonly symbol: string
  /** Exchange-native id, e.g. BTCUSDT, XXBTZUSD, BTC-USD. */
  readonly id: string
  readonly base: AssetCode
  readonly quote: "USDT" | "USD"
  readonly asset: AssetSpec
  /** tick = 10^-priceDecimals */
  readonly priceDecimals: number
  /** step = 10^-amountDecimals */
  readonly amountDecimals: number
  readonly tradesPerSecond: number
  /** Probability that a whole minute has no trades at all. */
  readonly quietMinuteProbability: number
  /** Mean trade size in base currency. */
  readonly meanTradeSize: number
  /** Share of price ticks that hold a resting level in the book. */
  readonly bookDensity: number
  /** Typical resting size per level in base currency. */
  readonly levelSize: number
  /** Constant relative price offset of this venue. */
  readonly basis: number
}

const spec = (
  exchange: EmulatedExchange,
  symbol: string,
  id: string,
  decimals: { price: number; amount: number },
  activity: {
    tradesPerSecond: number
    quiet: number
    meanTradeSize: number
    density: number
    levelSize: number
    basis: number
  }
): MarketSpec => {
  const [base, quote] = symbol.split("/") as [AssetCode, "USDT" | "USD"]
  return {
    exchange,
    exchangeIndex: EMULATED_EXCHANGES.indexOf(exchange) + 1,
    symbol,
    id,
    base,
    quote,
    asset: ASSETS[base],
    priceDecimals: decimals.price,
    amountDecimals: decimals.amount,
    tradesPerSecond: activity.tradesPerSecond,
    quietMinuteProbability: activity.quiet,
    meanTradeSize: activity.meanTradeSize,
    bookDensity: activity.density,
    levelSize: activity.levelSize,
    basis: activity.basis
  }
}

export const MARKETS: Readonly<Record<EmulatedExchange, ReadonlyArray<MarketSpec>>> = {
  binance: [
    spec(
      "binance",
      "BTC/USDT",
      "BTCUSDT",
      { price: 2, amount: 5 },
      { tradesPerSecond: 2, quiet: 0, meanTradeSize: 0.02, density: 0.55, levelSize: 0.4, basis: 0.0001 }
    ),
    spec(
      "binance",
      "ETH/USDT",
      "ETHUSDT",
      { price: 2, amount: 4 },
      { tradesPerSecond: 1.5, quiet: 0.002, meanTradeSize: 0.3, density: 0.6, levelSize: 6, basis: 0.0001 }
    ),
    spec(
      "binance",
      "SOL/USDT",
      "SOLUSDT",
      { price: 2, amount: 3 },
      { tradesPerSecond: 1, quiet: 0.005, meanTradeSize: 8, density: 0.65, levelSize: 150, basis: 0.0001 }
    )
  ],
  kraken: [
    spec(
      "kraken",
      "BTC/USD",
      "XXBTZUSD",
      { price: 1, amount: 8 },
      { tradesPerSecond: 0.8, quiet: 0.005, meanTradeSize: 0.015, density: 0.5, levelSize: 0.3, basis: 0.0003 }
    ),
    spec(
      "kraken",
      "ETH/USD",
      "XETHZUSD",
      { price: 2, amount: 8 },
      { tradesPerSecond: 0.6, quiet: 0.01, meanTradeSize: 0.25, density: 0.5, levelSize: 4, basis: 0.0003 }
    ),
    spec(
      "kraken",
      "SOL/USD",
      "SOLUSD",
      { price: 2, amount: 8 },
      { tradesPerSecond: 0.4, quiet: 0.03, meanTradeSize: 6, density: 0.5, levelSize: 90, basis: 0.0003 }
    )
  ],
  coinbaseexchange: [
    spec(
      "coinbaseexchange",
      "BTC/USD",
      "BTC-USD",
      { price: 2, amount: 8 },
      { tradesPerSecond: 1.2, quiet: 0.002, meanTradeSize: 0.012, density: 0.45, levelSize: 0.25, basis: 0.0002 }
    ),
    spec(
      "coinbaseexchange",
      "ETH/USD",
      "ETH-USD",
      { price: 2, amount: 8 },
      { tradesPerSecond: 0.9, quiet: 0.005, meanTradeSize: 0.2, density: 0.5, levelSize: 3, basis: 0.0002 }
    ),
    spec(
      "coinbaseexchange",
      "SOL/USD",
      "SOL-USD",
      { price: 2, amount: 3 },
      { tradesPerSecond: 0.5, quiet: 0.02, meanTradeSize: 5, density: 0.55, levelSize: 70, basis: 0.0002 }
    )
  ]
}

export const findMarketBySymbol = (exchange: EmulatedExchange, symbol: string): MarketSpec | undefined =>
  MARKETS[exchange].find((m) => m.symbol === symbol)

export const findMarketById = (exchange: EmulatedExchange, id: string): MarketSpec | undefined =>
  MARKETS[exchange].find((m) => m.id === id)
