#!/usr/bin/env node
// `npm start` and `npm run demo` build only when the build is missing or older than what it is built from: an
// unchanged, already built tree starts at once instead of spending ~20 s in tsc, esbuild and vite.
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, statSync } from "node:fs"
import { join, resolve } from "node:path"
import process from "node:process"
import { fileURLToPath, URL } from "node:url"

/** What `npm run build` reads. */
export const INPUTS = [
  "src",
  "web/src",
  "web/index.html",
  "web/vite.config.ts",
  "web/tsconfig.json",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "tsconfig.build.json"
]

/** What `npm run build` writes and `npm start` / `npm run demo` / `npm run emulator` run. */
export const OUTPUTS = [
  "dist/bundle/main.mjs",
  "dist/bundle/bin.mjs",
  "dist/bundle/demoMain.mjs",
  "dist/src/emulator/main.js",
  "dist/web/index.html"
]

/** Newest modification time (ms) under `path`, a file or a folder; 0 when it does not exist. */
const newest = (path) => {
  if (!existsSync(path)) return 0
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  let latest = stat.mtimeMs
  for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)))
  return latest
}

/** Why `root` needs a build, or undefined when its build is up to date. */
export const staleReason = (root) => {
  const missing = OUTPUTS.find((output) => !existsSync(join(root, output)))
  if (missing !== undefined) return `${missing} is missing`
  const built = Math.min(...OUTPUTS.map((output) => statSync(join(root, output)).mtimeMs))
  const changed = INPUTS.find((input) => newest(join(root, input)) > built)
  return changed === undefined ? undefined : `${changed} changed since the last build`
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(fileURLToPath(new URL("..", import.meta.url)))
  const reason = staleReason(root)
  if (reason === undefined) process.exit(0)
  process.stderr.write(`building: ${reason}\n`)
  const build = spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit", shell: process.platform === "win32" })
  process.exit(build.status ?? 1)
}
