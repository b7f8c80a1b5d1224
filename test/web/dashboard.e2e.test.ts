import { mkdirSync } from "node:fs"
import { join } from "node:path"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { emulatorEnv } from "../support/emulatorServer.js"
import { startStreamServer, type StreamServer } from "../streams/server.js"
import { candlePixels, ensureDashboardBuilt, launchChromium, type PageProblems, watchPage } from "./browser.js"

// the page, the server and the exchange emulator (live clock) in a real headless Chromium; the README's screenshots
// are refreshed with SCREENSHOTS=docs (a test run otherwise leaves the committed ones alone)
const SCREENSHOTS = join(import.meta.dirname, "..", "..", process.env["SCREENSHOTS"] ?? "test-results/screenshots")

let emulator: Emulator
let server: StreamServer
let browser: Browser

beforeAll(async () => {
  ensureDashboardBuilt()
  emulator = await startEmulator({ clock: "live", startTime: Math.floor(Date.now() / 1000) * 1000, seed: 42 })
  server = await startStreamServer(emulatorEnv(emulator, { STREAM_STALL_TIMEOUT: "3", EXCHANGE_TIMEOUT: "10" }))
  browser = await launchChromium()
  mkdirSync(SCREENSHOTS, { recursive: true })
}, 240_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await emulator?.close()
})

const text = (page: Page, testId: string) => page.getByTestId(testId).innerText()
const attribute = async (page: Page, testId: string, name: string) =>
  (await page.getByTestId(testId).getAttribute(name)) ?? ""

