// Generates the Prisma clients after every install: one per database provider, both from
// prisma/schema.prisma (the PostgreSQL schema is derived from it into src/generated/).
// `prisma generate` never runs the native schema engine, but the CLI tries to download it
// first; where that engine is absent (no access to Prisma's binaries host), point the CLI at
// any existing file so it skips the download. Machines that have the engine behave as usual.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = `${root}prisma/schema.prisma`;
const generated = `${root}src/generated`;
const enginesDir = `${root}node_modules/@prisma/engines`;
const hasEngine = existsSync(enginesDir) && readdirSync(enginesDir).some((f) => f.startsWith('schema-engine'));

const env = { ...process.env };
if (!hasEngine && !env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = fileURLToPath(import.meta.url);

const prismaCli = `${root}node_modules/prisma/build/index.js`;
if (!existsSync(prismaCli)) {
  // A production install without dev dependencies: the clients must have been generated at build time.
  if (!existsSync(`${generated}/sqlite/client.ts`) || !existsSync(`${generated}/postgresql/client.ts`)) {
    console.error('prisma-generate: the prisma CLI is not installed and src/generated is incomplete');
    process.exit(1);
  }
  process.exit(0);
}

// Keep in step with postgresqlSchema() in src/db/schema.ts.
mkdirSync(generated, { recursive: true });
const postgresql = readFileSync(source, 'utf8')
  .replace(/provider\s*=\s*"sqlite"/, 'provider = "postgresql"')
  .replace(/output\s*=\s*"\.\.\/src\/generated\/sqlite"/, 'output              = "./postgresql"');
writeFileSync(`${generated}/schema.postgresql.prisma`, postgresql);

for (const schema of [source, `${generated}/schema.postgresql.prisma`]) {
  const result = spawnSync(process.execPath, [prismaCli, 'generate', '--schema', schema], { stdio: 'inherit', env, cwd: root });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
