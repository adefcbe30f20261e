// Generates the Prisma client (src/generated/prisma) after every install.
// `prisma generate` never runs the native schema engine, but the CLI tries to download it
// first; where that engine is absent (no access to Prisma's binaries host), point the CLI at
// any existing file so it skips the download. Machines that have the engine behave as usual.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const enginesDir = `${root}node_modules/@prisma/engines`;
const hasEngine = existsSync(enginesDir) && readdirSync(enginesDir).some((f) => f.startsWith('schema-engine'));

const env = { ...process.env };
if (!hasEngine && !env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = fileURLToPath(import.meta.url);

const prismaCli = `${root}node_modules/prisma/build/index.js`;
if (!existsSync(prismaCli)) {
  // A production install without dev dependencies: the client must have been generated at build time.
  if (!existsSync(`${root}src/generated/prisma/client.ts`)) {
    console.error('prisma-generate: the prisma CLI is not installed and src/generated/prisma is missing');
    process.exit(1);
  }
  process.exit(0);
}
const result = spawnSync(process.execPath, [prismaCli, 'generate', '--schema', `${root}prisma/schema.prisma`], { stdio: 'inherit', env, cwd: root });
process.exit(result.status ?? 1);
