import { HttpApiSwagger, HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { Effect, Layer } from "effect"
import { readFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { Api } from "../Api.js"

const redocHtml = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>mcp-crypto-data-server API reference</title>
    <style>body { margin: 0; padding: 0; }</style>
  </head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="/redoc/redoc.standalone.js"></script>
  </body>
</html>
`

// Read the 1 MB bundle on first request, not at start-up; it never changes while the process runs.
const redocBundle = Effect.cached(
  Effect.promise(() => readFile(createRequire(import.meta.url).resolve("redoc/bundles/redoc.standalone.js")))
)

const ReDocRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const bundle = yield* redocBundle
    yield* router.add("GET", "/redoc", HttpServerResponse.html(redocHtml))
    yield* router.add(
      "GET",
      "/redoc/redoc.standalone.js",
      Effect.map(bundle, (bytes) =>
        HttpServerResponse.uint8Array(bytes, {
          contentType: "application/javascript; charset=utf-8",
          headers: { "cache-control": "public, max-age=86400" }
        })
      )
    )
  })
)

/** Swagger UI at /docs and ReDoc at /redoc, both served from installed packages (no CDN). */
export const DocsRoutes = Layer.mergeAll(HttpApiSwagger.layerHttpLayerRouter({ api: Api, path: "/docs" }), ReDocRoutes)
