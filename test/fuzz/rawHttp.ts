import { createConnection } from "node:net"

export interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** The server kept the connection open past the timeout without finishing a response. */
  readonly timedOut: boolean
}

const dechunk = (data: Buffer): Buffer => {
  const parts: Array<Buffer> = []
  let at = 0
  while (at < data.length) {
    const lineEnd = data.indexOf("\r\n", at)
    if (lineEnd < 0) break
    const size = parseInt(data.subarray(at, lineEnd).toString("latin1").split(";")[0] ?? "0", 16)
    if (!Number.isFinite(size) || size === 0) break
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
    at = lineEnd + 2 + size + 2
  }
  return Buffer.concat(parts)
}

const parse = (data: Buffer, timedOut: boolean): RawResponse => {
  const split = data.indexOf("\r\n\r\n")
  const head = (split < 0 ? data : data.subarray(0, split)).toString("latin1")
  const [statusLine = "", ...lines] = head.split("\r\n")
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(":")
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const rawBody = split < 0 ? Buffer.alloc(0) : data.subarray(split + 4)
  const body = (headers["transfer-encoding"] === "chunked" ? dechunk(rawBody) : rawBody).toString("utf8")
  return { status, headers, body, timedOut }
}

const complete = (data: Buffer): boolean => {
  const split = data.indexOf("\r\n\r\n")
  if (split < 0) return false
  const head = data.subarray(0, split).toString("latin1")
  if (/^content-type: text\/event-stream/im.test(head)) return true
  const body = data.length - split - 4
  const length = /^content-length: *(\d+)/im.exec(head)?.[1]
  if (length !== undefined) return body >= Number(length)
  if (/^transfer-encoding: *chunked/im.test(head)) return data.subarray(split + 4).includes("0\r\n\r\n")
  return false
}

/**
 * Sends `request` byte for byte (no client-side validation or normalisation, unlike fetch or http.request) and reads
 * the answer until the server closes the connection. Streams (SSE) and hung answers end at `timeoutMs`.
 */
export const rawRequest = (port: number, request: Buffer, timeoutMs = 5_000): Promise<RawResponse> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    let settled = false
    const socket = createConnection({ port, host: "127.0.0.1" })
    const finish = (timedOut: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(parse(Buffer.concat(chunks), timedOut))
    }
    const timer = setTimeout(() => finish(true), timeoutMs)
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      // a keep-alive answer or a stream does not end the connection; a complete response (or a stream's head) is enough
      if (complete(Buffer.concat(chunks))) finish(false)
    })
    socket.on("end", () => finish(false))
    socket.on("close", () => finish(false))
    // the server may close first (e.g. after a 431) while we still write: not our concern
    socket.on("error", () => finish(false))
    socket.write(request)
  })

/** An HTTP/1.1 request with `Connection: close`, built from already-encoded parts. */
export const buildRequest = (
  method: string,
  target: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body?: string
): Buffer => {
  const lines = [`${method} ${target} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close"]
  for (const [name, value] of headers) lines.push(`${name}: ${value}`)
  if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n${body ?? ""}`, "utf8")
}
