import { HttpLayerRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Logger, ManagedRuntime } from "effect"
import { createServer, request as httpRequest } from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AppConfig } from "../../src/AppConfig.js"
import { MemoryKvCacheLive } from "../../src/Cache/Memory.js"
import { ResponseCacheLive } from "../../src/Cache/ResponseCacheLive.js"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { ExchangeLive } from "../../src/Exchange/Live.js"
import { HotCache } from "../../src/Http/HotCache.js"
import { keyId } from "../../src/Http/Admission.js"
import { LogSink, sinkLogger } from "../../src/Logging.js"
import { MarketQueriesLive } from "../../src/Markets/Queries.js"
import { AppRoutes } from "../../src/Routes.js"
import { ServerLive } from "../../src/Server.js"
import { emulatorEnv } from "../support/emulatorServer.js"
import { freePort } from "../support/redis.js"

/**
 * One admission policy, whichever path answers: every request goes to two servers of the same settings, the
 * production front door (hot cache, stream gateway, Effect's handler) and the bare router (every request through
 * the global middleware), and must get the same status, body, auth and rate-limit headers and request-log client.
 */

const TICKER = "/v1/markets/ticker?exchange=binance&symbol=BTC/USDT"
const SSE = "/v1/stream/ticker?exchange=binance&symbol=BTC/USDT"
const WRONG = "not-a-key"

interface Logged {
  readonly lines: Array<string>
}

interface Target {
  readonly base: string
  readonly logged: Logged
  readonly served: () => number
  readonly close: () => Promise<void>
}

/** Request log lines go to a LogSink: the Effect path through `sinkLogger`, the hot path directly. */
const capture = (logged: Logged) => {
  const sink = LogSink.of({ write: (line) => logged.lines.push(line), flush: () => undefined })
  return Layer.merge(Logger.replace(Logger.defaultLogger, sinkLogger(sink)), Layer.succeed(LogSink, sink))
}

const portOf = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "TcpAddress" ? server.address.port : 0
)

const frontDoor = async (env: Record<string, string>): Promise<Target> => {
  const logged: Logged = { lines: [] }
  const port = await freePort()
  const config = await Effect.runPromise(
    Effect.provide(AppConfig, AppConfig.fromRecord({ ...env, PORT: String(port), HOST: "127.0.0.1" }))
  )
  const runtime = ManagedRuntime.make(ServerLive(config).pipe(Layer.provide(capture(logged))))
  const hot = await runtime.runPromise(HotCache)
  return {
    base: `http://127.0.0.1:${port}`,
    logged,
    served: () => hot.stats().served,
    close: () => runtime.dispose()
  }
}

const effectPath = async (env: Record<string, string>): Promise<Target> => {
  const logged: Logged = { lines: [] }
  const runtime = ManagedRuntime.make(
    HttpLayerRouter.serve(AppRoutes, { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provide(MarketQueriesLive),
      Layer.provide(ResponseCacheLive),
      Layer.provide(MemoryKvCacheLive({ maxEntries: 1000 })),
      Layer.provide(ExchangeLive),
      Layer.provideMerge(AppConfig.fromRecord(env)),
      Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
      Layer.provide(capture(logged))
    )
  )
  const port = await runtime.runPromise(portOf)
  return { base: `http://127.0.0.1:${port}`, logged, served: () => 0, close: () => runtime.dispose() }
}

interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly json: unknown
  /** The request log lines this request added. */
  readonly logs: ReadonlyArray<Record<string, unknown>>
}

const call = async (target: Target, path: string, headers: Record<string, string> = {}): Promise<Answer> => {
  const before = target.logged.lines.length
  const controller = new AbortController()
  const response = await fetch(target.base + path, { headers, signal: controller.signal })
  const streaming = response.headers.get("content-type")?.startsWith("text/event-stream") === true
  // an admitted stream never ends: its status and headers are the answer
  const text = streaming ? "" : await response.text()
  controller.abort()
  const logs = target.logged.lines
    .slice(before)
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line["message"] === "http request")
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    json: text === "" ? undefined : (JSON.parse(text) as unknown),
    logs
  }
}

/** The request log lines written since `before`, once there is one (a refused upgrade logs after it answered). */
const waitForLog = async (target: Target, before: number) => {
  const lines = () =>
    target.logged.lines
      .slice(before)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line["message"] === "http request")
  for (let i = 0; i < 100 && lines().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  return lines()
}

/** What admission decides, as a client and the log see it; the 429's seconds are compared to its own headers. */
const admissionOf = (answer: Answer) => {
  // a 503 has a Retry-After of its own
  const retryAfter = answer.status === 429 ? answer.headers["retry-after"] : undefined
  if (answer.status === 429) expect(answer.headers["ratelimit-reset"]).toBe(retryAfter)
  let json = answer.status === 401 || answer.status === 429 ? answer.json : undefined
  if (answer.status === 429) {
    const body = answer.json as { message: string; retryAfter: number }
    expect(String(body.retryAfter)).toBe(retryAfter)
    json = { ...body, message: body.message.replace(`retry in ${retryAfter} s`, "retry in N s"), retryAfter: "N" }
  }
  return {
    json: json as unknown,
    authenticate: answer.headers["www-authenticate"],
    limit: answer.headers["ratelimit-limit"],
    remaining: answer.headers["ratelimit-remaining"],
    policy: answer.headers["ratelimit-policy"],
    retryAfter: retryAfter === undefined ? undefined : "present",
    logs: answer.logs.map((line) => {
      const annotations = line["annotations"] as Record<string, unknown>
      return { route: annotations["route"], status: annotations["status"], client: annotations["client"] }
    })
  }
}

