import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  acceptsHtml,
  assetContentType,
  DASHBOARD_CSP,
  DashboardRoutesFrom,
  defaultDashboardDir
} from "../../src/Http/Dashboard.js"
import { ApiTestServer, get } from "../support/apiServer.js"

const BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

// a built dashboard as Vite lays it out: index.html and hashed assets in one flat directory
const dist = mkdtempSync(join(tmpdir(), "dashboard-"))
mkdirSync(join(dist, "assets"))
const INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-AbC123.js"></script></head></html>'
writeFileSync(join(dist, "index.html"), INDEX)
writeFileSync(join(dist, "assets", "index-AbC123.js"), "console.log(1)\n")
writeFileSync(join(dist, "assets", "index-XyZ789.css"), "body{}\n")
writeFileSync(join(dist, "assets", "favicon-Q1w2E3.svg"), "<svg/>")
writeFileSync(join(dist, "secret.txt"), "not an asset")

const serverWith = (dir: string) =>
  HttpLayerRouter.serve(
    Layer.mergeAll(
      HttpLayerRouter.add("GET", "/", HttpServerResponse.unsafeJson({ name: "index" })),
      HttpLayerRouter.add("GET", "/v1/thing", HttpServerResponse.unsafeJson({ thing: true }))
    ).pipe(Layer.provideMerge(DashboardRoutesFrom(dir))),
    { disableLogger: true, disableListenLog: true }
  ).pipe(Layer.provideMerge(NodeHttpServer.layerTest))

const expectPageHeaders = (headers: Readonly<Record<string, string>>) => {
  expect(headers["content-security-policy"]).toBe(DASHBOARD_CSP)
  expect(headers["x-content-type-options"]).toBe("nosniff")
}

describe("dashboard route", () => {
  layer(serverWith(dist))("with a built dashboard", (it) => {
    it.effect("serves index.html to browsers, never cached without revalidation", () =>
      Effect.gen(function* () {
        const page = yield* get("/", { accept: BROWSER_ACCEPT })
        expect(page.status).toBe(200)
        expect(page.text).toBe(INDEX)
        expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
        expect(page.headers["cache-control"]).toBe("no-cache")
        expect(page.headers["vary"]).toBe("Accept, Origin")
        expectPageHeaders(page.headers)
        // the view's query string does not matter to the server
        const withQuery = yield* get("/?exchange=kraken&symbol=BTC/USD&interval=5m", { accept: "text/html" })
        expect(withQuery.text).toBe(INDEX)
      })
    )

    it.effect("keeps the JSON index for API clients", () =>
      Effect.gen(function* () {
        for (const accept of ["application/json", "*/*", ""]) {
          const index = yield* get("/", accept === "" ? {} : { accept })
          expect(index.status).toBe(200)
          expect(index.json).toEqual({ name: "index" })
        }
        expect((yield* get("/v1/thing", { accept: BROWSER_ACCEPT })).json).toEqual({ thing: true })
      })
    )

    it.effect("serves hashed assets with their content type for a year", () =>
      Effect.gen(function* () {
        const expected: ReadonlyArray<[string, string, string]> = [
          ["/assets/index-AbC123.js", "text/javascript; charset=utf-8", "console.log(1)\n"],
          ["/assets/index-XyZ789.css", "text/css; charset=utf-8", "body{}\n"],
          ["/assets/favicon-Q1w2E3.svg", "image/svg+xml", "<svg/>"]
        ]
        for (const [path, type, body] of expected) {
          const asset = yield* get(path)
          expect(asset.status).toBe(200)
          expect(asset.headers["content-type"]).toBe(type)
          expect(asset.headers["cache-control"]).toBe("public, max-age=31536000, immutable")
          expect(asset.text).toBe(body)
          expectPageHeaders(asset.headers)
        }
      })
    )

    it.effect("answers unknown assets and path tricks with the JSON 404", () =>
      Effect.gen(function* () {
        for (const path of [
          "/assets/missing-123.js",
          "/assets/..%2fsecret.txt",
          "/assets/.hidden.js",
          "/assets/index-AbC123.exe",
          "/assets/",
          "/assets/a%00.js",
          "/assets/sub/dir.js"
        ]) {
          const response = yield* get(path)
          expect(response.status, path).toBe(404)
          expect(response.headers["content-type"], path).toContain("application/json")
          expect((response.json as { code: string }).code).toBe("not_found")
        }
        // the client resolves dot segments itself: /secret.txt is no dashboard path, and nothing serves it
        for (const path of ["/assets/../secret.txt", "/assets/%2e%2e/secret.txt"]) {
          const dotted = yield* get(path)
          expect(dotted.status).toBe(404)
          expect(dotted.text).not.toContain("not an asset")
        }
      })
    )
  })

  layer(serverWith(join(dist, "not-built")))("without a build", (it) => {
    it.effect("tells browsers how to build it, and API clients still get JSON", () =>
      Effect.gen(function* () {
        const page = yield* get("/", { accept: BROWSER_ACCEPT })
        expect(page.status).toBe(503)
        expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
        expect(page.headers["cache-control"]).toBe("no-store")
        expect(page.text).toContain("npm run build")
        expect(page.text).toContain("npm run build:web")
        expectPageHeaders(page.headers)
        expect((yield* get("/", { accept: "application/json" })).json).toEqual({ name: "index" })
        expect((yield* get("/assets/index-AbC123.js")).status).toBe(404)
      })
    )
  })

  // the real composition: the page loads before the user has given a key; the API still requires one
  layer(ApiTestServer({ API_KEYS: "k1" }))("in the server, with API keys", (it) => {
    it.effect("answers the page without a key and the JSON index only with one", () =>
      Effect.gen(function* () {
        // dist/web may be (re)built by the browser tests meanwhile: either the page or the how-to-build page, no 401
        const page = yield* get("/", { accept: BROWSER_ACCEPT })
        expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
        if (page.status === 200) expect(page.text).toContain('<div id="root"></div>')
        else {
          expect(page.status).toBe(503)
          expect(page.text).toContain("npm run build")
        }
        expect((yield* get("/", { accept: "application/json" })).status).toBe(401)
        const index = yield* get("/", { accept: "application/json", "x-api-key": "k1" })
        expect(index.status).toBe(200)
        expect((index.json as { docs: string }).docs).toBe("/docs")
        expect((yield* get("/v1/exchanges", { accept: BROWSER_ACCEPT })).status).toBe(401)
      })
    )
  })
})

describe("dashboard helpers", () => {
  it("recognises browser navigations", () => {
    expect(acceptsHtml(BROWSER_ACCEPT)).toBe(true)
    expect(acceptsHtml("text/html")).toBe(true)
    expect(acceptsHtml("application/json, text/html;q=0.5")).toBe(true)
    expect(acceptsHtml("application/json")).toBe(false)
    expect(acceptsHtml("*/*")).toBe(false)
    expect(acceptsHtml("text/htmlx")).toBe(false)
    expect(acceptsHtml(undefined)).toBe(false)
  })

  it("maps only plain asset names to content types", () => {
    expect(assetContentType("index-AbC.js")).toBe("text/javascript; charset=utf-8")
    expect(assetContentType("x.WOFF2")).toBe("font/woff2")
    expect(assetContentType("../x.js")).toBeUndefined()
    expect(assetContentType(".js")).toBeUndefined()
    expect(assetContentType("noext")).toBeUndefined()
    expect(assetContentType("x.html")).toBeUndefined()
  })

  it("finds dist/web of the package", () => {
    expect(defaultDashboardDir()).toBe(join(process.cwd(), "dist", "web"))
  })
})
