import type { freshness } from "../lib/streamState.js"

const LABELS: Readonly<Record<ReturnType<typeof freshness>, string>> = {
  live: "live",
  reconnecting: "reconnecting",
  offline: "offline",
  stale: "stale",
  connecting: "connecting"
}

export const ConnectionStatus = (props: { readonly state: ReturnType<typeof freshness>; readonly detail: string }) => (
  <div
    className={`status status-${props.state}`}
    data-testid="connection-status"
    data-state={props.state}
    title={props.detail}
    role="status"
  >
    <span className="dot" aria-hidden="true" />
    {LABELS[props.state]}
  </div>
)
