import react from "@vitejs/plugin-react"
import { fileURLToPath } from "node:url"
import { defineConfig } from "vite"

// `npm run dev:web` proxies the API (REST and the /ws WebSocket) to a running server: API_URL, default :8000
const api = process.env.API_URL ?? "http://localhost:8000"

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL("../dist/web", import.meta.url)),
    emptyOutDir: true,
    assetsDir: "assets",
    // the server's CSP allows scripts and styles from 'self' only: nothing inlined into index.html
    assetsInlineLimit: 0,
    rollupOptions: {
      output: { manualChunks: { react: ["react", "react-dom"], charts: ["lightweight-charts"] } }
    },
    target: "es2022"
  },
  server: {
    port: Number(process.env.WEB_PORT ?? 5173),
    proxy: {
      "/v1": { target: api, changeOrigin: true },
      "/ws": { target: api.replace(/^http/, "ws"), ws: true, changeOrigin: true }
    }
  }
})
