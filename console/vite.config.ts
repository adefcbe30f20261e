import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The admin console, built into dist/console/ and served by the IdP at /console/ (src/http/console.ts).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/console/', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // Every script and stylesheet a file of its own: the page's CSP allows no inline code.
    assetsInlineLimit: 0,
  },
});
