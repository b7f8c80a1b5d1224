import { type Emulator, startEmulator } from "./emulator/index.js"

export const DEMO_EXCHANGES = "binance,kraken,coinbaseexchange"

/** Settings the demo uses unless the environment sets them. */
export const DEMO_DEFAULTS: Readonly<Record<string, string>> = {
  CCXT_THROTTLE: "false",
  EXCHANGE_RATE_LIMIT_BINANCE: "1000",
  EXCHANGE_RATE_LIMIT_KRAKEN: "1000",
  EXCHANGE_RATE_LIMIT_COINBASEEXCHANGE: "1000"
}

/**
 * Starts the exchange emulator (live clock from now, seed EMULATOR_SEED or 42, port EMULATOR_PORT or a free one)
 * and points the server's exchanges at it, so everything works with no network.
 */
export const startDemoEmulator = async (): Promise<Emulator> => {
  const port = Number(process.env.EMULATOR_PORT ?? 0)
  const seed = Number(process.env.EMULATOR_SEED ?? 42)
  const emulator = await startEmulator({
    clock: "live",
    startTime: Math.floor(Date.now() / 1000) * 1000,
    seed: Number.isInteger(seed) ? seed : 42,
    port: Number.isInteger(port) && port >= 0 && port < 65536 ? port : 0
  })
  Object.assign(process.env, emulator.env(), { ENABLED_EXCHANGES: DEMO_EXCHANGES })
  // a local emulator needs no spacing of requests: ccxt's throttle and the outbound budget would only slow the demo
  for (const [name, value] of Object.entries(DEMO_DEFAULTS)) process.env[name] ??= value
  process.stderr.write(
    JSON.stringify({
      message: "demo: exchange emulator started; binance, kraken and coinbaseexchange are simulated locally",
      logLevel: "INFO",
      timestamp: new Date().toISOString(),
      annotations: { emulator: emulator.url, exchanges: DEMO_EXCHANGES }
    }) + "\n"
  )
  return emulator
}
