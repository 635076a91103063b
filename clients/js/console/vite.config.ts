// The development console's build (scripts/build-console.mjs builds it into
// gateway/console/dist, which the realtime binary embeds). `npm run
// console:dev` serves it with hot reload, proxying the gateway's endpoints to
// a development server on :8080 (`go run ./cmd/realtime`).

import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const target = process.env['REALTIME_URL'] ?? 'http://localhost:8080';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  logLevel: 'warn',
  clearScreen: false,
  build: {
    // Fixed names, no hashes, no source maps: a deterministic build whose
    // committed output diffs cleanly.
    target: 'es2022',
    sourcemap: false,
    emptyOutDir: true,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 1024, // one bundle of ~290 kB (React included) is fine for a dev tool
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    rolldownOptions: {
      output: {
        entryFileNames: 'console.js',
        chunkFileNames: 'console-[name].js',
        assetFileNames: 'console[extname]',
      },
    },
  },
  server: {
    // The Host header is kept (no changeOrigin): POST /dev/publish accepts
    // same-origin requests only.
    proxy: {
      '/socket.io': { target, ws: true },
      '/dev': { target },
      '/api': { target },
    },
  },
});
