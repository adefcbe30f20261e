import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createPostgresDatabase as createDatabaseOn } from '../../test/helpers/database.ts';
import pg from 'pg';

export type DatabaseKind = 'sqlite' | 'postgresql';

export interface BenchDatabase {
  kind: DatabaseKind;
  /** DATABASE_URL for the server and the CLI. */
  url: string;
  drop(): Promise<void>;
}

const created = new Set<BenchDatabase>();

/** A fresh SQLite file in a folder of its own under `dir` (the app migrates it on start). */
export async function createSqliteDatabase(dir: string, name: string): Promise<BenchDatabase> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  const db: BenchDatabase = {
    kind: 'sqlite',
    url: `file:${join(folder, 'idp.db')}`,
    async drop() {
      created.delete(db);
      await rm(folder, { recursive: true, force: true });
    },
  };
  created.add(db);
  return db;
}

/** A fresh PostgreSQL database on the server of `serverUrl`, dropped afterwards. */
export async function createPostgresDatabase(serverUrl: string): Promise<BenchDatabase> {
  const fresh = await createDatabaseOn(serverUrl, 'idp_bench');
  const db: BenchDatabase = {
    kind: 'postgresql',
    url: fresh.url,
    async drop() {
      created.delete(db);
      await fresh.drop();
    },
  };
  created.add(db);
  return db;
}

/** Drops every database this run created and has not dropped yet. */
export async function dropAllDatabases(): Promise<void> {
  for (const db of [...created]) await db.drop().catch((err: unknown) => console.error(`could not drop ${db.url}:`, err));
}

// ---- bulk rows

/**
 * How the stored rows are split: refresh and access tokens, codes (some consumed), sessions,
 * pending interactions, and grants, as a busy deployment accumulates them between purges.
 */
const PLAN = [
  { model: 'RefreshToken', share: 0.3 },
  { model: 'AccessToken', share: 0.15 },
  { model: 'AuthorizationCode', share: 0.1 },
  { model: 'Session', share: 0.15 },
  { model: 'Interaction', share: 0.1 },
  { model: 'Grant', share: 0.2 },
] as const;

interface Dialect {
  /** A random 32-character hex id, evaluated per row. */
  random: string;
  text(expr: string): string;
  /** An absolute time `secondsExpr` seconds from now, in the column's storage format. */
  inSeconds(secondsExpr: string): string;
  /** A statement inserting `count` rows built by `select` (which may use `n`, 1..count). */
  insert(table: string, columns: string[], select: string, count: number): string;
}

const SQLITE: Dialect = {
  random: 'lower(hex(randomblob(16)))',
  text: (expr) => `(${expr})`,
  // Prisma's SQLite driver adapter stores DateTime as ISO-8601 text with an explicit offset.
  inSeconds: (s) => `strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '+' || (${s}) || ' seconds')`,
  insert: (table, columns, select, count) =>
    `WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ${count}) ` +
    `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) SELECT ${select} FROM seq`,
};

const POSTGRES: Dialect = {
  random: 'md5(random()::text)',
  text: (expr) => `(${expr})::text`,
  inSeconds: (s) => `(now() + make_interval(secs => ${s}))`,
  insert: (table, columns, select, count) =>
    `INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) SELECT ${select} FROM generate_series(1, ${count}) AS n`,
};

