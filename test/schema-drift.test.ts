import { readFile } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/index.ts';
import { fullSchemaSql, migrate, sqliteSchemaDrift } from '../src/db/migrate.ts';
import { schemaFor } from '../src/db/schema.ts';
import { createTestDatabase, TEST_PROVIDER } from './helpers/database.ts';

/**
 * The indexes the migrations make partial (`WHERE "column" IS NOT NULL`). Prisma's schema has
 * partial indexes only behind a preview feature, not enabled here: the schema declares these in
 * full (`@unique`, `@@index`) under the same names, and the migration `…_partial_artifact_indexes`
 * (both providers) recreates them with these exact statements. Most artifacts leave these columns
 * NULL, and every query by them is an equality, which implies the predicate, so the planner still
 * uses them. The drift check accepts exactly these differences: the database the schema builds,
 * with these statements applied, must equal the migrated one. A later migration that rebuilds the
 * OidcPayload table (SQLite does for many column changes) must create them again in this form, or
 * this test fails.
 */
const PARTIAL_INDEXES = [
  partialIndex('OidcPayload_uid_key', 'OidcPayload', 'uid', { unique: true }),
  partialIndex('OidcPayload_userCode_key', 'OidcPayload', 'userCode', { unique: true }),
  partialIndex('OidcPayload_grantId_idx', 'OidcPayload', 'grantId'),
  partialIndex('OidcPayload_clientId_idx', 'OidcPayload', 'clientId'),
];

function partialIndex(name: string, table: string, column: string, { unique = false } = {}) {
  return { name, column, unique, sql: `CREATE ${unique ? 'UNIQUE ' : ''}INDEX "${name}" ON "${table}"("${column}") WHERE "${column}" IS NOT NULL` };
}

/** What turns the database the schema builds into the one the migrations build. */
const ACCEPTED_PARTIAL_INDEXES_SQL = PARTIAL_INDEXES.flatMap((i) => [`DROP INDEX "${i.name}";`, `${i.sql};`]).join('\n');

/** What is in one list and not the other, each entry marked with the side it is on. */
function difference(migrated: string[], expected: string[]): string[] {
  return [...migrated.filter((x) => !expected.includes(x)).map((x) => `migrated only: ${x}`), ...expected.filter((x) => !migrated.includes(x)).map((x) => `expected only: ${x}`)];
}

const indexesQuery = `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name`;
const sqliteIndex = (r: { name: unknown; sql: unknown }) => `${String(r.name)}: ${String(r.sql).replace(/\s+/g, ' ')}`;

/**
 * SQLite: the indexes of a migrated database against those of a database built from the schema
 * with the accepted partial indexes ([] when they agree). The schema engine's comparison leaves
 * index predicates out, so the indexes are compared here, from their definitions.
 */
