import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { chromium, type Browser, type Page } from "playwright-core"

/** Debian's chromium (`apt-get install chromium`); playwright-core never downloads a browser. */
export const CHROMIUM = "/usr/bin/chromium"

// launch flags that work as root on a closed network (docs: browser-testing.md)
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

const ROOT = join(import.meta.dirname, "..", "..")
const WEB_SRC = join(ROOT, "web")
export const DIST_WEB = join(ROOT, "dist", "web")

const newestMtime = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce((newest, entry) => {
    const path = join(dir, entry.name)
    return Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }, 0)

/** Builds web/ into dist/web when it is missing or older than its sources, so `npm test` works on a fresh clone. */
export const ensureDashboardBuilt = (): void => {
  const index = join(DIST_WEB, "index.html")
  if (existsSync(index) && statSync(index).mtimeMs >= newestMtime(WEB_SRC)) return
  execFileSync(
    join(ROOT, "node_modules", ".bin", "vite"),
    ["build", "--config", "web/vite.config.ts", "--logLevel", "warn"],
    {
      cwd: ROOT,
      // vitest runs with NODE_ENV=test, which would give Vite React's development build (and StrictMode's double effects)
      env: { ...process.env, NODE_ENV: "production" },
      stdio: "inherit"
    }
  )
}

export const launchChromium = (): Promise<Browser> => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install it with apt-get install -y chromium (.ci/run does)`)
  }
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS })
}

/** What a page did that a clean page must not: console errors, uncaught errors, requests to another host. */
export interface PageProblems {
  readonly consoleErrors: Array<string>
  readonly pageErrors: Array<string>
  readonly foreignRequests: Array<string>
  /** Answers of 400 and above, with their URLs (the console only says "Failed to load resource"). */
  readonly failedResponses: Array<string>
  /** Every WebSocket the page opened. */
  readonly webSockets: Array<string>
}

export const watchPage = (page: Page, origin: string): PageProblems => {
  const problems: PageProblems = {
    consoleErrors: [],
    pageErrors: [],
    foreignRequests: [],
    failedResponses: [],
    webSockets: []
  }
  const host = new URL(origin).host
  page.on("console", (message) => {
    if (message.type() === "error") problems.consoleErrors.push(message.text())
  })
  page.on("response", (response) => {
    if (response.status() >= 400) problems.failedResponses.push(`${response.status()} ${response.url()}`)
  })
  page.on("pageerror", (error) => problems.pageErrors.push(error.message))
  page.on("websocket", (socket) => {
    problems.webSockets.push(socket.url())
    if (new URL(socket.url()).host !== host) problems.foreignRequests.push(socket.url())
  })
  page.on("request", (request) => {
    const url = new URL(request.url())
    if (url.protocol !== "data:" && url.host !== host) problems.foreignRequests.push(request.url())
  })
  return problems
}

/**
 * How many pixels of the chart's canvases have the candles' up and down colours (#26a69a, #ef5350), read with
 * getImageData: a drawn chart has both.
 */
export const candlePixels = (page: Page): Promise<{ up: number; down: number; canvases: number }> =>
  page.evaluate<{ up: number; down: number; canvases: number }>(`(() => {
    const near = (d, i, r, g, b) => Math.abs(d[i] - r) < 12 && Math.abs(d[i + 1] - g) < 12 && Math.abs(d[i + 2] - b) < 12
    let up = 0, down = 0, canvases = 0
    for (const canvas of document.querySelectorAll('[data-testid="candles-chart"] canvas')) {
      if (canvas.width === 0 || canvas.height === 0) continue
      const context = canvas.getContext("2d")
      if (context === null) continue
      canvases += 1
      const data = context.getImageData(0, 0, canvas.width, canvas.height).data
      for (let i = 0; i < data.length; i += 4) {
        if (near(data, i, 0x26, 0xa6, 0x9a)) up += 1
        else if (near(data, i, 0xef, 0x53, 0x50)) down += 1
      }
    }
    return { up, down, canvases }
  })()`)
