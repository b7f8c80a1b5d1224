import { describe, expect, it } from "vitest"
import { backoffDelay } from "../../web/src/lib/backoff.js"

const options = { initialMs: 500, maxMs: 15_000, multiplier: 2 }

describe("reconnection backoff", () => {
  it("doubles from the initial delay up to the cap, at the top of the jitter", () => {
    const top = () => 0.999999
    expect([1, 2, 3, 4, 5, 6, 7, 10].map((n) => backoffDelay(n, options, top))).toEqual([
      500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000
    ])
  })

  it("jitters down to half of the step", () => {
    expect(backoffDelay(1, options, () => 0)).toBe(250)
    expect(backoffDelay(3, options, () => 0.5)).toBe(1500)
    expect(backoffDelay(20, options, () => 0)).toBe(7500)
  })

  it("stays within [step/2, step] for any random draw", () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const step = Math.min(15_000, 500 * 2 ** (attempt - 1))
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(attempt, options)
        expect(delay).toBeGreaterThanOrEqual(step / 2)
        expect(delay).toBeLessThanOrEqual(step)
      }
    }
  })
})
