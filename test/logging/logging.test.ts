import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { execFileSync, spawn } from "node:child_process"
import fs, { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { vi } from "vitest"
import { recordRequest } from "../../src/Http/Observability.js"
import { makeLineWriter, requestLogLine, sinkLogger } from "../../src/Logging.js"

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A fresh file and its descriptor, read back as text. */
const tempOutput = () => {
  const dir = mkdtempSync(join(tmpdir(), "logging-"))
  const path = join(dir, "out.log")
  const fd = openSync(path, "w")
  return {
    fd,
    text: () => readFileSync(path, "utf8"),
    close: () => {
      closeSync(fd)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

const waitFor = async (condition: () => boolean, timeoutMs = 3_000) => {
  const deadline = Date.now() + timeoutMs
  while (!condition() && Date.now() < deadline) await sleep(5)
  return condition()
}

/** A pipe nobody reads yet (a FIFO opened both ways, non-blocking): writes past its capacity get EAGAIN. */
const blockedPipe = () => {
  const dir = mkdtempSync(join(tmpdir(), "logging-"))
  const path = join(dir, "fifo")
  execFileSync("mkfifo", [path])
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK)
  let filler = 0
  const block = Buffer.alloc(4096, "x")
  for (;;) {
    try {
      filler += writeSync(fd, block)
    } catch {
      break
    }
  }
  let text = ""
  const chunk = Buffer.alloc(65536)
  /** Reads what the pipe holds, the filler first (dropped). */
  const drain = () => {
    for (;;) {
      let n: number
      try {
        n = readSync(fd, chunk)
      } catch {
        return
      }
      if (n === 0) return
      const skipped = Math.min(filler, n)
      filler -= skipped
      text += chunk.subarray(skipped, n).toString("latin1")
    }
  }
  return {
    fd,
    drain,
    text: () => Buffer.from(text, "latin1").toString("utf8"),
    close: () => {
      closeSync(fd)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

describe("the buffered line writer (sonic-boom)", () => {
  it("with a linger, lines of several turns share one write, made once the linger is over", async () => {
    const output = tempOutput()
    const writes = vi.spyOn(fs, "write")
    try {
      const writer = makeLineWriter(output.fd, { lingerMs: 200 })
      writer.write("a")
      await nextTurn()
      writer.write("b")
      await nextTurn()
      expect(output.text()).toBe("")
      expect(await waitFor(() => output.text() === "a\nb\n")).toBe(true)
      expect(writes.mock.calls.filter((call) => call[0] === output.fd).length).toBe(1)
    } finally {
      writes.mockRestore()
      output.close()
    }
  })

  it("writes without waiting for the linger once a chunk is full", async () => {
    const output = tempOutput()
    try {
      const writer = makeLineWriter(output.fd, { chunkSize: 10, lingerMs: 60_000 })
      writer.write("12345")
      await sleep(50)
      expect(output.text()).toBe("")
      writer.write("67890")
      expect(await waitFor(() => output.text() === "12345\n67890\n", 2_000)).toBe(true)
    } finally {
      output.close()
    }
  })

  it("a full output (EAGAIN) gets the rest later, in order; past the bound lines are dropped, then reported", async () => {
    const pipe = blockedPipe()
    try {
      const writer = makeLineWriter(pipe.fd, { chunkSize: 1, maxBuffered: 200 })
      const line = (i: number) => `line-${i}-${"x".repeat(32)}`
      writer.write("prix €")
      // 7 + 4 × 40 characters fit within 200; the report (about 120) only once the output took them
      for (let i = 0; i < 9; i++) writer.write(line(i))
      await sleep(50)
      pipe.drain()
      expect(pipe.text()).toBe("")
      // the output takes lines again: what was kept follows, in order, then the report, without waiting for a line
      const kept = ["prix €", line(0), line(1), line(2), line(3)]
      expect(
        await waitFor(() => {
          pipe.drain()
          return pipe.text().split("\n").length === kept.length + 2
        })
      ).toBe(true)
      writer.write("after")
      expect(
        await waitFor(() => {
          pipe.drain()
          return pipe.text().endsWith("after\n")
        })
      ).toBe(true)
      const lines = pipe
        .text()
        .split("\n")
        .filter((line) => line.length > 0)
      expect(lines.slice(0, 5)).toEqual(kept)
      const report = JSON.parse(lines[5] ?? "{}") as { message: string; logLevel: string }
      expect([report.message, report.logLevel]).toEqual(["5 log lines dropped: log output blocked", "WARN"])
      expect(lines.slice(6)).toEqual(["after"])
    } finally {
      pipe.close()
    }
  })

  it("at exit everything queued is written synchronously", () => {
    const output = tempOutput()
    try {
      const writer = makeLineWriter(output.fd, { lingerMs: 60_000 })
      writer.write("first")
      writer.write("second")
      writer.flushSync()
      expect(output.text()).toBe("first\nsecond\n")
    } finally {
      output.close()
    }
  })

  it("an output that is gone (EPIPE) swallows the lines and never throws", async () => {
    const dir = mkdtempSync(join(tmpdir(), "logging-"))
    const path = join(dir, "fifo")
    execFileSync("mkfifo", [path])
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
    const fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK)
    closeSync(reader)
    try {
      const writer = makeLineWriter(fd, { lingerMs: 5 })
      writer.write("lost")
      await sleep(50)
      writer.write("also lost")
      expect(() => writer.flushSync()).not.toThrow()
      await sleep(50)
    } finally {
      closeSync(fd)
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("LoggingLive: process.exit() right after a burst of logs loses no line, even on a slow pipe", async () => {
    const script = `
      import { Effect, LogLevel } from "effect"
      import { LoggingLive } from "./src/Logging.ts"
      Effect.runSync(
        Effect.forEach(Array.from({ length: 5000 }, (_, i) => i), (i) => Effect.logInfo("burst", i)).pipe(
          Effect.provide(LoggingLive(LogLevel.Info))
        )
      )
      process.exit(0)`
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    // the reader starts late: the pipe fills while the process is already exiting
    child.stdout.pause()
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve))
    await sleep(1_500)
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk))
    child.stdout.resume()
    await new Promise((resolve) => child.stdout.once("end", resolve))
    expect(await exited).toBe(0)
    const lines = out.split("\n").filter((line) => line.length > 0)
    expect(lines.length).toBe(5000)
    const last = JSON.parse(lines[4999] ?? "{}") as { message: unknown }
    expect(last.message).toEqual(["burst", 4999])
  }, 20_000)
})

describe("log line shapes", () => {
  it.effect("the sink logger writes exactly Effect's jsonLogger line", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const logger = sinkLogger({ write: (line) => lines.push(line), flush: () => undefined })
      yield* Effect.logWarning("something", { n: 1 }).pipe(
        Effect.annotateLogs({ component: "test" }),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      const line = JSON.parse(lines[0] ?? "{}") as Record<string, unknown>
      expect(Object.keys(line)).toEqual(["message", "logLevel", "timestamp", "annotations", "spans", "fiberId"])
      expect([line["message"], line["logLevel"], line["annotations"]]).toEqual([
        ["something", { n: 1 }],
        "WARN",
        { component: "test" }
      ])
    })
  )

  it.effect(
    "one formatter for the request record: the Effect path's line is requestLogLine's, shaped like jsonLogger's",
    () =>
      Effect.gen(function* () {
        const lines: Array<string> = []
        const reference: Array<string> = []
        const sink = sinkLogger({ write: (line) => lines.push(line), flush: () => undefined })
        const both = Logger.make<unknown, void>((options) => {
          sink.log(options)
          reference.push(Logger.jsonLogger.log(options))
        })
        const record = {
          method: "GET",
          route: "/v1/markets/ticker",
          status: 200,
          seconds: 0.0042,
          cache: "MISS",
          client: 'key:"odd\\'
        }
        yield* recordRequest(record).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, both)))
        yield* Effect.logInfo("http request").pipe(
          Effect.annotateLogs({ ...record, durationMs: 4.2, extra: 1 }),
          Effect.provide(Logger.replace(Logger.defaultLogger, both))
        )
        expect(lines.length).toBe(2)
        const expected = JSON.parse(reference[0] ?? "{}") as { timestamp: string; fiberId: string }
        // the exact bytes of the one formatter, given the Effect log's timestamp and fiber
        expect(lines[0]).toBe(
          requestLogLine("/v1/markets/ticker", "GET", 200, "MISS")(
            4.2,
            'key:"odd\\',
            expected.timestamp,
            expected.fiberId
          )
        )
        expect(JSON.parse(lines[0] ?? "{}")).toEqual(expected)
        expect(expected.fiberId).toMatch(/^#\d+$/)
        // a line that is not exactly the request record (here an extra annotation) is jsonLogger's, nothing dropped
        expect(lines[1]).toBe(reference[1])
      })
  )

  it("the hot path's prepared line: the current time, no fiber, a non-finite duration as null", () => {
    const line = requestLogLine("/v1/markets/ticker", "GET", 200, "HIT")
    const before = Date.now()
    const fast = JSON.parse(line(0.42, "anonymous")) as Record<string, unknown>
    expect(Object.keys(fast)).toEqual(["message", "logLevel", "timestamp", "annotations", "spans", "fiberId"])
    expect(fast).toEqual({
      message: "http request",
      logLevel: "INFO",
      timestamp: fast["timestamp"],
      annotations: {
        method: "GET",
        route: "/v1/markets/ticker",
        status: 200,
        durationMs: 0.42,
        cache: "HIT",
        client: "anonymous"
      },
      spans: {},
      fiberId: ""
    })
    expect(Date.parse(String(fast["timestamp"]))).toBeGreaterThanOrEqual(before - 1)
    expect(
      (JSON.parse(line(NaN, "anonymous")) as { annotations: { durationMs: unknown } }).annotations.durationMs
    ).toBe(null)
  })
})