const AUTHENTICATE = 'Bearer realm="mcp-crypto-data-server"'
const keyRequired = (stream: boolean) => ({
  _tag: "Unauthorized",
  code: "unauthorized",
  message:
    "An API key is required: send it in the X-API-Key header or as Authorization: Bearer <key>" +
    (stream ? " (or, on stream routes, as the api_key query parameter)" : "")
})
const keyInvalid = { _tag: "Unauthorized", code: "unauthorized", message: "The API key is not valid" }
const rateLimited = {
  _tag: "RateLimited",
  code: "rate_limited",
  message: "Rate limit of 3 requests per 60 s exceeded; retry in N s",
  retryAfter: "N"
}

interface Case {
  readonly name: string
  readonly path: string
  readonly headers?: Record<string, string>
  readonly status: number
  readonly json?: unknown
  readonly remaining?: string
  readonly client: string
}

let emulator: Emulator
let front: Target
let bare: Target
let env: Record<string, string>

beforeAll(async () => {
  emulator = await startEmulator({ clock: "frozen" })
  env = emulatorEnv(emulator, {
    API_KEYS: "warm-key,alpha-key,beta-key",
    RATE_LIMIT_ENABLED: "true",
    RATE_LIMIT_REQUESTS: "3",
    RATE_LIMIT_WINDOW: "60",
    TICKER_CACHE_TTL: "60",
    LOG_LEVEL: "info"
  })
  front = await frontDoor(env)
  bare = await effectPath(env)
})

afterAll(async () => {
  await front?.close()
  await bare?.close()
  await emulator?.close()
})

/** Sends a case to both servers and checks both answers against it and against each other. */
const both = async (c: Case, frontStatus = c.status, bareStatus = c.status) => {
  const servedBefore = front.served()
  const fromFront = await call(front, c.path, c.headers)
  const fromBare = await call(bare, c.path, c.headers)
  expect([c.name, fromFront.status, fromBare.status]).toEqual([c.name, frontStatus, bareStatus])
  const expected = {
    json: c.json,
    authenticate: c.status === 401 ? AUTHENTICATE : undefined,
    limit: c.remaining === undefined ? undefined : "3",
    remaining: c.remaining,
    policy: c.remaining === undefined ? undefined : "3;w=60",
    retryAfter: c.status === 429 ? "present" : undefined,
    logs: [{ route: c.path.split("?")[0], status: frontStatus, client: c.client }]
  }
  expect(admissionOf(fromFront)).toEqual(expected)
  expect(admissionOf(fromBare)).toEqual({ ...expected, logs: [{ ...expected.logs[0], status: bareStatus }] })
  return { fromFront, fromBare, hot: front.served() - servedBefore }
}

describe("one admission policy: hot cache and Effect path", () => {
  it("give the same answers, rate-limit counts and request-log clients for the same requests", async () => {
    const alpha = `key:${keyId("alpha-key")}`
    // a fresh answer for each URL in the front door's hot cache, counted in a bucket of its own
    for (const path of [TICKER, `${TICKER}&api_key=alpha-key`]) {
      expect((await call(front, path, { "x-api-key": "warm-key" })).status).toBe(200)
      expect((await call(bare, path, { "x-api-key": "warm-key" })).status).toBe(200)
    }
    const cases: ReadonlyArray<Case & { readonly hot: number }> = [
      {
        name: "X-API-Key",
        path: TICKER,
        headers: { "x-api-key": "alpha-key" },
        status: 200,
        remaining: "2",
        client: alpha,
        hot: 1
      },
      {
        name: "Bearer",
        path: TICKER,
        headers: { authorization: "Bearer alpha-key" },
        status: 200,
        remaining: "1",
        client: alpha,
        hot: 1
      },
      {
        name: "wrong key",
        path: TICKER,
        headers: { "x-api-key": WRONG },
        status: 401,
        json: keyInvalid,
        client: `key:${keyId(WRONG)}`,
        hot: 0
      },
      { name: "no key", path: TICKER, status: 401, json: keyRequired(false), client: "anonymous", hot: 0 },
      {
        name: "api_key on a REST route is not a key",
        path: `${TICKER}&api_key=alpha-key`,
        status: 401,
        json: keyRequired(false),
        client: "anonymous",
        hot: 0
      },
      {
        name: "last in the window",
        path: TICKER,
        headers: { "x-api-key": "alpha-key" },
        status: 200,
        remaining: "0",
        client: alpha,
        hot: 1
      },
      {
        name: "over the limit",
        path: TICKER,
        headers: { "x-api-key": "alpha-key" },
        status: 429,
        json: rateLimited,
        remaining: "0",
        client: alpha,
        hot: 0
      }
    ]
    for (const c of cases) {
      const { fromFront, hot } = await both(c)
      // the admitted ones were the hot cache's answers (its log line has no fiber); the others took the Effect path
      expect([c.name, hot, fromFront.logs[0]?.["fiberId"] === ""]).toEqual([c.name, c.hot, c.hot === 1])
    }
  })
})

