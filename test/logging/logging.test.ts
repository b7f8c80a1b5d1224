import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { spawn } from "node:child_process"
import { recordRequest } from "../../src/Http/Observability.js"
import { makeLineWriter, requestLogLine, sinkLogger, type WriteSome } from "../../src/Logging.js"

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const eagain = () => Object.assign(new Error("EAGAIN: resource temporarily unavailable"), { code: "EAGAIN" })

/** An output that takes at most `capacity` bytes per call (none while `full`), recording what it took. */
const makeOutput = (capacity = Infinity) => {
  const chunks: Array<Uint8Array> = []
  const state = {
    full: false,
    calls: 0,
    get text() {
      return Buffer.concat(chunks).toString()
    }
  }
  const writeSome: WriteSome = (data) => {
    state.calls += 1
    if (state.full) throw eagain()
    const bytes = typeof data === "string" ? Buffer.from(data) : data
    const taken = bytes.subarray(0, Math.min(bytes.length, capacity))
    chunks.push(Buffer.from(taken))
    return taken.length
  }
  return { state, writeSome }
}

describe("the buffered line writer", () => {
  it("writes the lines of one event-loop turn in one write", async () => {
    const { state, writeSome } = makeOutput()
    const writer = makeLineWriter(writeSome)
    writer.write("a")
    writer.write("b")
    writer.write("c")
    expect(state.calls).toBe(0)
    await nextTurn()
    expect([state.calls, state.text]).toEqual([1, "a\nb\nc\n"])
  })

  it("with a linger, lines of several turns share one write, made once the linger is over", async () => {
    const { state, writeSome } = makeOutput()
    const writer = makeLineWriter(writeSome, { lingerMs: 30 })
    const started = performance.now()
    writer.write("a")
    await nextTurn()
    writer.write("b")
    await nextTurn()
    expect(state.calls).toBe(0)
    while (state.calls === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    expect(performance.now() - started).toBeGreaterThanOrEqual(29)
    expect([state.calls, state.text]).toEqual([1, "a\nb\n"])
  })

  it("writes at once when a chunk is full", () => {
    const { state, writeSome } = makeOutput()
    const writer = makeLineWriter(writeSome, { chunkSize: 10 })
    writer.write("12345")
    expect(state.calls).toBe(0)
    writer.write("67890")
    expect(state.text).toBe("12345\n67890\n")
  })

  it("a full output (EAGAIN, partial writes) gets the rest later, in order; past the bound lines are dropped", async () => {
    const { state, writeSome } = makeOutput(7)
    const writer = makeLineWriter(writeSome, { chunkSize: 1, maxBuffered: 30 })
    state.full = true
    for (let i = 0; i < 10; i++) writer.write(`line-${i}`)
    expect(state.text).toBe("")
    state.full = false
    await sleep(300)
    const lines = state.text.split("\n").filter((line) => line.length > 0)
    // line-0 waited for the output; lines were kept while fewer than 30 characters were (line-1..line-5)
    expect(lines.slice(0, 6)).toEqual(["line-0", "line-1", "line-2", "line-3", "line-4", "line-5"])
    const report = JSON.parse(lines[6] ?? "{}") as { message: string; logLevel: string }
    expect([report.message, report.logLevel]).toEqual(["4 log lines dropped: log output blocked", "WARN"])
    expect(lines.length).toBe(7)
    writer.write("after")
    await sleep(20)
    expect(state.text.endsWith("after\n")).toBe(true)
  })

  it("partial writes resume at the right byte, also inside multi-byte characters", async () => {
    const { state, writeSome } = makeOutput(5)
    const writer = makeLineWriter(writeSome)
    writer.write("prix 42 € — ok")
    writer.write("ünïcödé")
    await sleep(50)
    expect(state.text).toBe("prix 42 € — ok\nünïcödé\n")
  })

  it("at exit everything is written synchronously, waiting out a briefly full output", () => {
    let refusals = 3
    let text = ""
    const writer = makeLineWriter((data) => {
      if (refusals-- > 0) throw eagain()
      const bytes = typeof data === "string" ? Buffer.from(data) : data
      text += Buffer.from(bytes).toString()
      return bytes.length
    })
    writer.write("first")
    writer.write("second")
    writer.flushSync()
    expect(text).toBe("first\nsecond\n")
  })

  it("an output that is gone (EPIPE) swallows the lines and never throws", async () => {
    const writer = makeLineWriter(() => {
      throw Object.assign(new Error("EPIPE: broken pipe"), { code: "EPIPE" })
    })
    writer.write("lost")
    await nextTurn()
    writer.write("also lost")
    expect(() => writer.flushSync()).not.toThrow()
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
