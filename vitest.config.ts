import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // fails a test when an unhandled rejection or uncaught exception escapes while it runs
    setupFiles: ["test/support/failOnUnhandled.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    reporters: ["default", "json"],
    outputFile: { json: "test-results/vitest.json" }
  }
})
