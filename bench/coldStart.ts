import { freePort, median, startProcess, waitFor200 } from "./lib.js"

const measure = async (args: ReadonlyArray<string>, env: Record<string, string>) => {
  const port = await freePort()
  const started = performance.now()
  const child = startProcess(args, { ...env, PORT: String(port), HOST: "127.0.0.1" })
  try {
    return await waitFor200(`http://127.0.0.1:${port}/v1/health`, started)
  } finally {
    await child.stop()
  }
}

/** Benchmark 4: process start to the first 200 from /v1/health, against a bare node:http server's start. */
export const coldStart = async (runs: number) => {
  const server: Array<number> = []
  const baseline: Array<number> = []
  for (let i = 0; i < runs; i++) {
    baseline.push(await measure(["bench/baseline-server.mjs"], {}))
    server.push(await measure(["dist/bundle/main.mjs"], { REDIS_ENABLED: "false" }))
  }
  return { server, baseline, serverMedian: median(server), baselineMedian: median(baseline) }
}
