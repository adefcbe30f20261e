import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/index.ts';
import { fullSchemaSql, migrate, sqliteSchemaDrift } from '../src/db/migrate.ts';
import { schemaFor } from '../src/db/schema.ts';
import { createTestDatabase, TEST_PROVIDER } from './helpers/database.ts';

/** Tables, columns, indexes and constraints of a PostgreSQL database, comparable as text. */
async function catalog(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const columns = await client.query(
      `SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
       WHERE table_schema = 'public' AND table_name <> '_prisma_migrations' ORDER BY 1, 2`,
    );
    const indexes = await client.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY 1`);
    const constraints = await client.query(
      `SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
       WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> '_prisma_migrations' ORDER BY 1, 2`,
    );
    return [...columns.rows, ...indexes.rows, ...constraints.rows].map((r) => JSON.stringify(r));
  } finally {
    await client.end();
  }
}

describe('the schema and the migrations never drift apart', () => {
  it('derives the PostgreSQL schema from the one source, changing nothing but the provider', async () => {
    const strip = (s: string) => s.replace(/provider\s*=\s*"(sqlite|postgresql)"/, '').replace(/output\s*=\s*"[^"]*"/, '');
    expect(strip(await schemaFor('postgresql'))).toBe(strip(await readFile(new URL('../prisma/schema.prisma', import.meta.url), 'utf8')));
    const generated = await readFile(new URL('../src/generated/schema.postgresql.prisma', import.meta.url), 'utf8');
    expect(strip(generated)).toBe(strip(await schemaFor('postgresql')));
  });

  it.runIf(TEST_PROVIDER === 'sqlite')('SQLite: the committed migrations build exactly the schema', async () => {
    const database = await createTestDatabase();
    const db = await openDatabase(database.url);
    try {
      expect(await sqliteSchemaDrift(db)).toBe('');
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it.runIf(TEST_PROVIDER === 'postgresql')('PostgreSQL: the committed migrations build the same database as the schema does', async () => {
    const [migrated, reference] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    const db = await openDatabase(migrated.url);
    try {
      await migrate(db);
      const sql = await fullSchemaSql(db);
      const client = new pg.Client({ connectionString: reference.url });
      await client.connect();
      await client.query(sql);
      await client.end();
      const expected = await catalog(reference.url);
      expect(expected.length).toBeGreaterThan(30);
      expect(await catalog(migrated.url)).toEqual(expected);
    } finally {
      await db.close();
      await migrated.drop();
      await reference.drop();
    }
  });
});
