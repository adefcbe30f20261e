/**
 * `npm run bench:signin`: the database statements of one sign-in (the login_flow scenario's
 * flow), request by request. Builds and starts ours on a fresh SQLite database (and on
 * PostgreSQL with BENCH_DATABASE_URL) as `npm run bench` does, makes 2 sign-ins to warm up, then
 * traces sign-ins with nothing else running and prints the table. See bench/README.md.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPostgresDatabase, createSqliteDatabase, type DatabaseKind } from './lib/db.ts';
import { LOGIN_REQUEST } from './lib/fixture.ts';
import { buildServer, cleanUpOnExit, halt, METRICS_TOKEN, startOurs } from './lib/ours.ts';
import { argon2FromEnv, checkNode, numberFromEnv, signingAlgFromEnv } from './lib/settings.ts';
import { signInNote, signInTable, traceSignIns } from './lib/signin.ts';

const log = (message: string) => console.error(`[bench:signin] ${message}`);
const postgresUrl = process.env.BENCH_DATABASE_URL || undefined;
/** Traced sign-ins per database (the one with the fewest statements is printed). */
const count = Math.floor(numberFromEnv('BENCH_SIGNIN_TRACES', 3, 1));
let runDir = '';

const cleanup = cleanUpOnExit(() => runDir);

async function main() {
  checkNode();
  runDir = await mkdtemp(join(tmpdir(), 'idp-bench-signin-'));
  log('building the server (npm run build)');
  buildServer();
  const kinds: DatabaseKind[] = postgresUrl ? ['sqlite', 'postgresql'] : ['sqlite'];
  let worst = 0;
  for (const kind of kinds) {
    const db = kind === 'sqlite' ? await createSqliteDatabase(runDir, 'signin') : await createPostgresDatabase(postgresUrl!);
    const ours = await startOurs({ label: `ours-${kind}`, db, workers: 1, cwd: runDir, signingAlg: signingAlgFromEnv(), argon2: argon2FromEnv(), log });
    const trace = await traceSignIns(ours.target, METRICS_TOKEN, LOGIN_REQUEST, { warmup: 2, count });
    worst = Math.max(worst, trace.total);
    process.stdout.write(`\n## Statements per sign-in, request by request (ours-${kind})\n\n${signInTable(trace)}\n\n${signInNote(trace)}\n`);
    await halt(ours.server);
    await db.drop();
  }
  process.stdout.write(`\nTarget: ≤ 15 statements per sign-in: ${worst <= 15 ? 'met' : `not met (${worst})`}.\n`);
}

try {
  await main();
} catch (err) {
  console.error('bench:signin failed:', err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
