import { OpenApi } from "@effect/platform"
import { Api } from "../Api.js"
import type { StreamChannel } from "../Exchange/Exchange.js"
import { STREAM_CHANNELS } from "../Streams/Protocol.js"
import { DOCS_PATHS } from "./Docs.js"

/** The path of a request target, without its query: the one place a URL is split. */
export const pathOf = (url: string): string => {
  const at = url.indexOf("?")
  return at < 0 ? url : url.slice(0, at)
}

/** The query of a request target (after "?"), if it has one. */
export const queryOf = (url: string): string | undefined => {
  const at = url.indexOf("?")
  return at < 0 ? undefined : url.slice(at + 1)
}

const SSE_ROUTE_LIST = STREAM_CHANNELS.map((channel) => [`/v1/stream/${channel}`, channel] as const)
const WS_ROUTE_LIST = [
  ["/ws/ticker", "ticker"],
  ["/ws/realtime", "ticker"],
  ["/ws", "multiplexed"]
] as const

/** The SSE stream routes, one per channel. */
export const SSE_ROUTES: ReadonlyMap<string, StreamChannel> = new Map(SSE_ROUTE_LIST)

/** The WebSocket routes: one ticker each on /ws/ticker and /ws/realtime, any subscriptions on /ws. */
export const WS_ROUTES: ReadonlyMap<string, StreamChannel | "multiplexed"> = new Map(WS_ROUTE_LIST)

/** Every stream route's path, as the router takes it. */
export const STREAM_ROUTE_PATHS = [...SSE_ROUTE_LIST, ...WS_ROUTE_LIST].map(([path]) => path)

/** Routes anyone may call: liveness probes and the API documentation. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(["/v1/health", "/openapi.json", ...Object.values(DOCS_PATHS)])

/** Every route of the server; none has path parameters, so a route is its path. */
const KNOWN_ROUTES: ReadonlySet<string> = new Set([
  ...Object.keys(OpenApi.fromApi(Api).paths),
  ...PUBLIC_PATHS,
  "/",
  "/metrics",
  "/mcp",
  ...STREAM_ROUTE_PATHS
])

/** The route label of a path: the path of a known route, one bucket for everything else (label values stay bounded). */
export const labelOf = (path: string): string => (KNOWN_ROUTES.has(path) ? path : "unmatched")

/** Whether a path is a stream route (SSE or WebSocket). */
export const isStreamRoute = (path: string): boolean => SSE_ROUTES.has(path) || WS_ROUTES.has(path)

/** Whether a path is exempt from the rate limit (liveness, docs and the metrics scrape). */
export const isUnlimited = (path: string): boolean => PUBLIC_PATHS.has(path) || path === "/metrics"
