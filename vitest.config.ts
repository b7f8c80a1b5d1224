import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "web/src/**/*.test.tsx"],
    // fails a test when an unhandled rejection or uncaught exception escapes while it runs
    setupFiles: ["test/support/failOnUnhandled.ts"],
    // servers built from the environment keep no candle files in the checkout; store tests pass their own
    env: { DATABASE_URL: "none" },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // vitest's default in run mode is one fork per core minus one, i.e. one fork on a 2-core machine: most test files
    // wait on sockets, timers and child processes, so two forks take the suite from about 8 to about 5 minutes there
    maxWorkers: 2,
    reporters: ["default", "json"],
    outputFile: { json: "test-results/vitest.json" },
    // `npm run coverage`: statement and branch coverage of src/; below 90 % of statements the run fails
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      // entry points run only in child processes (spawned by tests), which coverage does not see
      exclude: ["src/main.ts", "src/bin.ts", "src/demoMain.ts", "src/emulator/main.ts"],
      reporter: ["text-summary", "text", "json-summary"],
      reportsDirectory: "coverage",
      thresholds: { statements: 90 }
    }
  }
})
