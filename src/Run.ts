import { NodeRuntime } from "@effect/platform-node"
import { Cause, type ConfigError, Effect, Either, Layer, Option } from "effect"
import { AppConfig, appConfig } from "./AppConfig.js"
import { ClusterConfig } from "./Cluster/Config.js"
import { CCXT_EXCHANGE_IDS } from "./Exchange/ccxtIds.js"
import { canonicalExchangeId, suggestExchanges } from "./Exchange/symbols.js"
import { LoggingLive } from "./Logging.js"
import { ServerLive } from "./Server.js"
import { VERSION } from "./Version.js"

const describeConfigError = (error: ConfigError.ConfigError): string =>
  String(error)
    .replace(/^\(|\)$/g, "")
    .replace(/\s+/g, " ")

const exitInvalid = (reason: string): never => {
  process.stderr.write(`Invalid configuration: ${reason}. See .env.example.\n`)
  return process.exit(1)
}

/**
 * What is wrong with ENABLED_EXCHANGES given every id the installed ccxt knows: one clause per unknown id, with the
 * closest known ids as suggestions. Empty when every id is known.
 */
export const unknownEnabledExchanges = (
  enabled: ReadonlyArray<string>,
  known: ReadonlyArray<string>
): ReadonlyArray<string> => {
  const knownSet = new Set(known)
  return enabled
    .filter((id) => !knownSet.has(canonicalExchangeId(id)))
    .map((id) => {
      const suggestions = suggestExchanges(id, [], known)
      const hint = suggestions.length > 0 ? ` (did you mean ${suggestions.map((s) => `"${s}"`).join(" or ")}?)` : ""
      return `ENABLED_EXCHANGES names "${id}", which is not a ccxt exchange id${hint}`
    })
}

/**
 * Reads and validates the configuration, ENABLED_EXCHANGES against the ccxt exchange ids included (a generated list,
 * so start-up does not wait for ccxt to load); on failure prints one clear line and exits non-zero.
 */
export const loadConfigOrExit = (): AppConfig => {
  const result = Effect.runSync(Effect.either(appConfig))
  if (Either.isLeft(result)) return exitInvalid(describeConfigError(result.left))
  const unknown = unknownEnabledExchanges(result.right.enabledExchanges, CCXT_EXCHANGE_IDS)
  if (unknown.length > 0) return exitInvalid(unknown.join("; "))
  // read again when the cluster layer starts; checked here so a bad value is one plain line, not a failed layer
  const cluster = Effect.runSync(Effect.either(ClusterConfig))
  if (Either.isLeft(cluster)) return exitInvalid(describeConfigError(cluster.left))
  return new AppConfig(result.right)
}

const WILDCARD_HOSTS: ReadonlySet<string> = new Set(["", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"])

/** The base URL a person on this machine can open (and click in a terminal). */
export const localUrl = (host: string, port: number): string => {
  const name = WILDCARD_HOSTS.has(host) ? "localhost" : host.includes(":") ? `[${host}]` : host
  return `http://${name}:${port}`
}

export const runServer = (config: AppConfig): void => {
  const url = localUrl(config.host, config.port)
  const ready = Layer.effectDiscard(
    Effect.logInfo(`listening on ${url} (API docs ${url}/docs, dashboard ${url}/)`).pipe(
      Effect.annotateLogs({ host: config.host, port: config.port, url, version: VERSION, env: config.appEnv })
    )
  )
  const program = Layer.launch(Layer.provideMerge(ready, ServerLive(config))).pipe(
    Effect.onExit(() => Effect.logInfo("server stopped")),
    Effect.tapErrorCause((cause) => {
      const failure = Cause.failureOption(cause)
      const message = Option.match(failure, {
        onNone: () => Cause.pretty(cause),
        onSome: (e) =>
          typeof e === "object" && e !== null && "_tag" in e && e._tag === "ServeError"
            ? `cannot listen on ${config.host}:${config.port} (${String((e as { cause?: unknown }).cause)})`
            : String(e)
      })
      return Effect.logFatal(`server failed to start: ${message}`)
    })
  )
  program.pipe(
    Effect.provide(LoggingLive(config.logLevel)),
    NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true })
  )
}
