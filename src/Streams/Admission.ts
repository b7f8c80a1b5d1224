import {
  type IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  ServerResponse,
  STATUS_CODES
} from "node:http"
import type { Duplex } from "node:stream"
import type { Subscription } from "./Events.js"

/** What a stream route decided for a request: the stream to open. */
export type Admission =
  | { readonly kind: "sse"; readonly subscription: Subscription }
  | { readonly kind: "ws"; readonly multiplexed: true }
  | { readonly kind: "ws"; readonly multiplexed: false; readonly subscription: Subscription }

/** The route's answer as the app wrote it: a status, headers and body, or a go-ahead with an Admission. */
export interface Verdict {
  readonly status: number
  readonly headers: Record<string, string | Array<string>>
  readonly body: Buffer
  readonly admission: Admission | undefined
}

const flatten = (headers: OutgoingHttpHeaders | ReadonlyArray<OutgoingHttpHeader> | undefined) => {
  const out: Record<string, string | Array<string>> = {}
  if (headers === undefined) return out
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) out[String(headers[i]).toLowerCase()] = String(headers[i + 1])
    return out
  }
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    out[name.toLowerCase()] = Array.isArray(value) ? value.map(String) : String(value)
  }
  return out
}

/**
 * A response that goes nowhere: the app (router, auth, rate limit, logs, metrics) answers a stream request into
 * it, and the stream gateway reads the verdict. So every stream is admitted exactly like any other request, while
 * the long-lived connection that follows is served without a fiber of its own.
 */
export class AdmissionResponse extends ServerResponse {
  #status = 200
  #headers: Record<string, string | Array<string>> = {}
  #ended = false
  readonly #request: IncomingMessage
  readonly #onVerdict: (verdict: Verdict) => void

  constructor(request: IncomingMessage, onVerdict: (verdict: Verdict) => void) {
    super(request)
    this.#request = request
    this.#onVerdict = onVerdict
  }

  override writeHead(
    statusCode: number,
    message?: string | OutgoingHttpHeaders | Array<OutgoingHttpHeader>,
    headers?: OutgoingHttpHeaders | Array<OutgoingHttpHeader>
  ): this {
    this.#status = statusCode
    this.#headers = { ...this.#headers, ...flatten(typeof message === "string" ? headers : message) }
    return this
  }

  override end(chunk?: unknown, encoding?: unknown, callback?: unknown): this {
    if (this.#ended) return this
    this.#ended = true
    // what `writableEnded` reads: the app's client-abort watch must not mistake the later "close" for one
    this.finished = true
    const done = [chunk, encoding, callback].find((a): a is () => void => typeof a === "function")
    const body =
      typeof chunk === "string"
        ? Buffer.from(chunk)
        : chunk instanceof Uint8Array
          ? Buffer.from(chunk)
          : Buffer.alloc(0)
    const admission = admissions.get(this.#request)
    admissions.delete(this.#request)
    this.#onVerdict({ status: this.#status, headers: this.#headers, body, admission })
    done?.()
    // listeners counting in-flight requests wait for "close"; by the next turn the app's fiber has finished
    setImmediate(() => this.emit("close"))
    return this
  }
}

const admissions = new WeakMap<IncomingMessage, Admission>()

/** Whether the gateway is admitting this request (else a route answers it as an ordinary request). */
export const isAdmission = (response: ServerResponse): boolean => response instanceof AdmissionResponse

/** Records the route's go-ahead for the gateway. */
export const admit = (request: IncomingMessage, admission: Admission): void => {
  admissions.set(request, admission)
}

/** An HTTP response written straight onto a socket whose upgrade was refused. */
export const refuseUpgrade = (socket: Duplex, verdict: Verdict): void => {
  const lines = [`HTTP/1.1 ${verdict.status} ${STATUS_CODES[verdict.status] ?? ""}`]
  for (const [name, value] of Object.entries(verdict.headers)) {
    if (name === "content-length" || name === "connection") continue
    for (const v of typeof value === "string" ? [value] : value) lines.push(`${name}: ${v}`)
  }
  lines.push(`content-length: ${verdict.body.byteLength}`, "connection: close", "", "")
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n")), verdict.body]))
}
