import { Option } from "effect"
import { describe, expect, it } from "vitest"
import { parseRetryAfter as cmcParse } from "../../src/Cmc/Retry.js"
import { retryAfterMsOf } from "../../src/Exchange/errors.js"
import { capRetryAfterMs, parseRetryAfter, retryAfterHeader } from "../../src/Resilience/RetryAfter.js"

const NOW = Date.UTC(2024, 5, 10, 6, 0, 0)

describe("one Retry-After parser for exchanges and CoinMarketCap", () => {
  it("CoinMarketCap uses it as is", () => {
    expect(cmcParse).toBe(parseRetryAfter)
  })

  it("exchanges read the same values the same way: delta-seconds, HTTP dates, nothing else", () => {
    const cases: ReadonlyArray<readonly [string, number | undefined]> = [
      ["7", 7000],
      ["0.5", 500],
      ["Mon, 10 Jun 2024 06:00:30 GMT", 30_000],
      ["Mon, 10 Jun 2024 05:00:00 GMT", 0],
      ["-5", undefined],
      ["1e3", undefined],
      ["soon", undefined]
    ]
    for (const [value, ms] of cases) {
      expect(Option.getOrUndefined(parseRetryAfter(value, NOW))).toBe(ms)
      expect(retryAfterMsOf({ "Retry-After": value }, "", NOW)).toBe(ms)
    }
  })

  it("finds the header in any case, and caps a wait at RETRY_AFTER_MAX", () => {
    expect(retryAfterHeader({ "retry-after": "3" })).toBe("3")
    expect(retryAfterHeader({ "RETRY-AFTER": "4", other: 1 })).toBe("4")
    expect(retryAfterHeader({ "retry-after": 5 })).toBeUndefined()
    expect(retryAfterHeader(undefined)).toBeUndefined()
    expect(capRetryAfterMs(100_000_000, 60_000)).toBe(60_000)
    expect(capRetryAfterMs(1_500, 60_000)).toBe(1_500)
  })
})
