import { Effect, Layer } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Exchange } from "../../src/Exchange/Exchange.js"
import { startStreamServer, type StreamServer } from "../streams/server.js"
import { makeMockExchange } from "../support/mockExchange.js"

const MockExchange = Layer.unwrapEffect(Effect.map(makeMockExchange, (mock) => mock.layer as Layer.Layer<Exchange>))

const directives = (policy: string): Map<string, string> =>
  new Map(
    policy.split(";").map((part) => {
      const [name = "", ...values] = part.trim().split(/\s+/)
      return [name, values.join(" ")] as const
    })
  )

/** Every URL the page's markup makes the browser load or follow: src=, href= and inline url(). */
const referencedUrls = (html: string): ReadonlyArray<string> =>
  [...html.matchAll(/\b(?:src|href|spec-url)\s*=\s*"([^"]*)"/g), ...html.matchAll(/url\(\s*["']?([^"')]+)/g)].map(
    (match) => match[1] ?? ""
  )

describe("docs pages: served locally under a strict Content-Security-Policy", () => {
  let server: StreamServer

  beforeAll(async () => {
    // API keys set: the docs and their assets must stay public all the same
    server = await startStreamServer({ API_KEYS: "a-key" }, MockExchange)
  })
  afterAll(() => server.close())

  const get = async (path: string) => {
    const response = await fetch(`${server.http}${path}`)
    return { status: response.status, headers: response.headers, text: await response.text() }
  }

  it.each(["/docs", "/redoc"])("%s: CSP allows only this origin, nosniff, no referrer", async (path) => {
    const page = await get(path)
    expect(page.status).toBe(200)
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8")
    expect(page.headers.get("x-content-type-options")).toBe("nosniff")
    expect(page.headers.get("referrer-policy")).toBe("no-referrer")
    const policy = page.headers.get("content-security-policy") ?? ""
    expect(policy).not.toMatch(/https?:|\*|'unsafe-inline'|'unsafe-eval'/)
    const csp = directives(policy)
    expect(csp.get("default-src")).toBe("'self'")
    expect(csp.get("script-src")).toBe("'self'")
    expect(csp.get("connect-src")).toBe("'self'")
    expect(csp.get("img-src")).toBe("'self' data:")
    expect(csp.get("font-src")).toBe("'self'")
    expect(csp.get("object-src")).toBe("'none'")
    expect(csp.get("frame-ancestors")).toBe("'none'")
    expect(csp.get("base-uri")).toBe("'none'")
  })

  it.each(["/docs", "/redoc"])(
    "%s: every URL in the page is this server's or data:, and each asset loads",
    async (path) => {
      const page = await get(path)
      const urls = referencedUrls(page.text)
      expect(urls.length).toBeGreaterThanOrEqual(2)
      for (const url of urls) expect(url).toMatch(/^(\/(?!\/)|data:)/)
      for (const url of urls.filter((u) => u.startsWith("/"))) {
        const asset = await get(url)
        expect(asset.status, url).toBe(200)
        if (url !== "/openapi.json") expect(asset.headers.get("x-content-type-options"), url).toBe("nosniff")
      }
    }
  )

  it("Swagger UI: stylesheet and scripts are files (no inline code), the spec comes from /openapi.json", async () => {
    const page = await get("/docs")
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
    expect(page.text).not.toMatch(/<style|\sstyle=/)
    expect(referencedUrls(page.text)).toEqual([
      "data:,",
      "/docs/swagger-ui.css",
      "/docs/swagger-ui-bundle.js",
      "/docs/swagger-init.js"
    ])
    const init = await get("/docs/swagger-init.js")
    expect(init.headers.get("content-type")).toBe("application/javascript; charset=utf-8")
    expect(init.text).toContain('url: "/openapi.json"')
    // without it Swagger UI loads a badge from validator.swagger.io
    expect(init.text).toContain("validatorUrl: null")
    expect(init.text).not.toMatch(/https?:/)
    const css = await get("/docs/swagger-ui.css")
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8")
    expect(css.text.length).toBeGreaterThan(100_000)
    expect(css.text).not.toMatch(/@import|url\(\s*["']?(https?:)?\/\//)
    const bundle = await get("/docs/swagger-ui-bundle.js")
    expect(bundle.text).toContain("SwaggerUIBundle")
  })

  it("ReDoc: one script with a fresh nonce that the CSP names for its styles; no logo from cdn.redoc.ly", async () => {
    const first = await get("/redoc")
    const second = await get("/redoc")
    const nonceOf = (page: { readonly text: string }) => /<script src="[^"]+" nonce="([^"]+)">/.exec(page.text)?.[1]
    const nonce = nonceOf(first)
    expect(nonce).toMatch(/^[A-Za-z0-9+/]{22}==$/)
    expect(nonceOf(second)).not.toBe(nonce)
    expect(directives(first.headers.get("content-security-policy") ?? "").get("style-src")).toBe(
      `'self' 'nonce-${nonce}'`
    )
    expect(first.text).toContain('<redoc spec-url="/openapi.json"></redoc>')
    expect(referencedUrls(first.text)).toEqual(["data:,", "/openapi.json", "/redoc/redoc.standalone.js"])
    const bundle = await get("/redoc/redoc.standalone.js")
    expect(bundle.headers.get("content-type")).toBe("application/javascript; charset=utf-8")
    expect(bundle.text.length).toBeGreaterThan(500_000)
    expect(bundle.text).not.toContain("cdn.redoc.ly")
    expect(bundle.text).toContain("r.nc=document.currentScript&&document.currentScript.nonce||void 0;")
  })

  it("the spec names no external logo or server", async () => {
    const spec = (await (await fetch(`${server.http}/openapi.json`)).json()) as {
      info: Record<string, unknown>
      servers: ReadonlyArray<{ url: string }>
    }
    expect(spec.info["x-logo"]).toBeUndefined()
    expect(spec.servers.map((s) => s.url)).toEqual(["/"])
  })
})
