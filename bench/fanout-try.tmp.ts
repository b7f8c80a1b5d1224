import { fanout } from "./fanout.js"
console.log(JSON.stringify(await fanout(Number(process.env.WS ?? 200), Number(process.env.SSE ?? 50), 5), null, 1))
