import { Option } from "effect"
import { createHash } from "node:crypto"
import type { ExchangeOverride } from "../AppConfig.js"

/** The namespace of a server that talks to the real exchanges (no URL overrides). */
export const LIVE_NAMESPACE = "live"

/**
 * Which upstream a server's cached answers come from, as a short key segment: `live` for the real exchanges, else
 * `u` and a hash of every exchange URL override. Servers sharing one Redis share entries only when they ask the same
 * upstreams: a demo (pointed at its local emulator) never reads or writes the real servers' entries, nor they its own.
 */
export const cacheNamespace = (overrides: Readonly<Record<string, ExchangeOverride>>): string => {
  const pointed = Object.entries(overrides)
    .flatMap(([id, o]) => [
      ...Option.match(o.apiBase, { onNone: () => [], onSome: (url) => [`${id} api ${url}`] }),
      ...Option.match(o.wsBase, { onNone: () => [], onSome: (url) => [`${id} ws ${url}`] })
    ])
    .sort()
  if (pointed.length === 0) return LIVE_NAMESPACE
  return `u${createHash("sha256").update(pointed.join("\n")).digest("hex").slice(0, 12)}`
}
