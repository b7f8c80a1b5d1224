import { build } from "esbuild"
import { Redis } from "ioredis"
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Emulator, startEmulator } from "../../src/emulator/index.js"
import { eventually, type Json, ofType, openSse, openWs, type SseClient, type WsClient } from "../streams/clients.js"
import { freePort, type LocalRedis, startRedis } from "../support/redis.js"

/**
 * Three real server processes (the bundled src/main.ts) in cluster mode behind a private redis-server, streaming from
 * the exchange emulator in this process, which counts the exchange subscriptions they open.
 */

const BUNDLE = join(process.cwd(), "test-results", "cluster-bundle", "main.mjs")
const PREFIX = "mp:"
const LEASE_TTL_S = 2
const BTC = "binance ticker BTC/USDT "
const ETH = "binance ticker ETH/USDT "

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface ClusterHealth {
  readonly mode: "cluster" | "local"
  readonly instanceId: string
  readonly markets: ReadonlyArray<{ readonly market: string; readonly role: string; readonly subscribers: number }>
  readonly circuits: Readonly<Record<string, unknown>>
}

interface Instance {
  readonly name: string
  readonly http: string
  readonly ws: string
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  readonly output: () => string
}

const bundle = () =>
  build({
    entryPoints: ["src/main.ts"],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["ccxt", "redoc", "better-sqlite3"],
    outfile: BUNDLE,
    logLevel: "warning",
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"
    }
  })

let redis: LocalRedis
let raw: Redis
let emulator: Emulator
const instances: Array<Instance> = []

