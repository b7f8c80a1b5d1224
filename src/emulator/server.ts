/** One HTTP port serving every venue under its prefix, their WebSocket upgrades, and the /__emulator control API. */

import http, { type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { WebSocket, WebSocketServer } from "ws"
import { BinanceVenue } from "./binance.js"
import { BookFeed } from "./book.js"
import { Clock, type ClockMode } from "./clock.js"
import { CoinbaseExchangeVenue } from "./coinbaseexchange.js"
import { FaultRegistry, otherSymbolRequest, parseFaultSpec, type FaultSpec, type RawResponse } from "./faults.js"
import { KrakenVenue } from "./kraken.js"
import { EMULATED_EXCHANGES, isEmulatedExchange, MARKETS, type EmulatedExchange, type MarketSpec } from "./markets.js"
import { DEFAULT_HISTORY_MS, EmulatorModel } from "./model.js"
import { json, type RestRequest, type Venue, type VenueContext, type WsPeer, type WsSession } from "./protocol.js"

export interface ServerOptions {
  readonly seed: number
  readonly port: number
  readonly host: string
  readonly startTime: number
  readonly clock: ClockMode
  readonly wsPushIntervalMs: number
}

const CONTROL_PREFIX = "/__emulator"
const MAX_BODY_BYTES = 1 << 20

/** "/binance/api/v3/time" → ["binance", "/api/v3/time"] */
const splitPrefix = (pathname: string): [EmulatedExchange, string] | undefined => {
  const match = /^\/([^/]+)(\/.*)?$/.exec(pathname)
  const prefix = match?.[1]
  if (prefix === undefined || !isEmulatedExchange(prefix)) return undefined
  return [prefix, match?.[2] ?? ""]
}

/** Browser dashboards talk to the emulator directly, so every answer allows any origin. */
const CORS_HEADERS: Readonly<Record<string, string>> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
  "Access-Control-Allow-Headers": "*",
  "Access-Control-Expose-Headers": "*"
}

const writeResponse = (res: ServerResponse, response: RawResponse): void => {
  if (res.destroyed || res.writableEnded) return
  res.writeHead(response.status, {
    ...CORS_HEADERS,
    "Content-Type": response.contentType,
    "Content-Length": Buffer.byteLength(response.body),
    ...response.headers
  })
  res.end(response.body)
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        reject(new Error("body too large"))
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

class Connection implements WsPeer {
  session: WsSession | undefined

  constructor(
    readonly exchange: EmulatedExchange,
    private readonly socket: WebSocket,
    private readonly faults: FaultRegistry
  ) {}

  send(message: unknown): boolean {
    if (this.faults.wsActive(this.exchange, "ws-stall")) return false
    return this.write(message)
  }

  reply(message: unknown): void {
    this.write(message)
  }

  subscribing(): boolean {
    if (!this.faults.takeWsClose(this.exchange)) return true
    this.terminate()
    return false
  }

  terminate(): void {
    this.socket.terminate()
  }

  private write(message: unknown): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) return false
    this.socket.send(JSON.stringify(message))
    return true
  }
}

export class EmulatorServer implements VenueContext {
  readonly clock: Clock
  readonly model: EmulatorModel
  readonly faults = new FaultRegistry()
  private readonly venues: Readonly<Record<EmulatedExchange, Venue>>
  private readonly feeds = new Map<string, BookFeed>()
  private readonly counts = new Map<EmulatedExchange, Map<string, number>>()
  private readonly connections = new Set<Connection>()
  private readonly delayed = new Set<NodeJS.Timeout>()
  private readonly http: http.Server
  private readonly wss = new WebSocketServer({ noServer: true })
  private timer: NodeJS.Timeout | undefined
  private boundPort = 0

