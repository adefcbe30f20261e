/**
 * `npm run bench:signin`: the database statements of one sign-in (the login_flow scenario's
 * flow), request by request. Builds and starts ours on a fresh SQLite database (and on
 * PostgreSQL with BENCH_DATABASE_URL, and on PostgreSQL with the short-lived state in Redis with
 * BENCH_REDIS_URL too) as `npm run bench` does, makes 2 sign-ins to warm up, then
 * traces sign-ins with nothing else running and prints the table. See bench/README.md.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPostgresDatabase, createSqliteDatabase } from './lib/db.ts';
import { LOGIN_REQUEST } from './lib/fixture.ts';
import { buildServer, cleanUpOnExit, halt, METRICS_TOKEN, startOurs } from './lib/ours.ts';
import { createRedisNamespace, OURS_NAMES, oursKinds } from './lib/redis.ts';
import { argon2FromEnv, checkNode, numberFromEnv, signingAlgFromEnv } from './lib/settings.ts';
import { signInNote, signInTable, traceSignIns } from './lib/signin.ts';

const log = (message: string) => console.error(`[bench:signin] ${message}`);
const postgresUrl = process.env.BENCH_DATABASE_URL || undefined;
const redisUrl = process.env.BENCH_REDIS_URL || undefined;
/** Traced sign-ins per database (the one with the fewest statements is printed). */
const count = Math.floor(numberFromEnv('BENCH_SIGNIN_TRACES', 3, 1));
let runDir = '';

const cleanup = cleanUpOnExit(() => runDir);

async function main() {
  checkNode();
  runDir = await mkdtemp(join(tmpdir(), 'idp-bench-signin-'));
  log('building the server (npm run build)');
  buildServer();
  const kinds = oursKinds(postgresUrl, redisUrl);
  const totals: [string, number][] = [];
  for (const kind of kinds) {
    const label = `ours-${OURS_NAMES[kind]}`;
    const db = kind === 'sqlite' ? await createSqliteDatabase(runDir, 'signin') : await createPostgresDatabase(postgresUrl!);
    const redis = kind === 'postgresqlRedis' ? await createRedisNamespace(redisUrl!) : undefined;
    const ours = await startOurs({ label, db, workers: 1, cwd: runDir, signingAlg: signingAlgFromEnv(), argon2: argon2FromEnv(), log, ...(redis ? { extraEnv: redis.env } : {}) });
    const trace = await traceSignIns(ours.target, METRICS_TOKEN, LOGIN_REQUEST, { warmup: 2, count });
    totals.push([label, trace.total]);
    process.stdout.write(`\n## Statements per sign-in, request by request (${label})\n\n${signInTable(trace)}\n\n${signInNote(trace)}${redis ? ' Database statements only: the commands sent to Redis are not counted.' : ''}\n`);
    await halt(ours.server);
    await db.drop();
    if (redis) log(`${label}: deleted ${await redis.drop()} Redis keys under ${redis.prefix}`);
  }
  const met = totals.every(([, total]) => total <= 15);
  process.stdout.write(`\nTarget: ≤ 15 statements per sign-in: ${totals.map(([label, total]) => `${label} ${total} (${total <= 15 ? 'met' : 'not met'})`).join(', ')}: ${met ? 'met' : 'not met'}.\n`);
}

try {
  await main();
} catch (err) {
  console.error('bench:signin failed:', err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