/** Statements inserting `rows` rows in all, split by PLAN; every row expires in 1 to 25 hours (none is purged). */
function bulkStatements(d: Dialect, rows: number, salt: string): string[] {
  const counts = PLAN.map((p) => Math.round(rows * p.share));
  const grants = Math.max(1, counts[PLAN.findIndex((p) => p.model === 'Grant')]!);
  const account = `'bench-account-' || ${d.text('n % 50000')}`;
  const client = `'bench-client-' || ${d.text('n % 500')}`;
  const grant = `'bg${salt}-' || ${d.text(`n % ${grants}`)}`;
  const expires = d.inSeconds('3600 + n % 86400');
  const iat = 1_795_000_000;
  const statements: string[] = [];

  PLAN.forEach((p, i) => {
    const count = counts[i]!;
    if (!count) return;
    if (p.model === 'Grant') {
      const payload = `'{"kind":"Grant","accountId":"' || ${account} || '","clientId":"' || ${client} || '","openid":{"scope":"openid profile email offline_access"},"resources":{"https://api.bench.example":"read write"},"iat":${iat},"exp":${iat + 1209600},"jti":"bg${salt}-' || ${d.text('n')} || '"}'`;
      statements.push(
        d.insert('Grant', ['id', 'accountId', 'clientId', 'payload', 'expiresAt', 'createdAt', 'updatedAt'], `'bg${salt}-' || ${d.text('n')}, ${account}, ${client}, ${payload}, ${expires}, ${d.inSeconds('0')}, ${d.inSeconds('0')}`, count),
      );
      return;
    }
    const common = `"kind":"${p.model}","accountId":"' || ${account} || '","clientId":"' || ${client} || '","iat":${iat},"exp":${iat + 3600}`;
    const tokenish = `,"grantId":"' || ${grant} || '","scope":"openid profile email offline_access read","resource":"https://api.bench.example","sessionUid":"' || ${d.random} || '","sid":"' || ${d.random} || '","acr":"urn:idp:acr:password","amr":["pwd"],"authTime":${iat},"gty":"authorization_code"`;
    const extra: Record<string, string> = {
      RefreshToken: `${tokenish},"rotations":0,"nonce":"' || ${d.random} || '"`,
      AccessToken: `${tokenish},"format":"opaque"`,
      AuthorizationCode: `${tokenish},"codeChallenge":"' || ${d.random} || '","codeChallengeMethod":"S256","redirectUri":"https://app.example/callback"`,
      Session: `,"uid":"' || ${d.random} || '","loginTs":${iat},"authorizations":{"bench-client":{"sid":"' || ${d.random} || '","grantId":"' || ${grant} || '","persistsLogout":false}}`,
      Interaction: `,"returnTo":"https://idp.example/authorize/' || ${d.random} || '","prompt":{"name":"login","reasons":["no_session"],"details":{}},"params":{"client_id":"bench-client","redirect_uri":"https://app.example/callback","response_type":"code","scope":"openid profile email","code_challenge":"' || ${d.random} || '","code_challenge_method":"S256","state":"' || ${d.random} || '"}`,
    };
    const payload = `'{${common}${extra[p.model]}}'`;
    const grantable = p.model === 'RefreshToken' || p.model === 'AccessToken' || p.model === 'AuthorizationCode';
    const columns = ['model', 'id', 'payload', 'grantId', 'uid', 'accountId', 'clientId', 'expiresAt', 'consumedAt'];
    const select = [
      `'${p.model}'`,
      d.random,
      payload,
      grantable ? grant : 'NULL',
      p.model === 'Session' ? d.random : 'NULL',
      account,
      p.model === 'Session' || p.model === 'Interaction' ? 'NULL' : client,
      expires,
      // Half of the stored codes were redeemed already (consumed codes are kept until they expire).
      p.model === 'AuthorizationCode' ? `CASE WHEN n % 2 = 0 THEN ${d.inSeconds('0')} ELSE NULL END` : 'NULL',
    ].join(', ');
    statements.push(d.insert('OidcPayload', columns, select, count));
  });
  return statements;
}

export interface BulkInsertResult {
  rows: number;
  seconds: number;
  /** Rows in the artifact tables afterwards. */
  totalRows: number;
}

/**
 * Inserts `rows` protocol artifacts straight into the database, in one transaction per table
 * (SQLite: recursive CTEs; PostgreSQL: generate_series), while the server keeps running.
 */
