import { NodeRuntime } from "@effect/platform-node"
import { serveStdio } from "@modelcontextprotocol/server/stdio"
import { Cause, Deferred, Effect, Layer, Runtime } from "effect"
import { Console } from "node:console"
import { AppConfig } from "../AppConfig.js"
import { LoggingLive } from "../Logging.js"
import { ServicesLive } from "../Services.js"
import { VERSION } from "../Version.js"
import { makeMcpServerFactory } from "./Server.js"

/**
 * stdout carries the protocol and nothing else: any library that prints (ccxt's verbose log, a stray warning)
 * would corrupt it, so every console method writes to stderr from here on.
 */
const keepStdoutForProtocol = (): void => {
  globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr })
}

/** Serves MCP on stdin/stdout until the client closes stdin (or a signal arrives). */
export const mcpStdioProgram = Effect.gen(function* () {
  const factory = yield* makeMcpServerFactory
  const runtime = yield* Effect.runtime<never>()
  const ended = yield* Deferred.make<void>()
  const end = () => Runtime.runFork(runtime)(Deferred.succeed(ended, undefined))
  process.stdin.once("end", end)
  process.stdin.once("close", end)
  yield* Effect.acquireRelease(
    Effect.sync(() =>
      serveStdio(factory, {
        onerror: (error) => Runtime.runFork(runtime)(Effect.logWarning("mcp stdio error", error.message))
      })
    ),
    (handle) => Effect.promise(() => handle.close())
  )
  yield* Effect.logInfo("mcp stdio server ready", { version: VERSION })
  yield* Deferred.await(ended)
  yield* Effect.logInfo("stdin closed; mcp stdio server stopping")
}).pipe(Effect.scoped, Effect.annotateLogs({ component: "mcp" }))

/** The `mcp` command: MCP over stdio with the same services as the HTTP server; logs are JSON lines on stderr. */
export const runMcpStdio = (config: AppConfig): void => {
  keepStdoutForProtocol()
  mcpStdioProgram.pipe(
    Effect.provide(ServicesLive.pipe(Layer.provideMerge(Layer.succeed(AppConfig, config)))),
    Effect.tapErrorCause((cause) => Effect.logFatal("mcp stdio server failed", Cause.pretty(cause))),
    Effect.provide(LoggingLive(config.logLevel, "stderr")),
    NodeRuntime.runMain({
      disablePrettyLogger: true,
      disableErrorReporting: true,
      // idle keep-alive sockets or timers of a library must not keep a finished stdio server alive
      teardown: (exit) => process.exit(exit._tag === "Success" || Cause.isInterruptedOnly(exit.cause) ? 0 : 1)
    })
  )
}
