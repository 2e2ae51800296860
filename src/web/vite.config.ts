import { defineConfig } from "vite";

// The analytics page: `npm run build:web` writes dist/web, which the API
// serves at /. `npx vite src/web` serves it live, calling a service on :8080.
export default defineConfig({
  build: { outDir: "../../dist/web", emptyOutDir: true, target: "es2022" },
  server: { proxy: { "/tally.v1.": "http://127.0.0.1:8080" } },
});