export async function bulkInsert(db: BenchDatabase, rows: number): Promise<BulkInsertResult> {
  const salt = randomBytes(3).toString('hex');
  const started = performance.now();
  let totalRows = 0;
  if (db.kind === 'sqlite') {
    const client = new DatabaseSync(db.url.slice('file:'.length), { timeout: 30_000 });
    try {
      for (const sql of bulkStatements(SQLITE, rows, salt)) client.exec(sql);
      // Fold the write-ahead log back into the database file, as SQLite's auto-checkpoint would.
      client.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      const counts = client.prepare('SELECT (SELECT count(*) FROM "OidcPayload") + (SELECT count(*) FROM "Grant") AS c').get();
      totalRows = Number(counts?.c ?? 0);
    } finally {
      client.close();
    }
  } else {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      for (const sql of bulkStatements(POSTGRES, rows, salt)) await client.query(sql);
      // What autovacuum would do shortly after such an insert: fresh planner statistics.
      await client.query('VACUUM ANALYZE "OidcPayload"');
      await client.query('VACUUM ANALYZE "Grant"');
      const counts = await client.query<{ c: string }>('SELECT (SELECT count(*) FROM "OidcPayload") + (SELECT count(*) FROM "Grant") AS c');
      totalRows = Number(counts.rows[0]?.c ?? 0);
    } finally {
      await client.end();
    }
  }
  return { rows, seconds: (performance.now() - started) / 1000, totalRows };
}

// ---- accounts and mail

/** One statement's first row, on either database (a short-lived connection of the harness's own). */
async function queryOne(db: BenchDatabase, sql: string): Promise<Record<string, unknown>> {
  if (db.kind === 'sqlite') {
    const client = new DatabaseSync(db.url.slice('file:'.length), { timeout: 30_000 });
    try {
      return (client.prepare(sql).get() as Record<string, unknown> | undefined) ?? {};
    } finally {
      client.close();
    }
  }
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query(sql)).rows[0] ?? {};
  } finally {
    await client.end();
  }
}

/** `count` verified accounts <prefix><n>@bench.example (n = 1..count), without a password: enough to be sent a reset link. */
export async function seedUsers(db: BenchDatabase, count: number, prefix: string): Promise<void> {
  const d = db.kind === 'sqlite' ? SQLITE : POSTGRES;
  const verified = db.kind === 'sqlite' ? '1' : 'true';
  const select = `${d.random}, '${prefix}' || ${d.text('n')} || '@bench.example', 'Bench ' || ${d.text('n')}, ${verified}, ${d.inSeconds('0')}, ${d.inSeconds('0')}`;
  await queryOne(db, d.insert('User', ['id', 'email', 'name', 'emailVerified', 'createdAt', 'updatedAt'], select, count));
}

export interface OutboxCounts {
  pending: number;
  sent: number;
  failed: number;
}

/** The outbox's messages by status. */
export async function outboxCounts(db: BenchDatabase): Promise<OutboxCounts> {
  const row = await queryOne(
    db,
    `SELECT count(*) FILTER (WHERE "status" = 'pending') AS pending, count(*) FILTER (WHERE "status" = 'sent') AS sent, count(*) FILTER (WHERE "status" = 'failed') AS failed FROM "OutboxMessage"`,
  );
  return { pending: Number(row.pending ?? 0), sent: Number(row.sent ?? 0), failed: Number(row.failed ?? 0) };
}

/**
 * `count` verified accounts <prefix><n>@bench.example with the password of the account
 * `fromEmail` (its hash copied: no hashing here); their ids and addresses.
 */
export async function seedPasswordUsers(db: BenchDatabase, count: number, prefix: string, fromEmail: string): Promise<{ id: string; email: string }[]> {
  await seedUsers(db, count, prefix);
  await queryOne(db, `UPDATE "User" SET "passwordHash" = (SELECT "passwordHash" FROM "User" WHERE "email" = '${fromEmail.replace(/'/g, "''")}') WHERE "email" LIKE '${prefix}%@bench.example'`);
  const concat = db.kind === 'sqlite' ? `group_concat("id" || ' ' || "email", ',')` : `string_agg("id" || ' ' || "email", ',')`;
  const row = await queryOne(db, `SELECT ${concat} AS users FROM "User" WHERE "email" LIKE '${prefix}%@bench.example'`);
  return String(row.users ?? '')
    .split(',')
    .filter(Boolean)
    .map((pair) => {
      const [id, email] = pair.split(' ');
      return { id: id!, email: email! };
    });
}