  constructor(private readonly options: ServerOptions) {
    this.clock = new Clock(options.clock, options.startTime)
    this.model = new EmulatorModel(options.seed, () => this.clock.now(), options.startTime - DEFAULT_HISTORY_MS)
    this.venues = {
      binance: new BinanceVenue(this),
      kraken: new KrakenVenue(this),
      coinbaseexchange: new CoinbaseExchangeVenue(this)
    }
    this.http = http.createServer((req, res) => {
      this.handle(req, res).catch(() => writeResponse(res, json(500, { message: "emulator error" })))
    })
    this.http.on("upgrade", (req: IncomingMessage, socket, head: Buffer) => {
      const url = new URL(req.url ?? "/", "http://localhost")
      const target = splitPrefix(url.pathname)
      const venue = target === undefined ? undefined : this.venues[target[0]]
      if (target === undefined || venue === undefined || !venue.acceptsWsPath(target[1])) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        return
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, venue, target[1]))
    })
  }

  get port(): number {
    return this.boundPort
  }

  book(spec: MarketSpec): BookFeed {
    const key = `${spec.exchange}:${spec.symbol}`
    const existing = this.feeds.get(key)
    if (existing !== undefined) return existing
    const series = this.model.series(spec.exchange, spec.symbol)
    const feed = new BookFeed((second) => series.book(second))
    this.feeds.set(key, feed)
    return feed
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.http.once("error", reject)
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off("error", reject)
        resolve()
      })
    })
    this.boundPort = (this.http.address() as AddressInfo).port
    this.timer = setInterval(() => this.tick(), Math.max(10, this.options.wsPushIntervalMs))
    this.timer.unref()
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    for (const timer of this.delayed) clearTimeout(timer)
    this.delayed.clear()
    for (const connection of this.connections) connection.terminate()
    this.connections.clear()
    await new Promise<void>((resolve) => this.wss.close(() => resolve()))
    this.http.closeAllConnections()
    await new Promise<void>((resolve) => this.http.close(() => resolve()))
  }

  inject(spec: FaultSpec): void {
    this.faults.add(spec)
    if (spec.kind !== "ws-close") return
    for (const connection of [...this.connections]) {
      if (spec.exchange !== undefined && connection.exchange !== spec.exchange) continue
      if (!this.faults.takeWsClose(connection.exchange)) break
      connection.terminate()
    }
  }

  requestCount(exchange?: EmulatedExchange, endpoint?: string): number {
    let total = 0
    for (const [ex, byEndpoint] of this.counts) {
      if (exchange !== undefined && ex !== exchange) continue
      for (const [path, count] of byEndpoint) if (endpoint === undefined || path === endpoint) total += count
    }
    return total
  }

  wsSubscriptions(exchange?: EmulatedExchange): number {
    let total = 0
    for (const connection of this.connections) {
      if (exchange === undefined || connection.exchange === exchange)
        total += connection.session?.subscriptionCount ?? 0
    }
    return total
  }

  resetCounts(): void {
    this.counts.clear()
  }

  stats() {
    const requests: Record<string, Record<string, number>> = {}
    const subscriptions: Record<string, number> = {}
    const connections: Record<string, number> = {}
    for (const exchange of EMULATED_EXCHANGES) {
      requests[exchange] = Object.fromEntries(this.counts.get(exchange) ?? [])
      subscriptions[exchange] = this.wsSubscriptions(exchange)
      connections[exchange] = [...this.connections].filter((c) => c.exchange === exchange).length
    }
    return {
      now: this.clock.now(),
      clock: this.clock.mode,
      seed: this.model.seed,
      totalRequests: this.requestCount(),
      requests,
      subscriptions,
      connections,
      faults: this.faults.list()
    }
  }

  private tick(): void {
    const now = this.clock.now()
    for (const feed of this.feeds.values()) {
      if (feed.listenerCount === 0) continue
      if (this.clock.frozen) feed.heartbeat(now)
      else feed.current(now)
    }
    for (const connection of this.connections) {
      try {
        connection.session?.tick(now)
      } catch {
        connection.terminate()
      }
    }
  }

  private count(exchange: EmulatedExchange, endpoint: string): void {
    const byEndpoint = this.counts.get(exchange) ?? new Map<string, number>()
    byEndpoint.set(endpoint, (byEndpoint.get(endpoint) ?? 0) + 1)
    this.counts.set(exchange, byEndpoint)
  }

  private onConnection(ws: WebSocket, venue: Venue, path: string): void {
    const connection = new Connection(venue.id, ws, this.faults)
    this.connections.add(connection)
    ws.on("error", () => undefined)
    ws.on("close", () => {
      connection.session?.dispose()
      this.connections.delete(connection)
    })
    try {
      connection.session = venue.openSession(connection, path)
    } catch {
      connection.terminate()
      return
    }
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
      const text = Array.isArray(data)
        ? Buffer.concat(data).toString("utf8")
        : Buffer.isBuffer(data)
          ? data.toString("utf8")
          : Buffer.from(data).toString("utf8")
      try {
        connection.session?.onMessage(text)
      } catch {
        connection.terminate()
      }
    })
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost")
    if (req.method === "OPTIONS") {
      // CORS preflight: not a market-data request, so it is neither counted nor faulted
      res.writeHead(204, CORS_HEADERS)
      res.end()
      return
    }
    if (url.pathname === CONTROL_PREFIX || url.pathname.startsWith(`${CONTROL_PREFIX}/`)) {
      writeResponse(res, await this.control(req, url.pathname.slice(CONTROL_PREFIX.length)))
      return
    }
    const target = splitPrefix(url.pathname)
    if (target === undefined) {
      writeResponse(
        res,
        json(404, { message: "unknown path; venues live under /binance, /kraken and /coinbaseexchange" })
      )
      return
    }
    const [exchange, rest] = target
    const venue = this.venues[exchange]
    const path = rest === "" ? "/" : rest
    this.count(exchange, path)
    const params = new URLSearchParams(url.searchParams)
    if (req.method === "POST" || req.method === "PUT") {
      const body = await readBody(req)
      if ((req.headers["content-type"] ?? "").includes("application/x-www-form-urlencoded")) {
        for (const [key, value] of new URLSearchParams(body)) params.append(key, value)
      }
    }
    const request = (): RestRequest => ({ method: req.method ?? "GET", path, params, now: this.clock.now() })
    const fault = this.faults.takeRest(exchange, path, venue.marketListPaths)
    if (fault === undefined) {
      writeResponse(res, venue.rest(request()))
      return
    }
    switch (fault.kind) {
      case "reset":
        req.socket.destroy()
        return
      case "delay": {
        const timer = setTimeout(() => {
          this.delayed.delete(timer)
          try {
            writeResponse(res, venue.rest(request()))
          } catch {
            writeResponse(res, json(500, { message: "emulator error" }))
          }
        }, fault.delayMs ?? 1000)
        this.delayed.add(timer)
        res.on("close", () => {
          clearTimeout(timer)
          this.delayed.delete(timer)
        })
        return
      }
      case "other-symbol":
        writeResponse(res, venue.rest(otherSymbolRequest(MARKETS[exchange], request())))
        return
      default:
        writeResponse(res, venue.faultResponse(fault, request()))
    }
  }

  private async control(req: IncomingMessage, path: string): Promise<RawResponse> {
    const method = req.method ?? "GET"
    const body = method === "POST" || method === "PUT" ? await readBody(req) : ""
    const parsed = (): unknown => {
      try {
        return body.trim() === "" ? {} : (JSON.parse(body) as unknown)
      } catch {
        return undefined
      }
    }
    if ((path === "" || path === "/" || path === "/stats") && method === "GET") return json(200, this.stats())
    if (path === "/faults") {
      if (method === "GET") return json(200, { faults: this.faults.list() })
      if (method === "DELETE") {
        this.faults.clear()
        return json(200, { ok: true, faults: [] })
      }
      if (method === "POST") {
        const spec = parseFaultSpec(parsed())
        if (typeof spec === "string") return json(400, { error: spec })
        this.inject(spec)
        return json(201, { ok: true, faults: this.faults.list() })
      }
    }
    if (path === "/time") {
      if (method === "GET") return json(200, { now: this.clock.now(), clock: this.clock.mode })
      if (method === "POST") {
        const input = parsed()
        const record = typeof input === "object" && input !== null ? (input as Record<string, unknown>) : {}
        const set = record["set"]
        const advance = record["advance"]
        if (typeof set === "number" && Number.isFinite(set)) this.clock.setTime(set)
        else if (typeof advance === "number" && Number.isFinite(advance)) this.clock.advance(advance)
        else return json(400, { error: 'expected {"set": ms} or {"advance": ms}' })
        return json(200, { now: this.clock.now(), clock: this.clock.mode })
      }
    }
    if (path === "/reset-counts" && method === "POST") {
      this.resetCounts()
      return json(200, { ok: true })
    }
    return json(404, { error: `unknown control endpoint ${method} ${CONTROL_PREFIX}${path}` })
  }
}
