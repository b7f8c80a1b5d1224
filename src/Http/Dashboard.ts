import { HttpLayerRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { RouteNotFound } from "../Domain/Errors.js"
import { makeObserve } from "./Observability.js"
import { errorResponse } from "./Responses.js"
import { pathOf } from "./RouteTable.js"

/** Everything the page loads comes from this server: no CDN, no external font, no inline script or style. */
export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const CONTENT_TYPES: ReadonlyMap<string, string> = new Map([
  ["js", "text/javascript; charset=utf-8"],
  ["mjs", "text/javascript; charset=utf-8"],
  ["css", "text/css; charset=utf-8"],
  ["svg", "image/svg+xml"],
  ["png", "image/png"],
  ["ico", "image/x-icon"],
  ["woff2", "font/woff2"],
  ["json", "application/json"],
  ["map", "application/json"],
  ["txt", "text/plain; charset=utf-8"]
])

// Vite names every asset <name>-<hash>.<ext> in one flat directory: a plain file name is all a request may ask for,
// so no path (../, %2e%2e, backslashes, NUL) ever reaches the file system.
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/

/** The content type of a served asset, or undefined for a name or extension the dashboard never serves. */
export const assetContentType = (name: string): string | undefined => {
  if (!ASSET_NAME.test(name)) return undefined
  const dot = name.lastIndexOf(".")
  return dot < 1 ? undefined : CONTENT_TYPES.get(name.slice(dot + 1).toLowerCase())
}

/** Whether a request wants a web page: browsers navigating send `Accept: text/html`. */
export const acceptsHtml = (accept: string | undefined): boolean =>
  accept !== undefined && /(^|,)\s*text\/html\s*(;|,|$)/i.test(accept)

/** The package root (the nearest directory with a package.json above this module) + dist/web. */
export const defaultDashboardDir = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "dist", "web")
    const parent = dirname(dir)
    if (parent === dir) return join(process.cwd(), "dist", "web")
    dir = parent
  }
}

const securityHeaders = {
  "content-security-policy": DASHBOARD_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
}

const notBuiltPage = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>Dashboard not built</title></head>
  <body>
    <h1>The dashboard is not built</h1>
    <p>Build it with <code>npm run build</code> (or only the web app: <code>npm run build:web</code>) and reload.
    During development, <code>npm run dev:web</code> serves it with live reload against this server.</p>
    <p>The API works without it: see <a href="/docs">/docs</a>.</p>
  </body>
</html>
`

const readOrUndefined = (path: string) =>
  Effect.promise(() =>
    readFile(path).then(
      (bytes): Uint8Array | undefined => bytes,
      () => undefined
    )
  )

const ASSETS_PREFIX = "/assets/"

/** index.html: never cached without revalidation, so a new build is picked up at once. */
const indexPage = (dir: string) =>
  Effect.map(readOrUndefined(join(dir, "index.html")), (bytes) =>
    bytes === undefined
      ? HttpServerResponse.text(notBuiltPage, {
          status: 503,
          contentType: "text/html; charset=utf-8",
          headers: { ...securityHeaders, "cache-control": "no-store", vary: "Accept, Origin" }
        })
      : HttpServerResponse.uint8Array(bytes, {
          contentType: "text/html; charset=utf-8",
          headers: { ...securityHeaders, "cache-control": "no-cache", vary: "Accept, Origin" }
        })
  )

/** A hashed asset: cached for a year (a new build has new names); unknown names get the JSON 404 of the API. */
const asset = (dir: string, path: string) => {
  const name = path.slice(ASSETS_PREFIX.length)
  const contentType = assetContentType(name)
  const missing = errorResponse(new RouteNotFound({ message: `No dashboard asset ${path}` }))
  if (contentType === undefined) return Effect.succeed(missing)
  return Effect.map(readOrUndefined(join(dir, "assets", name)), (bytes) =>
    bytes === undefined
      ? missing
      : HttpServerResponse.uint8Array(bytes, {
          contentType,
          headers: { ...securityHeaders, "cache-control": "public, max-age=31536000, immutable" }
        })
  )
}

/**
 * The dashboard (web/, built into `dir`) at `/` for browsers, and its assets under /assets/. Requests for `/` that
 * do not accept HTML keep getting the JSON index. A global middleware rather than routes: `/` is already routed,
 * and the page must load before the user gave an API key (it asks for one), so it is answered ahead of the
 * API-key check when the composition builds it first; it is logged and counted like any request.
 */
export const DashboardRoutesFrom = (dir: string) =>
  HttpLayerRouter.middleware(
    Effect.map(
      makeObserve,
      (observe) => (app: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>) =>
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          if (request.method !== "GET" && request.method !== "HEAD") return yield* app
          const path = pathOf(request.url)
          if (path === "/" && acceptsHtml(request.headers["accept"])) return yield* observe(indexPage(dir))
          if (path.startsWith(ASSETS_PREFIX)) return yield* observe(asset(dir, path))
          return yield* app
        })
    ),
    { global: true }
  )

/** The dashboard built by `npm run build` (dist/web of the package). */
export const DashboardRoutes = DashboardRoutesFrom(defaultDashboardDir())
