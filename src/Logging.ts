import { Cause, Context, Effect, FiberId, HashMap, Layer, List, Logger, LogLevel } from "effect"
import sonicBoom from "sonic-boom"

/** Where log lines go: JSON lines written in batches; code outside Effect (the hot path) writes here directly. */
export interface LogSinkService {
  /** Queues one line (without its newline). */
  readonly write: (line: string) => void
  /** Writes everything queued now (what a full output cannot take yet is retried, and written at exit). */
  readonly flush: () => void
}

export class LogSink extends Context.Tag("app/LogSink")<LogSink, LogSinkService>() {}

declare module "sonic-boom" {
  interface SonicBoom {
    /** What `write` takes with `contentMode: "buffer"` (sonic-boom's own types list only the string form). */
    write(data: Uint8Array): boolean
  }
}

export interface LineWriterOptions {
  /** Buffered bytes that trigger a write before the linger is over. Default 64 KiB. */
  readonly chunkSize?: number
  /** Buffered bytes beyond which new lines are dropped (and counted) while the output is full. Default 4 MiB. */
  readonly maxBuffered?: number
  /**
   * How long a line may wait for more to share its write (ms). A busy server logs a few lines per event-loop turn,
   * so a short wait saves most of the write syscalls. Default LOG_LINGER_MS.
   */
  readonly lingerMs?: number
}

/**
 * Buffered bytes that trigger a write before the linger is over: a busy server fills one about every linger, so a
 * write (and its thread-pool round trip) carries some hundred lines.
 */
const CHUNK_SIZE = 64 * 1024

/** Log lines reach the output at most this long after they were written (ms), or sooner once a chunk is full. */
export const LOG_LINGER_MS = 20

/**
 * Lines written to a file descriptor through sonic-boom: they accumulate and go out in one write per `lingerMs` (or
 * once `chunkSize` is queued), asynchronously. What a full output (a pipe nobody reads yet, EAGAIN) cannot take is
 * retried by sonic-boom; past `maxBuffered` lines are dropped, and the drop is reported in a line of its own once the
 * output takes lines again. An output that is gone (EPIPE) swallows the lines. `flushSync` writes everything at exit.
 */
export const makeLineWriter = (fd: number, options: LineWriterOptions = {}) => {
  const chunkSize = options.chunkSize ?? CHUNK_SIZE
  // Buffer lines: in string mode sonic-boom measures the whole pending chunk's UTF-8 length on every write
  const boom = new sonicBoom.SonicBoom({
    fd,
    sync: false,
    contentMode: "buffer",
    minLength: chunkSize,
    // one write takes up to this much (sonic-boom wants it above minLength)
    maxWrite: chunkSize + CHUNK_SIZE,
    maxLength: options.maxBuffered ?? 4 * 1024 * 1024,
    periodicFlush: options.lingerMs ?? LOG_LINGER_MS
  })
  let dropped = 0
  boom.on("drop", () => {
    dropped += 1
  })
  // EPIPE, EBADF: nobody reads the logs any more
  boom.on("error", () => undefined)

  const report = (): void => {
    if (dropped === 0) return
    const count = dropped
    dropped = 0
    boom.write(
      Buffer.from(
        jsonLogLine(LogLevel.Warning, `${count} log lines dropped: log output blocked`, { component: "logging" }) + "\n"
      )
    )
    // still full: the report itself was dropped, keep counting from where it was
    if (dropped > 0) dropped = count
  }
  // the output took bytes again: the report goes out now, not with whichever line comes next
  boom.on("write", report)

  const write = (line: string): void => {
    report()
    boom.write(Buffer.from(line + "\n"))
  }

  const flush = (): void => {
    boom.flush()
  }

  /** At exit no later turn comes: everything queued is written now (sonic-boom waits out a full output). */
  const flushSync = (): void => {
    try {
      boom.flushSync()
    } catch {
      // the output is gone: nothing more can be written
    }
  }

  return { write, flush, flushSync } as const
}

const writers = new Map<"stdout" | "stderr", ReturnType<typeof makeLineWriter>>()

/** One writer per process stream, so that every user of a stream shares its order; flushed on process exit. */
const writerFor = (stream: "stdout" | "stderr") => {
  let writer = writers.get(stream)
  if (writer === undefined) {
    const created = makeLineWriter(stream === "stdout" ? 1 : 2)
    process.once("exit", () => created.flushSync())
    writers.set(stream, created)
    writer = created
  }
  return writer
}

let lastMs = -1
let lastIso = ""

