import type { Server } from "node:http"
import type { Duplex } from "node:stream"

export interface ClientErrorAnswer {
  readonly status: number
  readonly reason: string
  readonly code: string
  readonly message: string
}

const codeOf = (error: Error): string | undefined =>
  "code" in error && typeof error.code === "string" ? error.code : undefined

/**
 * What a request Node's HTTP parser rejected gets, before any route could see it. Node's own answers (400, 408, 431)
 * have no body; these carry the same statuses with our JSON error shape. Node bounds the request line and all headers
 * together by --max-http-header-size (16 KiB by default), so an over-long URL is a 431 too: Node has no separate URL
 * limit that would give a 414.
 */
export const clientErrorAnswer = (error: Error): ClientErrorAnswer => {
  const code = codeOf(error)
  if (code === "HPE_HEADER_OVERFLOW") {
    return {
      status: 431,
      reason: "Request Header Fields Too Large",
      code: "request_too_large",
      message: "The request line and headers together exceed the server's limit of 16 KiB"
    }
  }
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return {
      status: 408,
      reason: "Request Timeout",
      code: "request_timeout",
      message: "The request was not received completely in time"
    }
  }
  return {
    status: 400,
    reason: "Bad Request",
    code: "bad_request",
    message: "The request is not valid HTTP/1.1 (malformed request line, header or body framing)"
  }
}

/** The raw HTTP/1.1 response for `answer`; the connection is closed after it, as Node does. */
export const clientErrorResponse = (answer: ClientErrorAnswer): string => {
  const body = JSON.stringify({ _tag: "BadRequest", code: answer.code, message: answer.message })
  return (
    `HTTP/1.1 ${answer.status} ${answer.reason}\r\n` +
    "Content-Type: application/json\r\n" +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    "Cache-Control: no-store\r\n" +
    "Connection: close\r\n\r\n" +
    body
  )
}

/**
 * Replaces Node's bodyless answers to unparseable requests with JSON ones. Call on the server before it listens,
 * e.g. in src/Server.ts: `server = installJsonClientErrors(createServer())`.
 */
export const installJsonClientErrors = <S extends Server>(server: S): S => {
  server.on("clientError", (error: Error, socket: Duplex) => {
    // as Node does: a client that went away, or a connection that already carried a response, gets nothing more
    const answered = "bytesWritten" in socket && typeof socket.bytesWritten === "number" && socket.bytesWritten > 0
    if (codeOf(error) === "ECONNRESET" || !socket.writable || answered) {
      socket.destroy()
      return
    }
    socket.end(clientErrorResponse(clientErrorAnswer(error)))
  })
  return server
}
