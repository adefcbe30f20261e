// Builds the admin console (console/, a Preact app) into dist/console/ with Vite: run at every
// install and by `npm run build`. A production install without dev dependencies keeps the console
// built at build time (the server answers /console with a clear 503 page when there is none).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
if (!existsSync(`${root}node_modules/vite/package.json`)) {
  if (existsSync(`${root}dist/console/index.html`)) process.exit(0);
  console.error('build-console: vite is not installed (dev dependencies) and dist/console/ is missing: the admin console will not be served');
  process.exit(0);
}
const { build } = await import('vite');
await build({ configFile: `${root}console/vite.config.ts` });
