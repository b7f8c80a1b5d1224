#!/usr/bin/env node
import { runMcpStdio } from "./Mcp/Stdio.js"
import { loadConfigOrExit, runServer } from "./Run.js"

const usage = `Usage: mcp-crypto-data-server [command]

Commands:
  serve      Run the REST API server, with MCP over HTTP at /mcp (default)
  mcp        Serve MCP over stdio (for AI agents: Claude Desktop, Claude Code, Cursor...)
  help       Show this message
`

const command = process.argv[2] ?? "serve"
switch (command) {
  case "serve":
    runServer(loadConfigOrExit())
    break
  case "mcp":
    runMcpStdio(loadConfigOrExit())
    break
  case "help":
  case "--help":
  case "-h":
    process.stdout.write(usage)
    break
  default:
    process.stderr.write(`Unknown command "${command}".\n\n${usage}`)
    process.exit(2)
}
