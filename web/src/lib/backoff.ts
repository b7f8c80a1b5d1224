/** Reconnection delays: exponential from `initialMs`, capped at `maxMs`, with full jitter in [0.5, 1] of the step. */
export interface BackoffOptions {
  readonly initialMs: number
  readonly maxMs: number
  readonly multiplier: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 15_000, multiplier: 2 }

/** Delay before reconnection attempt `attempt` (1 = the first); `random` returns values in [0, 1). */
export const backoffDelay = (
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random
): number => {
  const step = Math.min(options.maxMs, options.initialMs * options.multiplier ** Math.max(0, attempt - 1))
  return Math.round(step * (0.5 + random() * 0.5))
}
