import { startDemoEmulator } from "./Demo.js"
import { loadConfigOrExit, runServer } from "./Run.js"

await startDemoEmulator()
runServer(loadConfigOrExit())
