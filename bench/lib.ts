import { type ChildProcess, spawn } from "node:child_process"
import { cpus, totalmem } from "node:os"
import { createServer } from "node:net"

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `url` until it answers 200; resolves with the ms elapsed since `since`. */
export const waitFor200 = async (
  url: string,
  since: number,
  timeoutMs = 30_000,
  child?: ChildProcess
): Promise<number> => {
  for (;;) {
    if (child !== undefined && child.exitCode !== null) throw new Error(`the process exited with ${child.exitCode}`)
    try {
      const res = await fetch(url)
      await res.arrayBuffer()
      if (res.status === 200) return performance.now() - since
    } catch {
      // not listening yet
    }
    if (performance.now() - since > timeoutMs) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`)
    await sleep(2)
  }
}

export interface Child {
  readonly process: ChildProcess
  readonly stop: () => Promise<void>
}

export const startProcess = (args: ReadonlyArray<string>, env: Record<string, string>): Child => {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "ignore", "inherit"]
  })
  return {
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.kill("SIGTERM")
      })
  }
}

/** Starts the compiled server on a free port and waits for /v1/health. */
export const startServer = async (env: Record<string, string>) => {
  const port = await freePort()
  // BENCH_SERVER_BUNDLE: another build's bundle (an earlier commit's), measured with this harness
  const bundle = process.env.BENCH_SERVER_BUNDLE ?? "dist/bundle/main.mjs"
  const child = startProcess([bundle], { HOST: "127.0.0.1", PORT: String(port), ...env })
  const url = `http://127.0.0.1:${port}`
  await waitFor200(`${url}/v1/health`, performance.now(), 30_000, child.process)
  return { ...child, url, port }
}

export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN)

export const median = (values: ReadonlyArray<number>) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50
  )

export const machine = () => {
  const cpu = cpus()
  return {
    cpu: cpu[0]?.model.trim() ?? "unknown",
    cores: cpu.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`
  }
}

export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "—"
