// The practical limit of this machine for one JSON body: a bare node:http server answering pre-encoded bytes.
import { Buffer } from "node:buffer"
import { createServer } from "node:http"
import process from "node:process"

const body = Buffer.from(process.env.BASELINE_BODY ?? "{}")
// the server's own answer headers when the benchmark passes them (the same bytes on the wire), else a minimal set
const headers = process.env.BASELINE_HEADERS
  ? { ...JSON.parse(process.env.BASELINE_HEADERS), "content-length": String(body.length) }
  : {
      "content-type": "application/json",
      "content-length": String(body.length),
      "cache-control": "public, max-age=2",
      age: "0",
      "x-cache": "HIT"
    }
createServer((_req, res) => {
  res.writeHead(200, headers)
  res.end(body)
}).listen(Number(process.env.PORT), process.env.HOST ?? "127.0.0.1")
