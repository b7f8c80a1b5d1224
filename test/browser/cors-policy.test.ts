import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { AppConfig } from "../../src/AppConfig.js"
import { makeCorsPolicy, originOf } from "../../src/Http/Cors.js"

const corsOf = (env: Record<string, string>) =>
  Effect.runSync(
    Effect.either(Effect.map(Effect.provide(AppConfig, AppConfig.fromRecord(env)), (config) => config.corsOrigins))
  )

const policyOf = (env: Record<string, string>) => {
  const origins = corsOf(env)
  if (Either.isLeft(origins)) throw new Error(String(origins.left))
  return makeCorsPolicy(origins.right)
}

describe("CORS_ORIGINS", () => {
  it("defaults to any port of http(s)://localhost, 127.0.0.1 and [::1], and nothing else", () => {
    const policy = policyOf({})
    for (const origin of [
      "http://localhost:5173",
      "https://localhost",
      "http://127.0.0.1:8080",
      "http://[::1]:3000",
      "http://localhost"
    ]) {
      expect(policy.allows(origin), origin).toBe(true)
    }
    for (const origin of [
      "http://localhost.evil.example",
      "http://127.0.0.1.evil.example:80",
      "https://app.example.com",
      "null",
      "file://",
      "ws://localhost:5173"
    ]) {
      expect(policy.allows(origin), origin).toBe(false)
    }
  })

  it("takes exact origins (replacing the default), * for any, empty for none", () => {
    const exact = policyOf({ CORS_ORIGINS: "https://app.example.com, http://localhost:5173" })
    expect(exact.allows("https://app.example.com")).toBe(true)
    expect(exact.allows("http://localhost:5173")).toBe(true)
    expect(exact.allows("http://localhost:5174")).toBe(false)
    expect(exact.allows("https://app.example.com:8443")).toBe(false)
    expect(policyOf({ CORS_ORIGINS: "*" }).allows("https://anything.example")).toBe(true)
    expect(policyOf({ CORS_ORIGINS: "" }).allows("http://localhost:5173")).toBe(false)
  })

  it("refuses a malformed entry at start-up, naming it", () => {
    for (const entry of ["app.example.com", "https://app.example.com/path", "ftp://files.example", "*.example.com"]) {
      const result = corsOf({ CORS_ORIGINS: `http://localhost:5173,${entry}` })
      expect(Either.isLeft(result), entry).toBe(true)
      expect(String(Either.isLeft(result) ? result.left : "")).toContain(
        `Expected * or exact origins such as https://app.example.com,http://localhost:5173 (scheme, host and optional port, no path) but received ${JSON.stringify(entry)}`
      )
    }
  })
})

describe("the policy", () => {
  const policy = policyOf({ CORS_ORIGINS: "https://app.example.com" })

  it("gives every response the security headers and Vary: Origin; allowed origins get allow and expose", () => {
    expect(policy.headers(undefined, "/v1/health")).toEqual({
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      vary: "Origin"
    })
    expect(policy.headers("https://evil.example", "/v1/health")).toEqual(policy.headers(undefined, "/v1/health"))
    expect(policy.headers("https://app.example.com", "/mcp")).toEqual({
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      vary: "Origin",
      "access-control-allow-origin": "https://app.example.com",
      "access-control-expose-headers":
        "X-Cache, Age, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, Retry-After, " +
        "Mcp-Session-Id, Mcp-Protocol-Version"
    })
  })

  it("lets WebSocket upgrades through without Origin, from the server's own origin, or from an allowed one", () => {
    expect(policy.allowsUpgrade(undefined, "api.example.com")).toBe(true)
    expect(policy.allowsUpgrade("https://app.example.com", "api.example.com")).toBe(true)
    expect(policy.allowsUpgrade("http://api.example.com:8000", "api.example.com:8000")).toBe(true)
    expect(policy.allowsUpgrade("http://api.example.com:8000", "API.example.com:8000")).toBe(true)
    expect(policy.allowsUpgrade("https://evil.example", "api.example.com")).toBe(false)
    expect(policy.allowsUpgrade("https://evil.example", undefined)).toBe(false)
    expect(policy.allowsUpgrade("not a url", "api.example.com")).toBe(false)
  })

  it("reads Origin from Node's raw headers whatever its case", () => {
    expect(originOf(["Host", "a", "ORIGIN", "https://app.example.com"])).toBe("https://app.example.com")
    expect(originOf(["Host", "a", "Origins", "x"])).toBeUndefined()
  })
})
