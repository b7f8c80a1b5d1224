/** Number and time formatting for prices, amounts and volumes; null shows as an em dash. */

const DASH = "—"

/** Decimals implied by a tick size (0.01 → 2) or, without one, by the magnitude of the price. */
export const priceDecimals = (price: number, tick: number | null = null): number => {
  if (tick !== null && tick > 0 && tick < 1) return Math.min(10, Math.max(0, Math.round(-Math.log10(tick))))
  if (tick !== null && tick >= 1) return 0
  const abs = Math.abs(price)
  if (abs >= 1) return 2
  if (abs >= 0.01) return 4
  if (abs === 0) return 2
  return Math.min(10, 2 + Math.ceil(-Math.log10(abs)))
}

const fixed = (value: number, decimals: number): string =>
  value.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals })

export const formatPrice = (price: number | null | undefined, tick: number | null = null): string =>
  price === null || price === undefined || !Number.isFinite(price) ? DASH : fixed(price, priceDecimals(price, tick))

/** A signed change: "+12.50", "-0.30". */
export const formatChange = (change: number | null | undefined, tick: number | null = null): string => {
  if (change === null || change === undefined || !Number.isFinite(change)) return DASH
  return `${change < 0 ? "-" : "+"}${formatPrice(Math.abs(change), tick)}`
}

export const formatPercent = (percent: number | null | undefined): string =>
  percent === null || percent === undefined || !Number.isFinite(percent)
    ? DASH
    : `${percent < 0 ? "-" : "+"}${fixed(Math.abs(percent), 2)}%`

/** Compact volumes: 950, 12.3K, 4.56M, 7.8B. */
export const formatVolume = (volume: number | null | undefined): string => {
  if (volume === null || volume === undefined || !Number.isFinite(volume)) return DASH
  const abs = Math.abs(volume)
  if (abs >= 1e9) return `${fixed(volume / 1e9, 2)}B`
  if (abs >= 1e6) return `${fixed(volume / 1e6, 2)}M`
  if (abs >= 1e4) return `${fixed(volume / 1e3, 1)}K`
  return fixed(volume, abs >= 100 ? 0 : abs >= 1 ? 2 : 4)
}

export const formatAmount = (amount: number, step: number | null = null): string =>
  fixed(amount, step !== null && step > 0 && step < 1 ? Math.min(8, Math.round(-Math.log10(step))) : 4)

/** HH:MM:SS in UTC, the exchanges' clock. */
export const formatTime = (ms: number): string => new Date(ms).toISOString().slice(11, 19)

/** Spread in price and in basis points of the mid price. */
export const spreadOf = (
  bid: number | null,
  ask: number | null
): { readonly spread: number; readonly bps: number } | null => {
  if (bid === null || ask === null || bid <= 0 || ask <= 0) return null
  const spread = ask - bid
  return { spread, bps: (spread / ((ask + bid) / 2)) * 10_000 }
}

/** Direction of a change for colouring. */
export const direction = (value: number | null | undefined): "up" | "down" | "flat" =>
  value === null || value === undefined || value === 0 || !Number.isFinite(value) ? "flat" : value > 0 ? "up" : "down"
