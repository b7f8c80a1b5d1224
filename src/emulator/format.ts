/** Exact decimal rendering of the model's integer quantities (ticks, lot units). */

const POW10: ReadonlyArray<number> = Array.from({ length: 19 }, (_, i) => 10 ** i)

export const pow10 = (decimals: number): number => POW10[decimals] ?? 10 ** decimals

/** Integer count of 10^-decimals units → number (the double nearest to the exact decimal). */
export const scaled = (units: number, decimals: number): number => units / pow10(decimals)

/** Integer count of 10^-decimals units → decimal string with exactly `decimals` digits after the point. */
export const decimal = (units: number, decimals: number): string => scaled(units, decimals).toFixed(decimals)

/** Integer units rendered with more (zero-padded) digits than their precision, like binance's 8-digit strings. */
export const padded = (units: number, decimals: number, digits: number): string =>
  digits <= decimals ? decimal(units, decimals) : scaled(units, decimals).toFixed(digits)

export const fixed = (value: number, digits: number): string => (Number.isFinite(value) ? value : 0).toFixed(digits)

export const isoMillis = (ms: number): string => new Date(ms).toISOString()

/** 2024-01-01T00:00:00.123000Z: the microsecond form coinbase and kraken use. */
export const isoMicros = (ms: number): string => isoMillis(ms).replace(/\.(\d{3})Z$/, ".$1000Z")

/** kraken's "Mon, 01 Jan 24 00:00:00 +0000" */
export const rfc1123Short = (ms: number): string => {
  const d = new Date(ms)
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
  const two = (n: number) => String(n).padStart(2, "0")
  return `${days[d.getUTCDay()] ?? ""}, ${two(d.getUTCDate())} ${months[d.getUTCMonth()] ?? ""} ${two(
    d.getUTCFullYear() % 100
  )} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`
}
