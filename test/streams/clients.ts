import WebSocket, { type ClientOptions } from "ws"

export type Json = Record<string, unknown>

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs` with `describe()`. */
export const eventually = async <A>(
  check: () => A | undefined | Promise<A | undefined>,
  timeoutMs = 5000,
  describe: () => string = () => ""
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  while (true) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms ${describe()}`)
    await sleep(10)
  }
}

export interface SseFrame {
  readonly id?: string
  readonly event?: string
  readonly retry?: string
  readonly data?: Json
}

export interface SseClient {
  readonly status: number
  readonly headers: Headers
  readonly frames: ReadonlyArray<SseFrame>
  readonly events: (type: string) => ReadonlyArray<Json>
  /** The first event of `type` after the `from`-th frame matching `predicate`. */
  readonly next: (
    type: string,
    predicate?: (e: Json) => boolean,
    options?: { from?: number; timeoutMs?: number }
  ) => Promise<Json>
  readonly ended: Promise<void>
  readonly close: () => void
}

const parseFrame = (block: string): SseFrame => {
  const frame: Record<string, string> = {}
  for (const line of block.split("\n")) {
    const at = line.indexOf(": ")
    if (at > 0) frame[line.slice(0, at)] = line.slice(at + 2)
  }
  const { data, ...rest } = frame
  return data === undefined ? rest : { ...rest, data: JSON.parse(data) as Json }
}

/** An SSE client over fetch: frames parsed as they arrive. */
export const openSse = async (url: string): Promise<SseClient> => {
  const controller = new AbortController()
  const response = await fetch(url, { signal: controller.signal })
  const frames: Array<SseFrame> = []
  const body = response.body
  const ended = (async () => {
    if (body === null) return
    const reader = body.getReader()
    const decoder = new TextDecoder()
    let buffer = ""
    try {
      while (true) {
        const { value, done } = await reader.read()
        if (done) return
        buffer += decoder.decode(value, { stream: true })
        let end = buffer.indexOf("\n\n")
        while (end >= 0) {
          frames.push(parseFrame(buffer.slice(0, end)))
          buffer = buffer.slice(end + 2)
          end = buffer.indexOf("\n\n")
        }
      }
    } catch {
      return
    }
  })()
  // frames carry no `event:` line: the JSON's event_type names the event
  const typeOf = (f: SseFrame) => f.data?.["event_type"]
  const events = (type: string) => frames.flatMap((f) => (typeOf(f) === type && f.data !== undefined ? [f.data] : []))
  return {
    status: response.status,
    headers: response.headers,
    frames,
    events,
    next: (type, predicate = () => true, options = {}) =>
      eventually(
        () =>
          frames.slice(options.from ?? 0).find((f) => typeOf(f) === type && f.data !== undefined && predicate(f.data))
            ?.data,
        options.timeoutMs ?? 5000,
        () => `waiting for ${type} in ${JSON.stringify(frames.slice(-5))}`
      ),
    ended,
    close: () => controller.abort()
  }
}

export interface WsClient {
  readonly socket: WebSocket
  readonly messages: ReadonlyArray<Json>
  readonly send: (message: unknown) => void
  readonly next: (predicate: (m: Json) => boolean, options?: { from?: number; timeoutMs?: number }) => Promise<Json>
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>
  readonly close: () => Promise<void>
}

/** A `ws` client collecting every JSON message; resolves once open. */
export const openWs = async (url: string, options: ClientOptions = {}): Promise<WsClient> => {
  const socket = new WebSocket(url, options)
  const messages: Array<Json> = []
  socket.on("message", (data) => messages.push(JSON.parse(String(data)) as Json))
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() }))
  )
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve())
    socket.once("error", reject)
    socket.once("unexpected-response", (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)))
  })
  return {
    socket,
    messages,
    send: (message) => socket.send(typeof message === "string" ? message : JSON.stringify(message)),
    next: (predicate, o = {}) =>
      eventually(
        () => messages.slice(o.from ?? 0).find(predicate),
        o.timeoutMs ?? 5000,
        () => `waiting in ${JSON.stringify(messages.slice(-5))}`
      ),
    closed,
    close: async () => {
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.close(1000)
      await closed
    }
  }
}

/** The HTTP answer to a WebSocket handshake that was refused. */
export const refusedUpgrade = (url: string) =>
  new Promise<{ readonly status: number; readonly body: Json }>((resolve, reject) => {
    const socket = new WebSocket(url)
    socket.once("open", () => reject(new Error("the upgrade was accepted")))
    socket.once("unexpected-response", (_request, response) => {
      let text = ""
      response.on("data", (chunk: Buffer) => (text += chunk.toString()))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Json }))
    })
    socket.once("error", () => undefined)
  })

export const ofType =
  (type: string, fields: Json = {}) =>
  (m: Json) =>
    m["event_type"] === type && Object.entries(fields).every(([k, v]) => m[k] === v)
