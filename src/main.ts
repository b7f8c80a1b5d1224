import { loadConfigOrExit, runServer } from "./Run.js"

runServer(loadConfigOrExit())
