/**
 * CLI: `tsx src/emulator/main.ts --port 9000 --seed 42 [--host 127.0.0.1] [--clock live|frozen]
 * [--start-time <ms|ISO>] [--push-interval <ms>]`. Environment: EMULATOR_PORT, EMULATOR_SEED, EMULATOR_HOST,
 * EMULATOR_CLOCK, EMULATOR_START_TIME, EMULATOR_PUSH_INTERVAL_MS. Prints one JSON line {"port", "url", "env"}
 * to stdout and nothing else; diagnostics go to stderr.
 */

import { startEmulator, type EmulatorOptions } from "./index.js"

const FLAGS: Readonly<Record<string, string>> = {
  "--port": "EMULATOR_PORT",
  "--seed": "EMULATOR_SEED",
  "--host": "EMULATOR_HOST",
  "--clock": "EMULATOR_CLOCK",
  "--start-time": "EMULATOR_START_TIME",
  "--push-interval": "EMULATOR_PUSH_INTERVAL_MS"
}

const fail = (message: string): never => {
  process.stderr.write(`emulator: ${message}\n`)
  process.exit(2)
}

/** Flags win over the environment. */
const readSettings = (argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Record<string, string> => {
  const settings: Record<string, string> = {}
  for (const name of Object.values(FLAGS)) {
    const value = env[name]
    if (value !== undefined && value !== "") settings[name] = value
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ""
    if (arg === "--help" || arg === "-h") {
      process.stderr.write(
        `usage: main.ts ${Object.keys(FLAGS)
          .map((f) => `[${f} value]`)
          .join(" ")}\n`
      )
      process.exit(0)
    }
    const [flag, inline] = arg.split("=", 2) as [string, string | undefined]
    const name = FLAGS[flag]
    if (name === undefined) fail(`unknown argument ${arg}`)
    const value = inline ?? argv[++i]
    if (value === undefined || name === undefined) return fail(`${flag} needs a value`)
    settings[name] = value
  }
  return settings
}

const integer = (raw: string | undefined, name: string, min: number, max: number): number | undefined => {
  if (raw === undefined) return undefined
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max)
    return fail(`${name} must be an integer in [${min}, ${max}]`)
  return value
}

const toOptions = (settings: Record<string, string>): EmulatorOptions => {
  const options: EmulatorOptions = {}
  const port = integer(settings["EMULATOR_PORT"], "port", 0, 65535)
  if (port !== undefined) options.port = port
  const seed = integer(settings["EMULATOR_SEED"], "seed", -(2 ** 31), 2 ** 32)
  if (seed !== undefined) options.seed = seed
  const host = settings["EMULATOR_HOST"]
  if (host !== undefined) options.host = host
  const clock = settings["EMULATOR_CLOCK"]
  if (clock !== undefined) {
    if (clock !== "live" && clock !== "frozen") fail("clock must be live or frozen")
    options.clock = clock === "frozen" ? "frozen" : "live"
  }
  const start = settings["EMULATOR_START_TIME"]
  if (start !== undefined) {
    const ms = /^\d+$/.test(start) ? Number(start) : Date.parse(start)
    if (!Number.isFinite(ms)) fail("start time must be ms since epoch or an ISO date")
    options.startTime = ms
  }
  const interval = integer(settings["EMULATOR_PUSH_INTERVAL_MS"], "push interval", 10, 3_600_000)
  if (interval !== undefined) options.wsPushIntervalMs = interval
  return options
}

const main = async (): Promise<void> => {
  const emulator = await startEmulator(toOptions(readSettings(process.argv.slice(2), process.env)))
  process.stdout.write(`${JSON.stringify({ port: emulator.port, url: emulator.url, env: emulator.env() })}\n`)
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1)
    )
  }
  process.on("SIGINT", stop)
  process.on("SIGTERM", stop)
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)))
