import { Cause, Context, Effect, FiberId, HashMap, Layer, List, Logger, LogLevel } from "effect"
import { writeSync } from "node:fs"

/** Where log lines go: JSON lines written in batches; code outside Effect (the hot path) writes here directly. */
export interface LogSinkService {
  /** Queues one line (without its newline). */
  readonly write: (line: string) => void
  /** Writes everything queued now (what a full output cannot take yet is retried, and written at exit). */
  readonly flush: () => void
}

export class LogSink extends Context.Tag("app/LogSink")<LogSink, LogSinkService>() {}

/** Writes what the output takes of `data` now and returns how many bytes; throws EAGAIN when it takes nothing. */
export type WriteSome = (data: string | Uint8Array) => number

export interface LineWriterOptions {
  /** Buffered characters that trigger a write before the end of the event-loop turn. Default 64 KiB. */
  readonly chunkSize?: number
  /** Buffered characters beyond which new lines are dropped (and counted) while the output is full. Default 4 MiB. */
  readonly maxBuffered?: number
  /**
   * How long a line may wait for more to share its write (ms). 0, the default: until the end of the event-loop turn.
   * A busy server logs a few lines per turn, so a short wait saves most of the write syscalls.
   */
  readonly lingerMs?: number
}

const isEagain = (error: unknown) =>
  error instanceof Error && "code" in error && (error.code === "EAGAIN" || error.code === "EWOULDBLOCK")

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/**
 * A console.log per line costs a formatting pass and a write syscall each; here lines accumulate and go out in one
 * write per event-loop turn, or `lingerMs` later (or once `chunkSize` is queued). Writes go to the file descriptor directly rather than
 * through process.stdout, whose queued writes process.exit() would lose: what the output cannot take yet (a full
 * pipe) is retried on a timer and written synchronously at exit. While the output is full lines accumulate up to
 * `maxBuffered`, then are dropped, and the drop is reported in a line of its own.
 */
export const makeLineWriter = (writeSome: WriteSome, options: LineWriterOptions = {}) => {
  const chunkSize = options.chunkSize ?? 64 * 1024
  const maxBuffered = options.maxBuffered ?? 4 * 1024 * 1024
  const lingerMs = options.lingerMs ?? 0
  let buffer = ""
  let dropped = 0
  let scheduled = false
  /** Bytes the output could not take yet; set while a retry is pending. */
  let stalled: Uint8Array | undefined
  let retry: ReturnType<typeof setTimeout> | undefined
  let retryDelay = 1

  const take = (): string => {
    let text = buffer
    buffer = ""
    if (dropped > 0) {
      text += jsonLogLine(LogLevel.Warning, `${dropped} log lines dropped: log output blocked`, {
        component: "logging"
      })
      text += "\n"
      dropped = 0
    }
    return text
  }

  /** The part of `data` the output did not take; undefined once all is written (or the output is gone). */
  const writeOut = (data: string | Uint8Array): Uint8Array | undefined => {
    // strings go out as they are (no Buffer to allocate); bytes are only needed to resume after a partial write
    let rest: string | Uint8Array = data
    while (rest.length > 0) {
      try {
        const written = writeSome(rest)
        if (typeof rest === "string") {
          if (written >= Buffer.byteLength(rest)) return undefined
          rest = Buffer.from(rest)
        }
        rest = rest.subarray(written)
      } catch (error) {
        if (isEagain(error)) return typeof rest === "string" ? Buffer.from(rest) : rest
        // EPIPE, EBADF: nobody reads the logs any more
        return undefined
      }
    }
    return undefined
  }

  const retryLater = () => {
    retry = setTimeout(() => {
      retry = undefined
      stalled = stalled === undefined ? undefined : writeOut(stalled)
      if (stalled === undefined) {
        retryDelay = 1
        flush()
      } else {
        retryDelay = Math.min(retryDelay * 2, 100)
        retryLater()
      }
    }, retryDelay)
    retry.unref()
  }

  const flush = (): void => {
    if (stalled !== undefined || (buffer === "" && dropped === 0)) return
    stalled = writeOut(take())
    if (stalled !== undefined) retryLater()
  }

  const scheduledFlush = () => {
    scheduled = false
    flush()
  }

  const write = (line: string): void => {
    if (buffer.length >= maxBuffered) {
      dropped += 1
      return
    }
    buffer += line + "\n"
    if (stalled !== undefined) return
    if (buffer.length >= chunkSize) flush()
    else if (!scheduled) {
      scheduled = true
      if (lingerMs > 0) setTimeout(scheduledFlush, lingerMs).unref()
      else setImmediate(scheduledFlush)
    }
  }

  /** At exit no later turn comes: everything is written now, waiting out a full output for up to `timeoutMs`. */
  const flushSync = (timeoutMs = 2_000): void => {
    if (retry !== undefined) clearTimeout(retry)
    retry = undefined
    const queued = buffer === "" && dropped === 0 ? undefined : take()
    let rest: string | Uint8Array | undefined =
      stalled === undefined ? queued : queued === undefined ? stalled : Buffer.concat([stalled, Buffer.from(queued)])
    stalled = undefined
    const deadline = Date.now() + timeoutMs
    while (rest !== undefined) {
      rest = writeOut(rest)
      if (rest === undefined || Date.now() >= deadline) return
      sleepSync(2)
    }
  }

  return { write, flush, flushSync } as const
}

/** Log lines reach the output at most this long after they were written (ms), or sooner in 64 KiB chunks. */
export const LOG_LINGER_MS = 20

const writers = new Map<"stdout" | "stderr", ReturnType<typeof makeLineWriter>>()

/** One writer per process stream, so that every user of a stream shares its order; flushed on process exit. */
const writerFor = (stream: "stdout" | "stderr") => {
  let writer = writers.get(stream)
  if (writer === undefined) {
    const fd = stream === "stdout" ? 1 : 2
    const created = makeLineWriter((data) => (typeof data === "string" ? writeSync(fd, data) : writeSync(fd, data)), {
      lingerMs: LOG_LINGER_MS
    })
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
