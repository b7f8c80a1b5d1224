import { describe, expect, it } from "vitest"
import {
  direction,
  formatAmount,
  formatChange,
  formatPercent,
  formatPrice,
  formatTime,
  formatVolume,
  priceDecimals,
  spreadOf
} from "../../web/src/lib/format.js"

describe("price formatting", () => {
  it("uses the market's tick size when known", () => {
    expect(priceDecimals(42000, 0.01)).toBe(2)
    expect(priceDecimals(101, 0.001)).toBe(3)
    expect(priceDecimals(42000, 0.1)).toBe(1)
    expect(priceDecimals(42000, 1)).toBe(0)
    expect(formatPrice(42123.456, 0.1)).toBe("42,123.5")
    expect(formatPrice(2290.5, 0.01)).toBe("2,290.50")
  })

  it("falls back to the price's magnitude without a tick", () => {
    expect(formatPrice(42000)).toBe("42,000.00")
    expect(formatPrice(0.5)).toBe("0.5000")
    expect(formatPrice(0.000123)).toBe("0.000123")
  })

  it("shows missing values as a dash", () => {
    expect(formatPrice(null)).toBe("—")
    expect(formatPrice(Number.NaN)).toBe("—")
    expect(formatPercent(null)).toBe("—")
    expect(formatVolume(undefined)).toBe("—")
    expect(formatChange(null)).toBe("—")
  })

  it("signs changes and percentages", () => {
    expect(formatChange(12.5, 0.01)).toBe("+12.50")
    expect(formatChange(-0.3, 0.01)).toBe("-0.30")
    expect(formatPercent(1.2345)).toBe("+1.23%")
    expect(formatPercent(-0.5)).toBe("-0.50%")
    expect(formatPercent(0)).toBe("+0.00%")
  })

  it("compacts volumes", () => {
    expect(formatVolume(950)).toBe("950")
    expect(formatVolume(12.3456)).toBe("12.35")
    expect(formatVolume(12_345)).toBe("12.3K")
    expect(formatVolume(4_560_000)).toBe("4.56M")
    expect(formatVolume(7_800_000_000)).toBe("7.80B")
  })

  it("formats amounts by step and times in UTC", () => {
    expect(formatAmount(0.12345678, 0.00001)).toBe("0.12346")
    expect(formatAmount(1.5)).toBe("1.5000")
    expect(formatTime(Date.UTC(2024, 0, 1, 13, 5, 9, 500))).toBe("13:05:09")
  })

  it("computes the spread in price and basis points", () => {
    const spread = spreadOf(99, 101)
    expect(spread?.spread).toBe(2)
    expect(spread?.bps).toBe(200)
    expect(spreadOf(null, 101)).toBeNull()
    expect(spreadOf(0, 101)).toBeNull()
  })

  it("tells the direction of a change", () => {
    expect(direction(1)).toBe("up")
    expect(direction(-1)).toBe("down")
    expect(direction(0)).toBe("flat")
    expect(direction(null)).toBe("flat")
  })
})