/** `new Date().toISOString()`, formatted once per millisecond: a busy server logs many lines in the same one. */
export const isoNow = (): string => {
  const ms = Date.now()
  if (ms !== lastMs) {
    lastMs = ms
    lastIso = new Date(ms).toISOString()
  }
  return lastIso
}

/**
 * A log line shaped like Effect's `Logger.jsonLogger` output, for code that logs without a fiber (so `fiberId` is
 * empty and there are no spans).
 */
export const jsonLogLine = (
  level: LogLevel.LogLevel,
  message: string,
  annotations: Readonly<Record<string, unknown>>
): string =>
  JSON.stringify({
    message,
    logLevel: level.label,
    timestamp: isoNow(),
    annotations,
    spans: {},
    fiberId: ""
  })

/** The request log line of one request, prepared for its method, route, status and cache state. */
export type RequestLogLine = (durationMs: number, client: string, timestamp?: string, fiberId?: string) => string

/**
 * The one formatter of the request log record ("http request" at Info with method, route, status, durationMs, cache
 * and client), shaped like `Logger.jsonLogger`'s line. Both paths use it: the hot path prepares one per cached URL and
 * writes straight into the sink; `sinkLogger` formats the Effect path's request records with it. The constant parts
 * are serialized once, so a request costs only the timestamp, duration and client.
 */
export const requestLogLine = (route: string, method: string, status: number, cache: string): RequestLogLine => {
  const fixed = `"method":${JSON.stringify(method)},"route":${JSON.stringify(route)},"status":${status}`
  const middle = `","annotations":{${fixed},"durationMs":`
  const tail = `,"cache":${JSON.stringify(cache)},"client":`
  return (durationMs, client, timestamp = isoNow(), fiberId = "") =>
    '{"message":"http request","logLevel":"INFO","timestamp":"' +
    timestamp +
    middle +
    (Number.isFinite(durationMs) ? durationMs : "null") +
    tail +
    JSON.stringify(client) +
    '},"spans":{},"fiberId":' +
    (fiberId === "" ? '""' : JSON.stringify(fiberId)) +
    "}"
}

const annotation = <A>(options: Logger.Logger.Options<unknown>, key: string, is: (value: unknown) => value is A) => {
  const value = HashMap.get(options.annotations, key)
  return value._tag === "Some" && is(value.value) ? value.value : undefined
}
const isString = (value: unknown): value is string => typeof value === "string"
const isNumber = (value: unknown): value is number => typeof value === "number"

/** The Effect path's request record through `requestLogLine`; undefined for any other line (or one with extras). */
const requestRecordLine = (options: Logger.Logger.Options<unknown>): string | undefined => {
  const message = Array.isArray(options.message) && options.message.length === 1 ? options.message[0] : options.message
  if (message !== "http request" || options.logLevel !== LogLevel.Info) return undefined
  if (HashMap.size(options.annotations) !== 6 || List.isCons(options.spans) || !Cause.isEmpty(options.cause)) {
    return undefined
  }
  const method = annotation(options, "method", isString)
  const route = annotation(options, "route", isString)
  const status = annotation(options, "status", isNumber)
  const durationMs = annotation(options, "durationMs", isNumber)
  const cache = annotation(options, "cache", isString)
  const client = annotation(options, "client", isString)
  if (
    method === undefined ||
    route === undefined ||
    status === undefined ||
    durationMs === undefined ||
    cache === undefined ||
    client === undefined
  ) {
    return undefined
  }
  return requestLogLine(route, method, status, cache)(
    durationMs,
    client,
    options.date.toISOString(),
    FiberId.threadName(options.fiberId)
  )
}

/** Effect's JSON logger writing to a sink; request records go through the one request-line formatter. */
export const sinkLogger = (sink: LogSinkService): Logger.Logger<unknown, void> =>
  Logger.make((options) => sink.write(requestRecordLine(options) ?? Logger.jsonLogger.log(options)))

/**
 * Structured JSON lines at the configured level, written in batches. Stdio MCP mode sends them to stderr so stdout
 * carries nothing but protocol. Provides the LogSink for code that logs outside Effect.
 */
export const LoggingLive = (level: LogLevel.LogLevel, stream: "stdout" | "stderr" = "stdout"): Layer.Layer<LogSink> => {
  const writer = writerFor(stream)
  const sink = LogSink.of({ write: writer.write, flush: writer.flush })
  return Layer.mergeAll(
    Logger.replace(Logger.defaultLogger, sinkLogger(sink)),
    Logger.minimumLogLevel(level),
    Layer.scoped(
      LogSink,
      Effect.as(
        Effect.addFinalizer(() => Effect.sync(writer.flush)),
        sink
      )
    )
  )
}
