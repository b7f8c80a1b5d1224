import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { readFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { pathToFileURL } from "node:url"

const resolver = createRequire(import.meta.url)

/** Every path the docs pages load: all served here, none from a CDN, all public (no API key, no rate limit). */
export const DOCS_PATHS = {
  swagger: "/docs",
  swaggerCss: "/docs/swagger-ui.css",
  swaggerJs: "/docs/swagger-ui-bundle.js",
  swaggerInit: "/docs/swagger-init.js",
  redoc: "/redoc",
  redocJs: "/redoc/redoc.standalone.js"
} as const

/**
 * Only this server's origin. ReDoc's <style> elements are allowed by a per-request nonce (see REDOC_EDITS); its
 * search index runs in a worker made from a blob: URL (local, not a request). Swagger UI and ReDoc draw icons from
 * data: images.
 */
const contentSecurityPolicy = (styleNonce?: string) =>
  [
    "default-src 'self'",
    "script-src 'self'",
    styleNonce === undefined ? "style-src 'self'" : `style-src 'self' 'nonce-${styleNonce}'`,
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'"
  ].join("; ")

const pageHeaders = (styleNonce?: string) => ({
  "content-security-policy": contentSecurityPolicy(styleNonce),
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store"
})

const assetHeaders = { "x-content-type-options": "nosniff", "cache-control": "public, max-age=86400" }

const page = (title: string, head: string, body: string) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title}</title>
    <link rel="icon" href="data:," />
${head}
  </head>
  <body>
${body}
  </body>
</html>
`

const swaggerHtml = page(
  "mcp-crypto-data-server API documentation",
  `    <link rel="stylesheet" href="${DOCS_PATHS.swaggerCss}" />`,
  `    <div id="swagger-ui"></div>
    <script src="${DOCS_PATHS.swaggerJs}"></script>
    <script src="${DOCS_PATHS.swaggerInit}"></script>`
)

// validatorUrl null: Swagger UI would otherwise load a badge from validator.swagger.io
const swaggerInit = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null })\n`

const redocHtml = (nonce: string) =>
  page(
    "mcp-crypto-data-server API reference",
    "",
    `    <redoc spec-url="/openapi.json"></redoc>
    <script src="${DOCS_PATHS.redocJs}" nonce="${nonce}"></script>`
  )

/**
 * Two edits of ReDoc's bundle. Its sidebar shows a logo from cdn.redoc.ly: an empty local image replaces it. Its
 * stylesheets are injected as <style> elements, some as soon as the bundle runs: webpack's nonce, which they all
 * carry, is taken from the nonce of the bundle's own <script> element (the element keeps it in a property after
 * the browser hides the attribute).
 */
const REDOC_EDITS: ReadonlyArray<readonly [from: string, to: string]> = [
  ["https://cdn.redoc.ly/redoc/logo-mini.svg", "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"],
  ["r.nc=void 0;", "r.nc=document.currentScript&&document.currentScript.nonce||void 0;"]
]

const editRedoc = (source: string): string =>
  REDOC_EDITS.reduce((text, [from, to]) => {
    if (text.split(from).length !== 2) throw new Error(`redoc bundle changed: expected "${from}" exactly once`)
    return text.replace(from, to)
  }, source)

// Read the bundles on first request, not at start-up; they never change while the process runs.
const redocBundle = Effect.cached(
  Effect.promise(async () => {
    const source = await readFile(resolver.resolve("redoc/bundles/redoc.standalone.js"), "utf8")
    return Buffer.from(editRedoc(source))
  })
)

interface SwaggerAssets {
  readonly css: string
  readonly javascript: string
}

const isSwaggerAssets = (module: unknown): module is SwaggerAssets =>
  typeof module === "object" &&
  module !== null &&
  "css" in module &&
  typeof module.css === "string" &&
  "javascript" in module &&
  typeof module.javascript === "string"

/**
 * Swagger UI's own script and stylesheet, as @effect/platform ships them (which inlines both in its /docs page,
 * something a strict CSP forbids); served here as files instead.
 */
const swaggerAssets = Effect.cached(
  Effect.promise(async () => {
    const platform = dirname(resolver.resolve("@effect/platform/HttpApiSwagger"))
    const module: unknown = await import(pathToFileURL(join(platform, "internal", "httpApiSwagger.js")).href)
    if (!isSwaggerAssets(module)) throw new Error("@effect/platform no longer ships Swagger UI's assets")
    return { css: Buffer.from(module.css), javascript: Buffer.from(module.javascript) }
  })
)

const asset = (bytes: Uint8Array, contentType: string) =>
  HttpServerResponse.uint8Array(bytes, { contentType, headers: assetHeaders })

const html = (body: string, headers: Readonly<Record<string, string>>) =>
  HttpServerResponse.text(body, { contentType: "text/html; charset=utf-8", headers })

const script = (source: string) => asset(Buffer.from(source), "application/javascript; charset=utf-8")

/** Swagger UI at /docs and ReDoc at /redoc, both served from installed packages (no CDN), under a strict CSP. */
export const DocsRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const redoc = yield* redocBundle
    const swagger = yield* swaggerAssets
    yield* router.add("GET", DOCS_PATHS.swagger, html(swaggerHtml, pageHeaders()))
    yield* router.add(
      "GET",
      DOCS_PATHS.swaggerCss,
      Effect.map(swagger, (assets) => asset(assets.css, "text/css; charset=utf-8"))
    )
    yield* router.add(
      "GET",
      DOCS_PATHS.swaggerJs,
      Effect.map(swagger, (assets) => asset(assets.javascript, "application/javascript; charset=utf-8"))
    )
    yield* router.add("GET", DOCS_PATHS.swaggerInit, script(swaggerInit))
    yield* router.add(
      "GET",
      DOCS_PATHS.redoc,
      Effect.sync(() => {
        const nonce = randomBytes(16).toString("base64")
        return html(redocHtml(nonce), pageHeaders(nonce))
      })
    )
    yield* router.add(
      "GET",
      DOCS_PATHS.redocJs,
      Effect.map(redoc, (bytes) => asset(bytes, "application/javascript; charset=utf-8"))
    )
  })
)
