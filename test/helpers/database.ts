import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Which database this test run uses: the vitest project sets it (see vitest.config.ts). */
export const TEST_PROVIDER: 'sqlite' | 'postgresql' = process.env.TEST_DB_PROVIDER === 'postgresql' ? 'postgresql' : 'sqlite';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database of the run's provider, dropped afterwards. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (TEST_PROVIDER === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'idp-test-'));
    return { url: `file:${join(dir, 'idp.db')}`, drop: () => rm(dir, { recursive: true, force: true }) };
  }
  const server = process.env.TEST_DATABASE_URL;
  if (!server) throw new Error('TEST_DATABASE_URL is required for the postgresql test project');
  return createPostgresDatabase(server, 'idp_test');
}

/** A new database on the PostgreSQL server of `server` (a URL whose role may create databases). */
export async function createPostgresDatabase(server: string, prefix: string): Promise<TestDatabase> {
  // A generated name (never input), so it can be spliced into DDL.
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      // Bounded, and a database left behind only said: a teardown never hangs or fails a suite.
      const c = new pg.Client({ connectionString: server, connectionTimeoutMillis: 10_000, statement_timeout: 30_000 });
      try {
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } catch (err) {
        console.error(`the test database ${name} was not dropped: ${(err as Error).message}`);
      } finally {
        await c.end().catch(() => {});
      }
    },
  };
}
