import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { fakeCmc, QUOTES_PATH } from "../support/fakeCmc.js"

const get = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const res = await fetch(url, { headers })
    return { status: res.status, body: (await res.json()) as unknown }
  })

describe("fake CMC", () => {
  it.scopedLive("answers like CMC: 401 envelopes for missing or wrong keys, 200 with data otherwise", () =>
    Effect.gen(function* () {
      const fake = yield* fakeCmc()
      const url = `${fake.baseUrl}/cryptocurrency/quotes/latest?symbol=BTC,FOO&convert=USD`

      const missing = yield* get(url)
      expect(missing.status).toBe(401)
      expect(missing.body).toMatchObject({ status: { error_code: 1002, error_message: "API key missing." } })

      const wrong = yield* get(url, { "X-CMC_PRO_API_KEY": "nope" })
      expect(wrong.status).toBe(401)
      expect(wrong.body).toMatchObject({ status: { error_code: 1001, error_message: "This API Key is invalid." } })

      const ok = yield* get(url, { "X-CMC_PRO_API_KEY": fake.apiKey })
      expect(ok.status).toBe(200)
      expect(ok.body).toMatchObject({
        status: { error_code: 0, error_message: null, credit_count: 1 },
        data: { BTC: { id: 1, symbol: "BTC", quote: { USD: { price: 60512.34 } } } }
      })
      expect(Object.keys((ok.body as { data: object }).data)).toEqual(["BTC"])

      const none = yield* get(url.replace("BTC,FOO", "FOO"), { "X-CMC_PRO_API_KEY": fake.apiKey })
      expect(none.status).toBe(400)
      expect(none.body).toMatchObject({
        status: { error_code: 400, error_message: 'Invalid value for "symbol": "FOO"' }
      })

      expect(fake.requestCount()).toBe(4)
      expect(fake.requests.map((r) => r.path)).toEqual([QUOTES_PATH, QUOTES_PATH, QUOTES_PATH, QUOTES_PATH])
    })
  )

  it.scopedLive("plays scripted steps in order, then falls back to normal answers", () =>
    Effect.gen(function* () {
      const fake = yield* fakeCmc()
      fake.script({ kind: "rateLimited", retryAfter: "7" }, { kind: "error", status: 500 })
      const url = `${fake.baseUrl}/cryptocurrency/quotes/latest?symbol=ETH&convert=EUR`
      const headers = { "X-CMC_PRO_API_KEY": fake.apiKey }
      const limited = yield* Effect.promise(() => fetch(url, { headers }))
      expect([limited.status, limited.headers.get("retry-after")]).toEqual([429, "7"])
      expect(yield* Effect.promise(() => limited.json())).toMatchObject({ status: { error_code: 1008 } })
      expect((yield* get(url, headers)).status).toBe(500)
      const ok = yield* get(url, headers)
      expect(ok.body).toMatchObject({ data: { ETH: { quote: { EUR: { price: 2801.63 } } } } })
    })
  )
})
