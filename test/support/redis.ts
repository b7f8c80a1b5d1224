import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { createConnection, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface LocalRedis {
  readonly port: number
  readonly url: string
  /** Graceful shutdown (SIGTERM); resolves once the process has exited. Idempotent. */
  readonly stop: () => Promise<void>
  /** Abrupt crash (SIGKILL); resolves once the process has exited. Idempotent. */
  readonly kill: () => Promise<void>
  /** Starts the server again on the same port after stop() or kill(); resolves when it accepts connections. */
  readonly restart: () => Promise<void>
  /** Freezes the process (SIGSTOP): connections stay open but nothing answers, like a hung server. */
  readonly pause: () => void
  /** Thaws a paused process (SIGCONT). */
  readonly resume: () => void
}

/** A port nothing listens on right now (the OS picks it; it may be taken again later, which is fine for tests). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no port assigned"))))
    })
  })

const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => {
      socket.destroy()
      resolve(false)
    })
  })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

/**
 * Spawns a private, non-persistent redis-server on a free loopback port, so tests can stop and restart
 * it without touching any shared server. Call stop() in teardown.
 */
export const startRedis = async (): Promise<LocalRedis> => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "redis-test-"))
  let child: ChildProcess | undefined
  let output = ""

  const launch = async () => {
    output = ""
    mkdirSync(dir, { recursive: true })
    const proc = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    child = proc
    let spawnError: Error | undefined
    proc.once("error", (error) => (spawnError = error))
    proc.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()))
    proc.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      if (spawnError !== undefined) throw new Error(`redis-server failed to start: ${spawnError.message}`)
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}: ${output}`)
      if (await canConnect(port)) return
      await sleep(20)
    }
    proc.kill("SIGKILL")
    throw new Error(`redis-server did not accept connections on ${port} within 10 s: ${output}`)
  }

  const terminate = async (signal: NodeJS.Signals) => {
    const proc = child
    if (proc === undefined) return
    child = undefined
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGCONT")
      proc.kill(signal)
    }
    await exited(proc)
  }

  await launch()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await terminate("SIGTERM")
      rmSync(dir, { recursive: true, force: true })
    },
    kill: () => terminate("SIGKILL"),
    restart: async () => {
      await terminate("SIGKILL")
      await launch()
    },
    pause: () => {
      child?.kill("SIGSTOP")
    },
    resume: () => {
      child?.kill("SIGCONT")
    }
  }
}
