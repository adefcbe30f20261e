import { DatabaseSync, StatementSync } from 'node:sqlite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArtifactStore, type ArtifactStore } from '../src/artifacts/store.ts';
import { openDatabase, type Database } from '../src/db/index.ts';
import { migrate } from '../src/db/migrate.ts';
import { createTestDatabase, TEST_PROVIDER, type TestDatabase } from './helpers/database.ts';

// The indexes on OidcPayload's uid, userCode, grantId and clientId are partial (`WHERE … IS NOT
// NULL`, see test/schema-drift.test.ts): the planner uses one only for a query whose conditions
// imply that predicate. Each lookup by these columns is checked here, as the statement the store
// actually sends, with the database's own EXPLAIN.

/** Every statement sent to the database while `fn` runs, as its SQL text. */
async function statementsOf(fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const restore: (() => void)[] = [];
  const spy = (proto: object, method: string, sqlOf: (self: unknown, args: unknown[]) => unknown) => {
    const target = proto as Record<string, (...args: unknown[]) => unknown>;
    const original = target[method]!;
    target[method] = function (this: unknown, ...args: unknown[]) {
      const sql = sqlOf(this, args);
      if (typeof sql === 'string') seen.push(sql);
      return original.apply(this, args);
    };
    restore.push(() => {
      target[method] = original;
    });
  };
  if (TEST_PROVIDER === 'sqlite') {
    for (const method of ['all', 'get', 'run', 'iterate']) spy(StatementSync.prototype, method, (self) => (self as StatementSync).sourceSQL);
  } else {
    spy(pg.Client.prototype, 'query', (_, [query]) => (typeof query === 'string' ? query : (query as { text?: string } | undefined)?.text));
  }
  try {
    await fn();
  } finally {
    for (const r of restore) r();
  }
  return seen.filter((sql) => /OidcPayload/.test(sql) && !/^\s*(BEGIN|COMMIT|ROLLBACK)/i.test(sql));
}

describe('lookups by uid, userCode, grantId and clientId use their partial indexes', () => {
  let database: TestDatabase;
  let db: Database;
  let store: ArtifactStore;
  let plan: (sql: string) => Promise<string>;
  let closePlanner: () => Promise<void>;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = await openDatabase(database.url);
    await migrate(db);
    store = createArtifactStore(db.prisma);
    if (TEST_PROVIDER === 'sqlite') {
      const file = new DatabaseSync(database.url.slice('file:'.length));
      plan = async (sql) => file.prepare(`EXPLAIN QUERY PLAN ${sql}`).all().map((r) => String(r.detail)).join('\n');
      closePlanner = async () => file.close();
    } else {
      // The generic plan (the one for any parameter values), with sequential scans priced out so
      // that a usable index is used even on this small table.
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      await client.query('SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan');
      let n = 0;
      plan = async (sql) => {
        const name = `p${++n}`;
        const params = Math.max(0, ...[...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
        await client.query(`PREPARE ${name} AS ${sql}`);
        // '1' reads as any parameter type these statements have: text, or a LIMIT / OFFSET.
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE ${name}(${Array(params).fill("'1'").join(', ')})`);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      };
      closePlanner = () => client.end();
    }
  });

  afterAll(async () => {
    await closePlanner?.();
    await db?.close();
    await database?.drop();
  });

  const cases: [string, string, () => Promise<unknown>][] = [
    ['a session by uid', 'OidcPayload_uid_key', () => store.findUnique({ uid: 'u1' })],
    ['a device code by userCode', 'OidcPayload_userCode_key', () => store.findUnique({ userCode: 'ABCD-EFGH' })],
    ['an artifact with the session it dies with (joined by uid)', 'OidcPayload_uid_key', () => store.findWithGrantAndSession('code', ['AuthorizationCode'])],
    ['the tokens of a grant, of one kind', 'OidcPayload_grantId_idx', () => store.destroyByGrant('AccessToken', 'g1')],
    ['the artifacts of a revoked grant', 'OidcPayload_grantId_idx', async () => {
      await store.saveGrant('g2', { accountId: 'a1', clientId: 'c1' });
      await store.revokeGrant('a1', 'g2');
    }],
    ['the artifacts of a revoked client', 'OidcPayload_clientId_idx', () => store.revokeClient('c1')],
  ];

  it.each(cases)('%s: %s', async (_, index, lookup) => {
    const statements = (await statementsOf(lookup)).filter((sql) => !/^\s*(INSERT|UPDATE)/i.test(sql));
    expect(statements.length).toBeGreaterThan(0);
    const plans = await Promise.all(statements.map(plan));
    expect(plans.some((p) => p.includes(index)), plans.join('\n---\n')).toBe(true);
  });
});
