import { loadConfigOrExit, runServer } from "./Run.js"

runServer(await loadConfigOrExit())
