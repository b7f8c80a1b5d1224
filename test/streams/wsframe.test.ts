import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { describe, expect, it } from "vitest"
import { WebSocket, WebSocketServer } from "ws"
import { textFrame } from "../../src/Streams/WsFrame.js"

/**
 * What a `ws` client receives when a server writes `bytes` straight to the upgraded socket, as the stream gateway
 * does: the text messages, and the close code (1006 when the client found a protocol error).
 */
const receive = (bytes: Buffer, expected: number) =>
  new Promise<{ messages: Array<string>; closed: number | undefined }>((resolve, reject) => {
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
    const server = createServer()
    server.on("upgrade", (request, socket, head) =>
      wss.handleUpgrade(request, socket, head, () => void socket.write(bytes))
    )
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      const client = new WebSocket(`ws://127.0.0.1:${port}`)
      const messages: Array<string> = []
      const done = (closed: number | undefined) => {
        client.terminate()
        server.close()
        resolve({ messages, closed })
      }
      client.on("message", (data: Buffer, isBinary: boolean) => {
        messages.push(isBinary ? "(binary)" : data.toString("utf8"))
        if (messages.length === expected) done(undefined)
      })
      client.on("close", (code: number) => done(code))
      client.on("error", reject)
    })
  })

describe("textFrame", () => {
  it("frames short, 16-bit and 64-bit lengths exactly as RFC 6455 says (FIN, text opcode, unmasked)", () => {
    expect([...textFrame("hi")]).toEqual([0x81, 2, 0x68, 0x69])
    expect([...textFrame("x".repeat(125)).subarray(0, 2)]).toEqual([0x81, 125])
    expect([...textFrame("x".repeat(126)).subarray(0, 4)]).toEqual([0x81, 126, 0, 126])
    expect([...textFrame("x".repeat(65535)).subarray(0, 4)]).toEqual([0x81, 126, 0xff, 0xff])
    expect([...textFrame("x".repeat(65536)).subarray(0, 10)]).toEqual([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0])
    expect(textFrame("x".repeat(65536)).length).toBe(65546)
  })

  it("counts UTF-8 bytes, not characters", () => {
    const frame = textFrame("€")
    expect([...frame]).toEqual([0x81, 3, 0xe2, 0x82, 0xac])
  })

  it("reaches a ws client whole, several frames in a row, written straight to the upgraded socket", async () => {
    const texts = ["", '{"a":1}', "é".repeat(100), "y".repeat(70_000)]
    const received = await receive(Buffer.concat(texts.map(textFrame)), texts.length)
    expect(received).toEqual({ messages: texts, closed: undefined })
  })
})
