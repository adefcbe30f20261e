import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export type DatabaseProvider = 'sqlite' | 'postgresql';

const PRISMA_DIR = fileURLToPath(new URL('../../prisma/', import.meta.url));

/** The one schema source: written for SQLite, from which the PostgreSQL schema is derived. */
const schemaPath = `${PRISMA_DIR}schema.prisma`;

export function migrationsDir(provider: DatabaseProvider): string {
  return `${PRISMA_DIR}migrations/${provider}`;
}

/** The schema for one provider: the source with its datasource provider changed, nothing else. */
export async function schemaFor(provider: DatabaseProvider): Promise<string> {
  const source = await readFile(schemaPath, 'utf8');
  // Keep in step with scripts/prisma-generate.mjs.
  return provider === 'sqlite' ? source : source.replace(/provider\s*=\s*"sqlite"/, `provider = "${provider}"`);
}
