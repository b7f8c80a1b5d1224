import type { Socket } from "node:net"
import { WebSocket } from "ws"

/**
 * The `ws` WebSocket that @effect/platform-node's upgrade created on `socket`, once it is open. The platform's Socket
 * exposes neither protocol pings nor `bufferedAmount`; `ws` keeps its instance on the socket under the
 * `websocket` symbol. Undefined if that ever changes: connections then go without server pings.
 */
export const webSocketOn = (socket: Socket): WebSocket | undefined => {
  for (const symbol of Object.getOwnPropertySymbols(socket)) {
    if (symbol.description !== "websocket") continue
    const value: unknown = Reflect.get(socket, symbol)
    if (value instanceof WebSocket) return value
  }
  return undefined
}
