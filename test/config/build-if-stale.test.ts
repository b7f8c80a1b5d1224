import { spawnSync } from "node:child_process"
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
// @ts-expect-error a plain Node script (scripts/ is not TypeScript), imported for its functions
import { INPUTS, OUTPUTS, staleReason } from "../../scripts/build-if-stale.mjs"

const roots: Array<string> = []
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true })
})

const at = (root: string, path: string, seconds: number) => {
  const file = join(root, path)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, "x")
  // a folder's time changes with its entries: an added or deleted source counts as a change too
  for (let path = file; path.startsWith(`${root}/`); path = dirname(path)) utimesSync(path, seconds, seconds)
}

/** A tree built at t=2000 from sources last changed at t=1000. */
const builtTree = () => {
  const root = mkdtempSync(join(tmpdir(), "build-if-stale-"))
  roots.push(root)
  for (const input of ["src/main.ts", "src/Cache/Live.ts", "web/src/App.tsx", "package.json", "tsconfig.json"]) {
    at(root, input, 1000)
  }
  for (const output of OUTPUTS as ReadonlyArray<string>) at(root, output, 2000)
  return root
}

describe("npm start builds only when the build is stale", () => {
  it("an unchanged, built tree needs no build", () => {
    expect(staleReason(builtTree())).toBeUndefined()
  })

  it("a missing output, or a source changed after the build, needs one", () => {
    const missing = builtTree()
    rmSync(join(missing, "dist/bundle/main.mjs"))
    expect(staleReason(missing)).toBe("dist/bundle/main.mjs is missing")

    const edited = builtTree()
    at(edited, "src/Cache/Live.ts", 3000)
    expect(staleReason(edited)).toBe("src changed since the last build")

    const added = builtTree()
    at(added, "web/src/New.tsx", 3000)
    expect(staleReason(added)).toBe("web/src changed since the last build")

    const dependencies = builtTree()
    at(dependencies, "package.json", 3000)
    expect(staleReason(dependencies)).toBe("package.json changed since the last build")
  })

  it("run as a script: nothing to do on a fresh tree (exit 0, silent); a stale one says why it builds", () => {
    const root = builtTree()
    mkdirSync(join(root, "scripts"))
    copyFileSync("scripts/build-if-stale.mjs", join(root, "scripts/build-if-stale.mjs"))
    const fresh = spawnSync(process.execPath, [join(root, "scripts/build-if-stale.mjs")], { encoding: "utf8" })
    expect([fresh.status, fresh.stdout, fresh.stderr]).toEqual([0, "", ""])
    at(root, "src/main.ts", 3000)
    // this temporary tree has no build script, so the build it starts fails: what matters is that it starts one
    const stale = spawnSync(process.execPath, [join(root, "scripts/build-if-stale.mjs")], { encoding: "utf8" })
    expect(stale.stderr.split("\n")[0]).toBe("building: src changed since the last build")
    expect(stale.status).not.toBe(0)
  })

  it("watches what the build reads", () => {
    expect(INPUTS).toEqual(expect.arrayContaining(["src", "web/src", "package.json", "package-lock.json"]))
  })
})
