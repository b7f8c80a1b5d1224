/**
 * Registered in vitest.config.ts (setupFiles): an unhandled promise rejection or uncaught exception anywhere in a test
 * file's process fails the test that was running (or the file, when it happens between tests), naming the error.
 * Vitest alone only reports such errors after the run, detached from any test.
 */
import { afterAll, afterEach } from "vitest"

const escaped: Array<string> = []

const describe = (kind: string, error: unknown) =>
  `${kind}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`

process.on("unhandledRejection", (reason) => {
  escaped.push(describe("unhandledRejection", reason))
})
process.on("uncaughtException", (error) => {
  escaped.push(describe("uncaughtException", error))
})

const check = () => {
  if (escaped.length === 0) return
  const found = escaped.splice(0)
  throw new Error(`${found.length} unhandled error(s) escaped:\n${found.join("\n\n")}`)
}

afterEach(check)
afterAll(check)