describe("one admission policy: stream gateway and Effect path", () => {
  it("give the same refusals, rate-limit counts and request-log clients; the key may come as api_key", async () => {
    const beta = `key:${keyId("beta-key")}`
    // admitted: the gateway streams (200), the bare router has no gateway (503 after the same admission)
    const admitted = async (c: Case) => {
      const { fromBare } = await both(c, 200, 503)
      expect((fromBare.json as { code: string }).code).toBe("upstream_unavailable")
    }
    await admitted({
      name: "api_key query",
      path: `${SSE}&api_key=beta-key`,
      status: 200,
      remaining: "2",
      client: beta
    })
    await admitted({
      name: "X-API-Key",
      path: SSE,
      headers: { "x-api-key": "beta-key" },
      status: 200,
      remaining: "1",
      client: beta
    })
    await admitted({
      name: "Bearer",
      path: SSE,
      headers: { authorization: "Bearer beta-key" },
      status: 200,
      remaining: "0",
      client: beta
    })
    await both({
      name: "wrong api_key",
      path: `${SSE}&api_key=${WRONG}`,
      status: 401,
      json: keyInvalid,
      client: `key:${keyId(WRONG)}`
    })
    await both({ name: "no key", path: SSE, status: 401, json: keyRequired(true), client: "anonymous" })
    await both({
      name: "over the limit",
      path: `${SSE}&api_key=beta-key`,
      status: 429,
      json: rateLimited,
      remaining: "0",
      client: beta
    })
  })

  it("a WebSocket upgrade refused for its Origin is logged with the policy's client", async () => {
    const alpha = `key:${keyId("alpha-key")}`
    const before = front.logged.lines.length
    const { port } = new URL(front.base)
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = httpRequest({
        host: "127.0.0.1",
        port,
        path: "/ws/ticker?exchange=binance&symbol=BTC/USDT&api_key=alpha-key",
        headers: {
          connection: "Upgrade",
          upgrade: "websocket",
          "sec-websocket-version": "13",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          origin: "https://elsewhere.example"
        }
      })
      request.on("response", (response) => {
        let body = ""
        response.on("data", (chunk: Buffer) => (body += chunk.toString()))
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }))
      })
      request.on("upgrade", () => reject(new Error("upgraded")))
      request.on("error", reject)
      request.end()
    })
    expect(answer.status).toBe(403)
    expect((JSON.parse(answer.body) as { code: string }).code).toBe("origin_not_allowed")
    const logged = await waitForLog(front, before)
    const fields = logged.map((line) => line["annotations"] as Record<string, unknown>)
    expect(fields.map((a) => [a["route"], a["status"], a["client"]])).toEqual([["/ws/ticker", 403, alpha]])
  })

  it("never writes a key into a log line or a metric", async () => {
    for (const target of [front, bare]) {
      const metrics = await fetch(target.base + "/metrics", { headers: { "x-api-key": "warm-key" } })
      const text = await metrics.text()
      for (const secret of ["alpha-key", "beta-key", "warm-key", WRONG]) {
        expect(text).not.toContain(secret)
        expect(target.logged.lines.filter((line) => line.includes(secret))).toEqual([])
      }
    }
  })
})

describe("without API_KEYS", () => {
  let plainFront: Target
  let plainBare: Target

  beforeAll(async () => {
    const plain = emulatorEnv(emulator, { RATE_LIMIT_ENABLED: "false", TICKER_CACHE_TTL: "60", LOG_LEVEL: "info" })
    plainFront = await frontDoor(plain)
    plainBare = await effectPath(plain)
  })

  afterAll(async () => {
    await plainFront?.close()
    await plainBare?.close()
  })

  it("a key sent anyway is not looked at: every path logs the client as anonymous", async () => {
    const clients = async (target: Target, path: string, headers: Record<string, string> = {}) => {
      const answer = await call(target, path, headers)
      return [answer.status, ...answer.logs.map((line) => (line["annotations"] as Record<string, unknown>)["client"])]
    }
    expect(await clients(plainFront, TICKER)).toEqual([200, "anonymous"])
    const hotBefore = plainFront.served()
    // the hot cache, the Effect path, the gateway and the Effect path's stream route
    expect(await clients(plainFront, TICKER, { "x-api-key": "alpha-key" })).toEqual([200, "anonymous"])
    expect(plainFront.served() - hotBefore).toBe(1)
    expect(await clients(plainBare, TICKER, { authorization: "Bearer alpha-key" })).toEqual([200, "anonymous"])
    expect(await clients(plainFront, `${SSE}&api_key=alpha-key`)).toEqual([200, "anonymous"])
    expect(await clients(plainBare, `${SSE}&api_key=alpha-key`)).toEqual([503, "anonymous"])
  })
})
