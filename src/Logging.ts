import { Layer, Logger, type LogLevel } from "effect"

/**
 * Structured JSON lines at the configured level. Stdio MCP mode sends them to stderr so stdout carries
 * nothing but protocol.
 */
export const LoggingLive = (level: LogLevel.LogLevel, stream: "stdout" | "stderr" = "stdout"): Layer.Layer<never> =>
  Layer.mergeAll(
    Logger.replace(
      Logger.defaultLogger,
      stream === "stdout" ? Logger.withConsoleLog(Logger.jsonLogger) : Logger.withConsoleError(Logger.jsonLogger)
    ),
    Logger.minimumLogLevel(level)
  )
