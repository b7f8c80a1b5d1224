// Regenerates src/Exchange/ccxtIds.ts from the installed ccxt: `node scripts/ccxt-ids.mjs` after upgrading ccxt.
import { writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import ccxt from "ccxt"

const lines = [
  `// Generated from the installed ccxt (${ccxt.version}) by scripts/ccxt-ids.mjs; test/exchange/ccxtIds.test.ts fails when it drifts.`,
  "// Start-up validates ENABLED_EXCHANGES against this list instead of importing ccxt (0.7 s) before listening.",
  `export const CCXT_EXCHANGE_IDS: ReadonlyArray<string> = [${ccxt.exchanges.map((id) => JSON.stringify(id)).join(", ")}]`,
  ""
]
writeFileSync(join(dirname(fileURLToPath(import.meta.url)), "../src/Exchange/ccxtIds.ts"), lines.join("\n"))
