import { NodeRuntime } from "@effect/platform-node"
import { Cause, type ConfigError, Effect, Either, Layer, Option } from "effect"
import { AppConfig, appConfig } from "./AppConfig.js"
import { LoggingLive } from "./Logging.js"
import { ServerLive } from "./Server.js"
import { VERSION } from "./Version.js"

const describeConfigError = (error: ConfigError.ConfigError): string =>
  String(error)
    .replace(/^\(|\)$/g, "")
    .replace(/\s+/g, " ")

/** Reads and validates the configuration; on failure prints one clear line and exits non-zero. */
export const loadConfigOrExit = (): AppConfig => {
  const result = Effect.runSync(Effect.either(appConfig))
  if (Either.isLeft(result)) {
    process.stderr.write(`Invalid configuration: ${describeConfigError(result.left)}. See .env.example.\n`)
    process.exit(1)
  }
  return new AppConfig(result.right)
}

export const runServer = (config: AppConfig): void => {
  const ready = Layer.effectDiscard(
    Effect.logInfo("listening", { host: config.host, port: config.port, version: VERSION, env: config.appEnv })
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
      return Effect.logFatal("server failed to start", message)
    })
  )
  program.pipe(
    Effect.provide(LoggingLive(config.logLevel)),
    NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true })
  )
}
