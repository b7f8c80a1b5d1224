import { describe, expect, it } from "vitest"
import { CCXT_EXCHANGE_IDS } from "../../src/Exchange/ccxtIds.js"

describe("the generated ccxt exchange ids", () => {
  it("are exactly the installed ccxt's (regenerate with node scripts/ccxt-ids.mjs after upgrading ccxt)", async () => {
    const ccxt = (await import("ccxt")).default
    expect([...CCXT_EXCHANGE_IDS]).toEqual([...ccxt.exchanges])
  })
})
