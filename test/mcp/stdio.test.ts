import { Client, type Tool } from "@modelcontextprotocol/client"
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/client/stdio"
import { Client as Sdk1Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport as Sdk1StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startEmulator, type Emulator } from "../../src/emulator/index.js"
import { clientSuite, toolClient } from "./clientSuite.js"
import { EMULATOR_T0, expectToolError, expectValidResult, TOOL_NAMES } from "./support.js"

/** The package as published: compiled by the build configuration, run by node, started as the bin's `mcp` command. */
const OUT_DIR = join(process.cwd(), "test-results", "mcp-build")
const BIN = join(OUT_DIR, "src", "bin.js")

/** Runs a command to its end without blocking the test worker (a blocked worker misses vitest's RPC deadlines). */
const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { shell?: boolean; env?: NodeJS.ProcessEnv } = {}
) =>
  new Promise<string>((resolve) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"], timeout: 150_000 })
    let output = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
    child.once("close", () => resolve(output))
  })

const build = async () => {
  rmSync(OUT_DIR, { recursive: true, force: true })
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  const output = await run(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", OUT_DIR])
  // type errors are the typecheck's business; this test needs the emitted JavaScript
  if (!existsSync(BIN)) throw new Error(`build produced no ${BIN}:\n${output}`)
}

/** What the README tells hosts to run: the bundle of package.json's bundle script, as `node <abs path>/bin.mjs mcp`. */
const BUNDLE_DIR = join(process.cwd(), "test-results", "mcp-bundle")
const BUNDLE_BIN = join(BUNDLE_DIR, "bin.mjs")

const bundle = async () => {
  rmSync(BUNDLE_DIR, { recursive: true, force: true })
  const { scripts } = JSON.parse(readFileSync("package.json", "utf8")) as { scripts: { bundle: string } }
  const command = scripts.bundle.replace("--outdir=dist/bundle", `"--outdir=${BUNDLE_DIR}"`)
  expect(command).not.toBe(scripts.bundle)
  const bin = join(process.cwd(), "node_modules", ".bin")
  const output = await run(command, [], {
    shell: true,
    env: { ...process.env, PATH: `${bin}${delimiter}${process.env["PATH"] ?? ""}` }
  })
  if (!existsSync(BUNDLE_BIN)) throw new Error(`bundle produced no ${BUNDLE_BIN}:\n${output}`)
}

let emulator: Emulator
let env: Record<string, string>

beforeAll(async () => {
  await Promise.all([build(), bundle()])
  emulator = await startEmulator({ clock: "frozen", startTime: EMULATOR_T0 })
  env = {
    ...getDefaultEnvironment(),
    ...emulator.env(),
    ENABLED_EXCHANGES: "binance,kraken,coinbaseexchange",
    REDIS_ENABLED: "false",
    CCXT_THROTTLE: "false",
    LOG_LEVEL: "Info"
  }
}, 180_000)

afterAll(async () => {
  await emulator.close()
})

describe("MCP over stdio: the built server spawned by the official client", () => {
  let client: Client
  let transport: StdioClientTransport
  let tools: ReadonlyArray<Tool>

  beforeAll(async () => {
    transport = new StdioClientTransport({ command: process.execPath, args: [BIN, "mcp"], env, stderr: "pipe" })
    client = new Client({ name: "stdio-test", version: "1.0.0" })
    await client.connect(transport)
    tools = (await client.listTools()).tools
  }, 30_000)

  afterAll(async () => {
    await client.close()
  })

  it("lists the pinned tools with read-only annotations and gives its instructions", () => {
    expect(tools.map((t) => t.name)).toEqual([...TOOL_NAMES])
    for (const tool of tools) expect(tool.annotations?.readOnlyHint).toBe(true)
    expect(client.getInstructions()).toContain("BASE/QUOTE")
  })

  it("answers from the emulator, with outputs matching their schemas", async () => {
    const expected = emulator.model.ticker24h("coinbaseexchange", "ETH/USD")
    const ticker = expectValidResult(
      tools.find((t) => t.name === "get_ticker"),
      await client.callTool({ name: "get_ticker", arguments: { exchange: "coinbaseexchange", symbol: "ETH/USD" } })
    )
    expect(ticker).toMatchObject({
      exchange: "coinbaseexchange",
      symbol: "ETH/USD",
      last: expected.last,
      bid: expected.bid
    })
    const book = emulator.model.orderBook("binance", "SOL/USDT", EMULATOR_T0, 3)
    const result = expectValidResult(
      tools.find((t) => t.name === "get_orderbook"),
      await client.callTool({ name: "get_orderbook", arguments: { exchange: "binance", symbol: "SOL/USDT", limit: 3 } })
    )
    expect(result["bids"]).toEqual(book.bids)
    expect(result["asks"]).toEqual(book.asks)
    expectToolError(
      await client.callTool({ name: "get_ticker", arguments: { exchange: "binance", symbol: "DOGE/USDT" } }),
      "symbol_not_found"
    )
  })
})

describe("MCP over stdio: the client suite with the SDK 2.x client", () => {
  clientSuite(async () => {
    const client = new Client({ name: "stdio-suite", version: "1.0.0" })
    await client.connect(
      new StdioClientTransport({ command: process.execPath, args: [BIN, "mcp"], env, stderr: "ignore" })
    )
    return { client: toolClient(client), emulator, close: () => client.close() }
  })
})

describe("MCP over stdio: the client suite with the SDK 1.x client most hosts use, on the bundle as hosts run it", () => {
  clientSuite(async () => {
    // a host starts the server outside the checkout
    const cwd = mkdtempSync(join(tmpdir(), "mcp-host-"))
    const client = new Sdk1Client({ name: "stdio-sdk1", version: "1.0.0" })
    await client.connect(
      new Sdk1StdioClientTransport({ command: "node", args: [BUNDLE_BIN, "mcp"], env, cwd, stderr: "ignore" })
    )
    return {
      client: toolClient(client),
      emulator,
      close: async () => {
        await client.close()
        rmSync(cwd, { recursive: true, force: true })
      }
    }
  })
})

describe("MCP over stdio: protocol revision 2026-07-28", () => {
  it("a client negotiating with server/discover gets the modern era and the same tools", async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, "mcp"], env, stderr: "ignore" })
    const client = new Client({ name: "stdio-modern", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } })
    await client.connect(transport)
    try {
      expect(client.getProtocolEra()).toBe("modern")
      const tools = (await client.listTools()).tools
      expect(tools.map((t) => t.name)).toEqual([...TOOL_NAMES])
      expectValidResult(
        tools.find((t) => t.name === "list_exchanges"),
        await client.callTool({ name: "list_exchanges", arguments: {} })
      )
    } finally {
      await client.close()
    }
  }, 60_000)
})