const start = async (name: string): Promise<Instance> => {
  const port = await freePort()
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(HOST|PORT|CLUSTER_|REDIS_|STREAM_|LOG_)/.test(k))
  )
  const child = spawn(process.execPath, [BUNDLE], {
    env: {
      ...inherited,
      ...emulator.env(),
      HOST: "127.0.0.1",
      PORT: String(port),
      ENABLED_EXCHANGES: "binance",
      CCXT_THROTTLE: "false",
      EXCHANGE_TIMEOUT: "3",
      INITIAL_BACKOFF: "0.05",
      MAX_BACKOFF: "0.5",
      RATE_LIMIT_ENABLED: "false",
      // the cache stays in memory: what is shared here is the cluster's alone
      REDIS_ENABLED: "false",
      DATABASE_URL: "none",
      STREAM_HEARTBEAT_INTERVAL: "1",
      STREAM_IDLE_GRACE: "1",
      SHUTDOWN_TIMEOUT: "3",
      LOG_LEVEL: "info",
      CLUSTER_ENABLED: "true",
      CLUSTER_LEASE_TTL: String(LEASE_TTL_S),
      CLUSTER_KEY_PREFIX: PREFIX,
      REDIS_URL: redis.url
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const instance: Instance = {
    name,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    child,
    exited,
    output: () => output
  }
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${output}`)
      return (await fetch(`${instance.http}/v1/health`).catch(() => undefined))?.ok === true ? true : undefined
    },
    60_000,
    () => `${name} did not answer /v1/health:\n${output}`
  )
  return instance
}

const alive = () => instances.filter((i) => i.child.exitCode === null && i.child.signalCode === null)

const health = async (instance: Instance): Promise<ClusterHealth> => {
  const body = (await (await fetch(`${instance.http}/v1/health`)).json()) as { cluster: ClusterHealth }
  return body.cluster
}

const roleOf = async (instance: Instance, market: string) =>
  (await health(instance)).markets.find((m) => m.market === market)?.role

/** The one live instance that owns `market` now, once exactly one does. */
const ownerOf = (market: string, timeoutMs = 15_000) =>
  eventually(async () => {
    const roles = await Promise.all(alive().map(async (i) => [i, await roleOf(i, market)] as const))
    const owners = roles.filter(([, role]) => role === "owner")
    return owners.length === 1 && roles.every(([, role]) => role === "owner" || role === "follower")
      ? owners[0]?.[0]
      : undefined
  }, timeoutMs)

interface LogLine {
  readonly message?: string
  readonly annotations?: Readonly<Record<string, unknown>>
}

const logLines = (instance: Instance): ReadonlyArray<LogLine> =>
  instance
    .output()
    .split("\n")
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine]
      } catch {
        return []
      }
    })

const metric = async (instance: Instance, name: string) => {
  const text = await (await fetch(`${instance.http}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

/** One subscriber of one market on one instance, over one of the three stream routes. */
interface Subscriber {
  readonly instance: Instance
  readonly label: string
  readonly symbol: string
  /** Ticker and status events of its market, in arrival order. */
  readonly events: () => ReadonlyArray<Json>
  readonly open: () => boolean
  readonly close: () => Promise<void>
}

const ofMarket = (symbol: string) => (e: Json) =>
  e["symbol"] === symbol && (e["event_type"] === "ticker" || e["event_type"] === "status")

const sseSubscriber = async (instance: Instance, symbol: string): Promise<Subscriber> => {
  const client: SseClient = await openSse(
    `${instance.http}/v1/stream/ticker?exchange=binance&symbol=${symbol}&threshold=0`
  )
  let open = true
  void client.ended.then(() => (open = false))
  return {
    instance,
    label: `${instance.name} sse ${symbol}`,
    symbol,
    events: () => client.frames.flatMap((f) => (f.data !== undefined && ofMarket(symbol)(f.data) ? [f.data] : [])),
    open: () => open,
    close: async () => client.close()
  }
}

const wsSubscriber = (instance: Instance, client: WsClient, route: string, symbol: string): Subscriber => ({
  instance,
  label: `${instance.name} ${route} ${symbol}`,
  symbol,
  events: () => client.messages.filter(ofMarket(symbol)),
  open: () => client.socket.readyState === client.socket.OPEN,
  close: () => client.close()
})

const subscribeAll = async (instance: Instance): Promise<ReadonlyArray<Subscriber>> => {
  const single = await openWs(`${instance.ws}/ws/ticker?exchange=binance&symbol=BTC/USDT&threshold=0`)
  const multi = await openWs(`${instance.ws}/ws`)
  for (const symbol of ["BTC/USDT", "ETH/USDT"]) {
    multi.send({ op: "subscribe", channel: "ticker", exchange: "binance", symbol, threshold: 0 })
    await multi.next(ofType("ack", { op: "subscribe", symbol }))
  }
  return [
    await sseSubscriber(instance, "BTC/USDT"),
    wsSubscriber(instance, single, "/ws/ticker", "BTC/USDT"),
    wsSubscriber(instance, multi, "/ws", "BTC/USDT"),
    wsSubscriber(instance, multi, "/ws", "ETH/USDT")
  ]
}

let subscribers: Array<Subscriber> = []

const tickers = (s: Subscriber) => s.events().filter((e) => e["event_type"] === "ticker")
const statuses = (s: Subscriber, from = 0) =>
  s
    .events()
    .slice(from)
    .flatMap((e) => (e["event_type"] === "status" ? [`${String(e["status"])} ${String(e["reason"])}`] : []))

/** Waits until every subscriber has `more` ticker events beyond what it has now. */
const moreTickers = async (of: ReadonlyArray<Subscriber>, more: number, timeoutMs = 15_000) => {
  const before = new Map(of.map((s) => [s, tickers(s).length]))
  await eventually(
    () => (of.every((s) => tickers(s).length >= (before.get(s) ?? 0) + more) ? true : undefined),
    timeoutMs,
    () => of.map((s) => `${s.label}: ${tickers(s).length - (before.get(s) ?? 0)}`).join(", ")
  )
}

const subscriptionsSettleAt = (count: number, timeoutMs = 15_000) =>
  eventually(
    () => (emulator.wsSubscriptions("binance") === count ? true : undefined),
    timeoutMs,
    () => `exchange subscriptions: ${emulator.wsSubscriptions("binance")}, expected ${count}`
  )

beforeAll(async () => {
  ;[redis, emulator] = await Promise.all([startRedis(), startEmulator({ wsPushIntervalMs: 100 }), bundle()])
  raw = new Redis(redis.url, { maxRetriesPerRequest: 1 }).on("error", () => undefined)
  instances.push(...(await Promise.all(["a", "b", "c"].map(start))))
}, 120_000)

afterAll(async () => {
  await Promise.all(subscribers.map((s) => s.close().catch(() => undefined)))
  for (const instance of alive()) instance.child.kill("SIGKILL")
  await Promise.all(instances.map((i) => i.exited))
  raw?.disconnect()
  await redis?.stop()
  await emulator?.close()
})

describe("cluster mode across three server processes (real redis-server, exchange emulator)", () => {
  it("subscribers on every instance and route share one exchange subscription per market and get every event", async () => {
    // the first instance starts both markets alone, the others join while they run
    subscribers = [...(await subscribeAll(instances[0]!))]
    await Promise.all(subscribers.map((s) => eventually(() => tickers(s)[0], 15_000)))
    subscribers.push(...(await Promise.all(instances.slice(1).map(subscribeAll))).flat())
    await moreTickers(subscribers, 8)

    expect(emulator.wsSubscriptions("binance")).toBe(2)
    for (const market of [BTC, ETH]) {
      const roles = await Promise.all(instances.map((i) => roleOf(i, market)))
      expect(roles.sort()).toEqual(["follower", "follower", "owner"])
    }
    expect((await health(instances[1]!)).mode).toBe("cluster")
    expect(await metric(instances[0]!, "cluster_owned_upstreams")).toBe(2)
    expect(await metric(instances[1]!, "cluster_remote_subscriptions")).toBe(2)
    expect(await metric(instances[2]!, "cluster_pubsub_lag_seconds_count")).toBeGreaterThan(0)

    // after the last subscriber's first event, every subscriber of a market saw the same ticks in the same order
    for (const symbol of ["BTC/USDT", "ETH/USDT"]) {
      const of = subscribers.filter((s) => s.symbol === symbol)
      const seen = of.map((s) => tickers(s).map((e) => `${String(e["timestamp"])} ${String(e["last"])}`))
      const from = Math.max(...of.map((s) => Number(tickers(s)[0]?.["timestamp"])))
      const until = Math.min(...of.map((s) => Number(tickers(s).at(-1)?.["timestamp"])))
      const window = seen.map((list) =>
        list.filter((key) => {
          const t = Number(key.split(" ")[0])
          return t > from && t <= until
        })
      )
      expect(window[0]!.length).toBeGreaterThanOrEqual(3)
      for (const list of window) expect(list).toEqual(window[0])
    }
  }, 60_000)

  it("Redis killed and restarted under load: local mode (own upstreams), then one upstream per market again", async () => {
    const marks = new Map(subscribers.map((s) => [s, s.events().length]))
    await redis.kill()
    await eventually(async () => {
      const modes = await Promise.all(instances.map(async (i) => (await health(i)).mode))
      return modes.every((m) => m === "local") ? true : undefined
    }, 15_000)
    expect(await metric(instances[0]!, "cluster_local_mode")).toBe(1)
    // each instance runs its own upstream for each market meanwhile
    await subscriptionsSettleAt(6)
    await moreTickers(subscribers, 3)
    for (const s of subscribers) {
      expect(statuses(s, marks.get(s))).toEqual(["reconnecting cluster: redis_unavailable", "live cluster: recovered"])
    }

    await redis.restart()
    await eventually(async () => {
      const modes = await Promise.all(instances.map(async (i) => (await health(i)).mode))
      return modes.every((m) => m === "cluster") ? true : undefined
    }, 15_000)
    await ownerOf(BTC)
    await ownerOf(ETH)
    await subscriptionsSettleAt(2)
    await moreTickers(subscribers, 3)
    expect(await metric(instances[0]!, "cluster_local_mode")).toBe(0)
    // no subscriber lost its stream
    expect(subscribers.filter((s) => !s.open()).map((s) => s.label)).toEqual([])
  }, 60_000)

  it("SIGKILL of a market's owner: another instance takes it over within the lease time, one subscription after", async () => {
    const owner = await ownerOf(BTC)
    const ownerId = (await health(owner)).instanceId
    const owned = (await health(owner)).markets.filter((m) => m.role === "owner").map((m) => m.market)
    const survivors = instances.filter((i) => i !== owner)
    const takeoversBefore = await Promise.all(survivors.map((i) => metric(i, "cluster_lease_takeovers_total")))
    const watching = subscribers.filter((s) => s.instance !== owner)
    const marks = new Map(watching.map((s) => [s, s.events().length]))

    owner.child.kill("SIGKILL")
    const killedAt = Date.now()
    await owner.exited
    const next = await ownerOf(BTC)
    const takeoverMs = Date.now() - killedAt
    expect(survivors).toContain(next)
    expect((await health(next)).instanceId).not.toBe(ownerId)
    // a TTL of 2 s renewed every third: expired and taken within TTL + one renewal, with room for a loaded machine
    expect(takeoverMs).toBeLessThan(5_000)

    await subscriptionsSettleAt(2)
    await moreTickers(watching, 3)
    await sleep(LEASE_TTL_S * 1000)
    expect(emulator.wsSubscriptions("binance")).toBe(2)
    for (const s of watching.filter((s) => s.symbol === "BTC/USDT")) {
      expect(statuses(s, marks.get(s))).toEqual(["reconnecting cluster: owner_changed", "live cluster: recovered"])
    }
    // each market the killed owner held was taken over once, from it (the log line names the previous owner)
    const takenFromOwner = survivors
      .flatMap((i) => logLines(i))
      .filter((l) => l.message === "took over a market's upstream" && l.annotations?.["previous"] === ownerId)
    expect(takenFromOwner.map((l) => l.annotations?.["market"]).sort()).toEqual(owned.sort())
    const takeoversAfter = await Promise.all(survivors.map((i) => metric(i, "cluster_lease_takeovers_total")))
    const counted = takeoversAfter.reduce((n: number, v, i) => n + (v ?? 0) - (takeoversBefore[i] ?? 0), 0)
    expect(counted).toBeGreaterThanOrEqual(owned.length)
    subscribers = watching
  }, 60_000)

  it("SIGTERM of the owner: it releases its leases on the way out and the last instance takes over at once", async () => {
    const owner = await ownerOf(BTC)
    const ownerId = (await health(owner)).instanceId
    const [last] = alive().filter((i) => i !== owner)
    const watching = subscribers.filter((s) => s.instance === last)
    const marks = new Map(watching.map((s) => [s, s.events().length]))

    owner.child.kill("SIGTERM")
    expect(await owner.exited).toBe(0)
    // a lease that merely expired would still name the stopped owner here, for up to the TTL
    const holder = await raw.get(`${PREFIX}lease:${BTC}`)
    expect(holder?.startsWith(`${ownerId}#`) ?? false).toBe(false)

    expect(await ownerOf(BTC)).toBe(last)
    await subscriptionsSettleAt(2)
    await moreTickers(watching, 3)
    for (const s of watching.filter((s) => s.symbol === "BTC/USDT")) {
      expect(statuses(s, marks.get(s))).toEqual(["reconnecting cluster: owner_changed", "live cluster: recovered"])
    }
    expect(watching.filter((s) => !s.open()).map((s) => s.label)).toEqual([])
  }, 60_000)
})
