/**
 * An unmasked, final WebSocket text frame (RFC 6455 §5.2) holding `data`: what a server writes for one message.
 * Built once per event, the same bytes go to every subscriber's socket in a single write.
 */
export const textFrame = (data: string): Buffer => {
  const length = Buffer.byteLength(data)
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81
  if (length < 126) {
    frame[1] = length
  } else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  frame.write(data, headerLength, "utf8")
  return frame
}