async function sqliteIndexDrift(db: Database): Promise<string[]> {
  const reference = new DatabaseSync(':memory:');
  try {
    reference.exec(await fullSchemaSql(db));
    reference.exec(ACCEPTED_PARTIAL_INDEXES_SQL);
    const expected = reference.prepare(indexesQuery).all().map((r) => sqliteIndex(r as { name: unknown; sql: unknown }));
    const migrated = (await db.prisma.$queryRaw<{ name: string; sql: string }[]>`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name`).map(sqliteIndex);
    expect(expected.length).toBeGreaterThan(20);
    return difference(migrated, expected);
  } finally {
    reference.close();
  }
}

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

  it.runIf(TEST_PROVIDER === 'sqlite')('SQLite: the committed migrations build exactly the schema, with the accepted partial indexes', async () => {
    const database = await createTestDatabase();
    const db = await openDatabase(database.url);
    try {
      expect(await sqliteSchemaDrift(db)).toBe('');
      expect(await sqliteIndexDrift(db)).toEqual([]);
      // Read back from the database itself: each one partial, on its column, unique where listed.
      for (const index of PARTIAL_INDEXES) {
        const [row] = await db.prisma.$queryRaw<{ sql: string }[]>`SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ${index.name}`;
        expect(row?.sql, index.name).toMatch(new RegExp(`WHERE "${index.column}" IS NOT NULL$`));
        const [listed] = await db.prisma.$queryRaw<{ unique: bigint | number; partial: bigint | number }[]>`SELECT "unique", "partial" FROM pragma_index_list('OidcPayload') WHERE name = ${index.name}`;
        expect({ unique: Number(listed?.unique), partial: Number(listed?.partial) }, index.name).toEqual({ unique: index.unique ? 1 : 0, partial: 1 });
      }
    } finally {
      await db.close();
      await database.drop();
    }
  });

  it.runIf(TEST_PROVIDER === 'sqlite')('SQLite: any other difference in the indexes is still drift', async () => {
    const database = await createTestDatabase();
    const db = await openDatabase(database.url);
    try {
      await migrate(db);
      // A second connection to the same file changes the indexes under the migrated database.
      const file = new DatabaseSync(database.url.slice('file:'.length));
      const sql = (statements: string[]) => file.exec(statements.join(';\n'));
      // An accepted index made in full again.
      sql(['DROP INDEX "OidcPayload_clientId_idx"', 'CREATE INDEX "OidcPayload_clientId_idx" ON "OidcPayload"("clientId")']);
      expect(await sqliteIndexDrift(db)).toEqual([
        'migrated only: OidcPayload_clientId_idx: CREATE INDEX "OidcPayload_clientId_idx" ON "OidcPayload"("clientId")',
        'expected only: OidcPayload_clientId_idx: CREATE INDEX "OidcPayload_clientId_idx" ON "OidcPayload"("clientId") WHERE "clientId" IS NOT NULL',
      ]);
      sql(['DROP INDEX "OidcPayload_clientId_idx"', PARTIAL_INDEXES[3]!.sql]);
      expect(await sqliteIndexDrift(db)).toEqual([]);
      // A partial index that is not on the list.
      sql(['DROP INDEX "OidcPayload_accountId_idx"', 'CREATE INDEX "OidcPayload_accountId_idx" ON "OidcPayload"("accountId") WHERE "accountId" IS NOT NULL']);
      expect(await sqliteIndexDrift(db)).toHaveLength(2);
      // An index missing altogether: the schema engine sees that one too.
      sql(['DROP INDEX "OidcPayload_expiresAt_idx"']);
      expect(await sqliteSchemaDrift(db)).toMatch(/CREATE INDEX "OidcPayload_expiresAt_idx"/);
      file.close();
    } finally {
      await db.close();
      await database.drop();
    }
  });

  /** A migrated PostgreSQL database and one built from the schema with the accepted partial indexes. */
  async function postgresPair(): Promise<{ migrated: pg.Client; drift(): Promise<string[]>; close(): Promise<void> }> {
    const [migrated, reference] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    const db = await openDatabase(migrated.url);
    const migratedClient = new pg.Client({ connectionString: migrated.url });
    await migrate(db);
    const sql = await fullSchemaSql(db);
    const client = new pg.Client({ connectionString: reference.url });
    await client.connect();
    await client.query(sql);
    await client.query(ACCEPTED_PARTIAL_INDEXES_SQL);
    await client.end();
    await migratedClient.connect();
    const expected = await catalog(reference.url);
    expect(expected.length).toBeGreaterThan(30);
    return {
      migrated: migratedClient,
      drift: async () => difference(await catalog(migrated.url), expected),
      async close() {
        await migratedClient.end();
        await db.close();
        await migrated.drop();
        await reference.drop();
      },
    };
  }

  it.runIf(TEST_PROVIDER === 'postgresql')('PostgreSQL: the committed migrations build the same database as the schema does, with the accepted partial indexes', async () => {
    const pair = await postgresPair();
    try {
      expect(await pair.drift()).toEqual([]);
      // Read back from the database itself: each one partial, on its column, unique where listed.
      const { rows } = await pair.migrated.query<{ indexname: string; indexdef: string }>(`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'OidcPayload'`);
      for (const index of PARTIAL_INDEXES) {
        const def = rows.find((r) => r.indexname === index.name)?.indexdef;
        expect(def, index.name).toMatch(new RegExp(`^CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX .* WHERE \\("?${index.column}"? IS NOT NULL\\)$`));
      }
    } finally {
      await pair.close();
    }
  });

  it.runIf(TEST_PROVIDER === 'postgresql')('PostgreSQL: any other difference in the indexes is still drift', async () => {
    const pair = await postgresPair();
    try {
      await pair.migrated.query('DROP INDEX "OidcPayload_clientId_idx"; CREATE INDEX "OidcPayload_clientId_idx" ON "OidcPayload"("clientId")');
      expect(await pair.drift()).toEqual([
        `migrated only: ${JSON.stringify({ indexdef: 'CREATE INDEX "OidcPayload_clientId_idx" ON public."OidcPayload" USING btree ("clientId")' })}`,
        `expected only: ${JSON.stringify({ indexdef: 'CREATE INDEX "OidcPayload_clientId_idx" ON public."OidcPayload" USING btree ("clientId") WHERE ("clientId" IS NOT NULL)' })}`,
      ]);
      await pair.migrated.query(`DROP INDEX "OidcPayload_clientId_idx"; ${PARTIAL_INDEXES[3]!.sql}`);
      expect(await pair.drift()).toEqual([]);
      await pair.migrated.query('DROP INDEX "OidcPayload_accountId_idx"; CREATE INDEX "OidcPayload_accountId_idx" ON "OidcPayload"("accountId") WHERE "accountId" IS NOT NULL');
      expect(await pair.drift()).toHaveLength(2);
    } finally {
      await pair.close();
    }
  });
});