interface RpcLine {
  readonly jsonrpc: string
  readonly id?: number
  readonly result?: Record<string, unknown>
  readonly error?: { code: number; message: string }
}

describe("MCP over stdio: stdout carries nothing but JSON-RPC", () => {
  it("a whole session (handshake, list, calls, errors, unknown method, stdin closed) writes only protocol to stdout and exits 0", async () => {
    const child = spawn(process.execPath, [BIN, "mcp"], { env, stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`)
    const lines = () =>
      stdout
        .split("\n")
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as RpcLine)
    const responded = (ids: ReadonlyArray<number>) =>
      ids.every((id) => stdout.split("\n").some((line) => line.includes(`"id":${id}`) && line.endsWith("}")))
    const waitFor = async (ids: ReadonlyArray<number>) => {
      const deadline = Date.now() + 20_000
      while (!responded(ids) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25))
    }

    send({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
    })
    await waitFor([1])
    send({ jsonrpc: "2.0", method: "notifications/initialized" })
    send({ jsonrpc: "2.0", id: 2, method: "tools/list" })
    send({
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { name: "get_ticker", arguments: { exchange: "binance", symbol: "BTC/USDT" } }
    })
    send({
      jsonrpc: "2.0",
      id: 4,
      method: "tools/call",
      params: { name: "get_ticker", arguments: { exchange: "nope", symbol: "BTC/USDT" } }
    })
    send({
      jsonrpc: "2.0",
      id: 5,
      method: "tools/call",
      params: { name: "get_ohlcv", arguments: { exchange: "binance" } }
    })
    send({ jsonrpc: "2.0", id: 6, method: "no/such/method" })
    child.stdin.write(
      '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_trades","arguments":' +
        '{"exchange":"binance","symbol":"BTC/USDT","__proto__":{"limit":1}}}}\n'
    )
    await waitFor([2, 3, 4, 5, 6, 7])
    child.stdin.end()
    const code = await Promise.race([
      exited,
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 10_000))
    ])
    if (code === "timeout") child.kill("SIGKILL")

    expect(stdout.endsWith("\n")).toBe(true)
    const messages = lines()
    for (const message of messages) expect(message.jsonrpc).toBe("2.0")
    expect(messages.map((m) => m.id).sort()).toEqual([1, 2, 3, 4, 5, 6, 7]) // calls run concurrently
    const byId = (id: number) => messages.find((m) => m.id === id)
    expect(byId(1)?.result?.["serverInfo"]).toMatchObject({ name: "mcp-crypto-data-server" })
    expect((byId(2)?.result?.["tools"] as Array<{ name: string }>).map((t) => t.name)).toEqual([...TOOL_NAMES])
    expect(byId(3)?.result?.["structuredContent"]).toMatchObject({
      last: emulator.model.ticker24h("binance", "BTC/USDT").last
    })
    const errorOf = (id: number) => {
      const result = byId(id)?.result as {
        isError?: boolean
        structuredContent?: unknown
        content: Array<{ text: string }>
      }
      expect(result.isError).toBe(true)
      expect(result.structuredContent).toBeUndefined()
      return JSON.parse(result.content[0]?.text ?? "") as { code: string; message: string }
    }
    expect(errorOf(4).code).toBe("unknown_exchange")
    expect(errorOf(5).code).toBe("invalid_parameter")
    expect(byId(6)?.error?.code).toBe(-32601)
    // the SDK's message parsing drops a "__proto__" key; what it held must not reach the arguments (limit stays 50)
    const proto = byId(7)?.result as { isError?: boolean; structuredContent: { trades: Array<unknown> } }
    expect(proto.isError).toBeUndefined()
    expect(proto.structuredContent.trades).toHaveLength(50)

    expect(code).toBe(0)
    const logs = stderr
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as { message: unknown; logLevel: string })
    expect(logs.some((log) => JSON.stringify(log.message).includes("mcp stdio server ready"))).toBe(true)
  }, 40_000)
})
