import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** Which SQL database: the embedded default (SQLite) or the scale-out one (PostgreSQL). Prisma calls it the datasource provider. */
export type Dialect = 'sqlite' | 'postgresql';

const PRISMA_DIR = fileURLToPath(new URL('../../prisma/', import.meta.url));

/** The one schema source: written for SQLite, from which the PostgreSQL schema is derived. */
const schemaPath = `${PRISMA_DIR}schema.prisma`;

export function migrationsDir(dialect: Dialect): string {
  return `${PRISMA_DIR}migrations/${dialect}`;
}

/** The schema for one dialect: the source with its datasource provider changed, nothing else. */
export async function schemaFor(dialect: Dialect): Promise<string> {
  const source = await readFile(schemaPath, 'utf8');
  // Keep in step with scripts/prisma-generate.mjs.
  return dialect === 'sqlite' ? source : source.replace(/provider\s*=\s*"sqlite"/, `provider = "${dialect}"`);
}