/** Waits until `read` gives a value other than `before` (the page updated by itself). */
const changes = async (read: () => Promise<string>, before: string, timeout = 20_000): Promise<string> => {
  const until = Date.now() + timeout
  for (;;) {
    const now = await read()
    if (now !== before && now !== "") return now
    if (Date.now() > until) throw new Error(`still ${JSON.stringify(before)} after ${timeout} ms`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

const expectClean = (problems: PageProblems) => {
  expect(problems.failedResponses).toEqual([])
  expect(problems.consoleErrors).toEqual([])
  expect(problems.pageErrors).toEqual([])
  expect(problems.foreignRequests).toEqual([])
}

const open = async (path: string, viewport = { width: 1280, height: 800 }) => {
  const context = await browser.newContext({ viewport, ...(viewport.width < 600 ? { isMobile: true } : {}) })
  const page = await context.newPage()
  const problems = watchPage(page, server.http)
  await page.goto(`${server.http}${path}`)
  await expect.poll(() => text(page, "connection-status"), { timeout: 20_000 }).toBe("live")
  return { page, problems, context }
}

describe("dashboard in Chromium", () => {
  it("shows live prices, candles, the book and trades, with no error and no request off the machine", async () => {
    const { page, problems, context } = await open("/?exchange=binance&symbol=BTC/USDT&interval=1m")
    expect(await page.getByTestId("exchange-select").inputValue()).toBe("binance")
    expect(await page.getByTestId("symbol-select").inputValue()).toBe("BTC/USDT")
    expect(await page.getByTestId("interval-select").inputValue()).toBe("1m")

    // the last price is a BTC price and moves by itself
    await expect.poll(() => attribute(page, "last-price", "data-value"), { timeout: 20_000 }).not.toBe("")
    const price = await attribute(page, "last-price", "data-value")
    expect(Number(price)).toBeGreaterThan(10_000)
    expect(await text(page, "last-price")).toMatch(/^\d{1,3}(,\d{3})+\.\d{2}$/)
    await changes(() => attribute(page, "last-price", "data-value"), price)

    // the chart holds the history and draws it: up and down candles on its canvas
    await expect.poll(() => attribute(page, "candles-chart", "data-candles"), { timeout: 20_000 }).not.toBe("")
    expect(Number(await attribute(page, "candles-chart", "data-candles"))).toBeGreaterThanOrEqual(300)
    await expect.poll(async () => (await candlePixels(page)).up, { timeout: 10_000 }).toBeGreaterThan(50)
    expect((await candlePixels(page)).down).toBeGreaterThan(50)
    // the open candle moves: its close, or the next candle starting
    const lastCandle = async () =>
      `${await attribute(page, "candles-chart", "data-last-time")}:${await attribute(page, "candles-chart", "data-last-close")}`
    await changes(lastCandle, await lastCandle())

    // the book: asks above bids, twelve levels a side, updating
    const book = page.getByTestId("orderbook")
    await expect.poll(() => book.locator(".bids .book-row:not(.empty)").count(), { timeout: 10_000 }).toBe(12)
    expect(await book.locator(".asks .book-row:not(.empty)").count()).toBe(12)
    const bestBid = Number(await attribute(page, "orderbook", "data-best-bid"))
    const bestAsk = Number(await attribute(page, "orderbook", "data-best-ask"))
    expect(bestBid).toBeGreaterThan(10_000)
    expect(bestBid).toBeLessThan(bestAsk)
    await changes(() => book.innerText(), await book.innerText())

    // the tape: newest first, buys and sells coloured, updating
    const tape = page.getByTestId("trades")
    await expect.poll(() => tape.locator(".trade-row").count(), { timeout: 10_000 }).toBeGreaterThan(5)
    const sides = await tape.locator(".trade-row").evaluateAll((rows) => rows.map((row) => row.className))
    expect(sides.every((c) => c === "trade-row buy" || c === "trade-row sell")).toBe(true)
    await changes(() => attribute(page, "trades", "data-newest"), await attribute(page, "trades", "data-newest"))

    // the watchlist: several markets on the same connection, each with its live price
    const watch = page.getByTestId("watchlist")
    await expect.poll(() => watch.locator(".watch-open").count(), { timeout: 10_000 }).toBe(3)
    expect(await watch.locator(".watch-symbol").allInnerTexts()).toEqual(["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    await expect
      .poll(async () => (await watch.locator(".watch-last").allInnerTexts()).every((t) => /\d/.test(t)), {
        timeout: 10_000
      })
      .toBe(true)

    // a moment for the chart and the flash to settle, then the README's picture
    await page.waitForTimeout(1500)
    await page.screenshot({ path: join(SCREENSHOTS, "dashboard.png") })
    // everything above came over one multiplexed connection
    expect(problems.webSockets).toEqual([`${server.ws}/ws`])
    expectClean(problems)
    await context.close()
  }, 120_000)

  it("switches exchange, symbol and interval, keeping the choice in the URL", async () => {
    const { page, problems, context } = await open("/?exchange=binance&symbol=BTC/USDT&interval=1m")
    await expect.poll(() => attribute(page, "last-price", "data-value"), { timeout: 20_000 }).not.toBe("")

    // kraken has no BTC/USDT: its BTC/USD opens, with the same interval
    await page.getByTestId("exchange-select").selectOption("kraken")
    await expect.poll(() => page.getByTestId("symbol-select").inputValue(), { timeout: 10_000 }).toBe("BTC/USD")
    expect(new URL(page.url()).search).toBe("?exchange=kraken&symbol=BTC/USD&interval=1m")
    await expect.poll(() => text(page, "connection-status"), { timeout: 20_000 }).toBe("live")

    // the symbol box filters as one types and opens the picked market
    const symbol = page.getByTestId("symbol-select")
    await symbol.click()
    await symbol.fill("eth")
    await expect
      .poll(() => page.locator("#symbol-results [role=option]").allInnerTexts(), { timeout: 10_000 })
      .toEqual(["ETH/USD"])
    await page.locator('#symbol-results [data-symbol="ETH/USD"]').click()
    await expect
      .poll(() => new URL(page.url()).search, { timeout: 10_000 })
      .toBe("?exchange=kraken&symbol=ETH/USD&interval=1m")
    // an ETH price (hundreds to thousands), not BTC's
    await expect
      .poll(async () => Number(await attribute(page, "last-price", "data-value")), { timeout: 20_000 })
      .toBeLessThan(10_000)
    await expect.poll(() => attribute(page, "orderbook", "data-best-bid"), { timeout: 20_000 }).toMatch(/^\d{3,4}\./)

    // 5-minute candles: every candle starts on a 5-minute boundary
    await page.getByTestId("interval-select").selectOption("5m")
    await expect.poll(() => new URL(page.url()).search).toBe("?exchange=kraken&symbol=ETH/USD&interval=5m")
    await expect
      .poll(async () => Number(await attribute(page, "candles-chart", "data-candles")), { timeout: 20_000 })
      .toBeGreaterThanOrEqual(300)
    expect(Number(await attribute(page, "candles-chart", "data-last-time")) % 300_000).toBe(0)

    // back goes to the previous view
    await page.goBack()
    await expect.poll(() => page.getByTestId("interval-select").inputValue(), { timeout: 10_000 }).toBe("1m")

    // a watchlist entry (the first view's exchange) opens its market
    await page.getByTestId("watchlist").locator('[data-symbol="ETH/USDT"]').click()
    await expect
      .poll(() => new URL(page.url()).search, { timeout: 10_000 })
      .toBe("?exchange=binance&symbol=ETH/USDT&interval=1m")
    expect(await page.getByTestId("exchange-select").inputValue()).toBe("binance")
    expect(await page.getByTestId("symbol-select").inputValue()).toBe("ETH/USDT")
    expectClean(problems)
    await context.close()
  }, 120_000)

  it("loads older candles when the chart is scrolled to the left", async () => {
    const { page, problems, context } = await open("/?exchange=binance&symbol=SOL/USDT&interval=1m")
    const count = () => attribute(page, "candles-chart", "data-candles")
    await expect.poll(async () => Number(await count()), { timeout: 20_000 }).toBeGreaterThanOrEqual(300)
    const before = Number(await count())
    const box = await page.getByTestId("candles-chart").boundingBox()
    if (box === null) throw new Error("the chart has no box")
    // drag the time axis to the right, towards older candles, until they are paged in (a live candle may add one
    // meanwhile, so the loop waits for a page, not for any change)
    for (let i = 0; i < 10 && Number(await count()) < before + 290; i++) {
      await page.mouse.move(box.x + 100, box.y + box.height / 2)
      await page.mouse.down()
      await page.mouse.move(box.x + box.width - 100, box.y + box.height / 2, { steps: 8 })
      await page.mouse.up()
      await page.waitForTimeout(500)
    }
    await expect.poll(async () => Number(await count()), { timeout: 20_000 }).toBeGreaterThanOrEqual(before + 290)
    expectClean(problems)
    await context.close()
  }, 120_000)

  it("shows reconnecting while the exchange's WebSocket is down, then recovers", async () => {
    const { page, problems, context } = await open("/?exchange=kraken&symbol=BTC/USD&interval=1m")
    await expect.poll(() => attribute(page, "last-price", "data-value"), { timeout: 20_000 }).not.toBe("")

    emulator.inject({ kind: "ws-close", exchange: "kraken" })
    await expect.poll(() => text(page, "connection-status"), { timeout: 20_000 }).toBe("reconnecting")
    expect(await page.locator(".price-header.is-stale").count()).toBe(1)

    emulator.clearFaults()
    await expect.poll(() => text(page, "connection-status"), { timeout: 30_000 }).toBe("live")
    const price = await attribute(page, "last-price", "data-value")
    await changes(() => attribute(page, "last-price", "data-value"), price)
    expectClean(problems)
    await context.close()
  }, 120_000)

  it("fits a phone screen", async () => {
    const { page, problems, context } = await open("/?exchange=binance&symbol=ETH/USDT&interval=5m", {
      width: 390,
      height: 844
    })
    await expect.poll(async () => (await candlePixels(page)).up, { timeout: 20_000 }).toBeGreaterThan(20)
    await expect
      .poll(() => page.getByTestId("trades").locator(".trade-row").count(), { timeout: 10_000 })
      .toBeGreaterThan(3)
    // nothing wider than the screen
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390)
    await page.waitForTimeout(1500)
    await page.screenshot({ path: join(SCREENSHOTS, "dashboard-phone.png"), fullPage: true })
    expectClean(problems)
    await context.close()
  }, 120_000)
})

describe("dashboard with API keys", () => {
  let keyed: StreamServer

  beforeAll(async () => {
    keyed = await startStreamServer(emulatorEnv(emulator, { API_KEYS: "k1", EXCHANGE_TIMEOUT: "10" }))
  }, 60_000)

  afterAll(async () => {
    await keyed?.close()
  })

  it("loads without a key, asks for one once and keeps it in the browser", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    const page = await context.newPage()
    const problems = watchPage(page, keyed.http)
    await page.goto(`${keyed.http}/?exchange=kraken&symbol=BTC/USD&interval=1m`)

    const prompt = page.getByTestId("api-key-prompt")
    await expect.poll(() => prompt.isVisible(), { timeout: 20_000 }).toBe(true)
    await prompt.getByLabel("API key").fill("wrong")
    await prompt.getByRole("button", { name: "Connect" }).click()
    await expect.poll(() => prompt.innerText(), { timeout: 10_000 }).toContain("That key was not accepted.")

    await prompt.getByLabel("API key").fill("k1")
    await prompt.getByRole("button", { name: "Connect" }).click()
    await expect.poll(() => prompt.count(), { timeout: 10_000 }).toBe(0)
    await expect.poll(() => page.getByTestId("exchange-select").inputValue(), { timeout: 10_000 }).toBe("kraken")
    // the REST snapshot arrives with the key
    await expect.poll(() => attribute(page, "last-price", "data-value"), { timeout: 20_000 }).not.toBe("")
    expect(await page.evaluate<string | null>("localStorage.getItem('mcds.apiKey')")).toBe("k1")

    // once is enough: a reload goes straight to the data
    await page.reload()
    await expect.poll(() => attribute(page, "last-price", "data-value"), { timeout: 20_000 }).not.toBe("")
    expect(await prompt.count()).toBe(0)
    // the stream takes the key as the api_key query parameter (browsers cannot set WebSocket headers)
    await expect.poll(() => text(page, "connection-status"), { timeout: 20_000 }).toBe("live")

    // the only refusals were the keyless and wrong-key requests; nothing left the machine
    expect(problems.pageErrors).toEqual([])
    expect(problems.foreignRequests).toEqual([])
    expect(problems.failedResponses.every((r) => r.startsWith("401 "))).toBe(true)
    expect(problems.failedResponses.length).toBeGreaterThanOrEqual(2)
    await context.close()
  }, 120_000)
})
