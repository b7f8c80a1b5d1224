import type { Server } from "node:http"

/** The server's own emit: hands an event to its listeners (the Effect platform's among them). */
export type Emit = (event: string | symbol, ...args: Array<unknown>) => boolean

/**
 * Runs `handle` on every event of `server` before its listeners; an event it takes care of (returns true) never
 * reaches them, and it may pass one on later through `emit`. Node has no other hook ahead of "request" and
 * "upgrade" listeners, which is where the hot path and the stream gateway keep Effect's per-request stack out.
 */
export const beforeListeners = (
  server: Server,
  handle: (event: string | symbol, args: Array<unknown>, emit: Emit) => boolean
): Server => {
  const emit = server.emit.bind(server) as Emit
  server.emit = ((event: string | symbol, ...args: Array<unknown>): boolean =>
    handle(event, args, emit) || emit(event, ...args)) as Server["emit"]
  return server
}
