/**
 * Our service as the benchmark runs it: a child process as deployed (`node dist/main.js`, built
 * once per run), on a fresh database, seeded through the `idp` CLI. Shared by `npm run bench`
 * and `npm run bench:signin`.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Target } from './agent.ts';
import { dropAllDatabases, type BenchDatabase } from './db.ts';
import { dropAllRedisNamespaces } from './redis.ts';
import { API_IDENTIFIER, API_SCOPES, CLIENT_SCOPE, REDIRECT_URI, ttlEnv, USER } from './fixture.ts';
import type { Argon2Params } from './load.ts';
import { freePort, killAllChildren, ROOT, runCli, startServer, treeRss, treeRssByProcess, type ServerProcess } from './proc.ts';
import { mb } from './report.ts';

/** Every server started and not stopped yet: stopped at the end, on failure and on Ctrl-C. */
const live = new Set<ServerProcess>();

export async function launch(opts: Parameters<typeof startServer>[0]): Promise<ServerProcess> {
  const server = await startServer(opts);
  live.add(server);
  return server;
}

export async function halt(server: ServerProcess): Promise<void> {
  await server.stop();
  live.delete(server);
}

/** Stops every server still running. */
async function haltAll(): Promise<void> {
  for (const server of [...live]) await halt(server).catch(() => {});
}

/**
 * A script's clean-up, on Ctrl-C and SIGTERM: every server stopped, every child killed, every
 * database dropped, every Redis prefix's keys deleted and the run's directory (`dir()`, empty for
 * none yet) removed, once however often it is called; children are killed on any exit. Returns
 * the clean-up, for the script's own end.
 */
export function cleanUpOnExit(dir: () => string, log: (message: string) => void = () => {}): () => Promise<void> {
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await haltAll();
      killAllChildren();
      await dropAllDatabases();
      await dropAllRedisNamespaces();
      if (dir()) await rm(dir(), { recursive: true, force: true });
    })());
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      log(`${signal}: stopping servers and dropping databases`);
      void cleanup().finally(() => process.exit(code));
    });
  }
  process.on('exit', () => killAllChildren());
  return cleanup;
}

/** Compiles the server into dist/ (what `node dist/main.js` runs). */
export function buildServer(): void {
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
}

/**
 * The Node options the server is deployed with (the `start` script, the Dockerfile's CMD).
 * `BENCH_NODE_FLAGS` (space-separated; empty for none) replaces them, for comparisons.
 */
const DEPLOYED_NODE_FLAGS = ['--max-semi-space-size=8', '--max-old-space-size=1024'];

/** Production serves /metrics only with a token: one per harness process. */
export const METRICS_TOKEN = randomBytes(32).toString('base64url');

export interface OursOptions {
  label: string;
  db: BenchDatabase;
  workers: number;
  /** The issuer's host name (the server listens on 127.0.0.1 whatever it is): `localhost` for passkeys, which refuse an IP address. */
  host?: string;
  /** The working directory of the server and the CLI (a temporary folder of the run). */
  cwd: string;
  signingAlg: 'RS256' | 'ES256' | 'EdDSA';
  argon2: Argon2Params;
  /** Node options before the script (--cpu-prof …), besides the deployed ones (`DEPLOYED_NODE_FLAGS`, or `BENCH_NODE_FLAGS`). */
  nodeArgs?: string[];
  extraEnv?: Record<string, string>;
  log?: (message: string) => void;
}

export interface StartedOurs {
  server: ServerProcess;
  /** The environment of the server, and of the CLI on its database. */
  env: Record<string, string>;
  target: Target;
  firstStartMs: number;
  restartMs: number;
  rssIdleMb: number;
  rssIdleByProcessMb: number[];
}

/**
 * Starts ours on a fresh database, seeds one user, one API and one confidential client through
 * the CLI, and restarts it (an ordinary restart, on a database that is migrated and has its keys).
 */
export async function startOurs(opts: OursOptions): Promise<StartedOurs> {
  const { label, db, workers, cwd } = opts;
  const log = opts.log ?? (() => {});
  const port = await freePort();
  const url = `http://${opts.host ?? '127.0.0.1'}:${port}`;
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: url,
    DATABASE_URL: db.url,
    LOG_LEVEL: 'warn',
    COOKIE_SECRETS: randomBytes(32).toString('base64url'),
    KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url'),
    // Production needs an SMTP server; only the mail scenarios send mail (to one of their own).
    SMTP_URL: 'smtp://127.0.0.1:1',
    METRICS_TOKEN,
    // Every simulated browser comes from 127.0.0.1.
    INTERACTIONS_PER_MINUTE: '1000000',
    WORKERS: String(workers),
    PASSWORD_HASH_MEMORY_KIB: String(opts.argon2.memoryKib),
    PASSWORD_HASH_ITERATIONS: String(opts.argon2.iterations),
    PASSWORD_HASH_PARALLELISM: String(opts.argon2.parallelism),
    ...ttlEnv(),
    ...opts.extraEnv,
  };
  const nodeFlags = process.env.BENCH_NODE_FLAGS === undefined ? DEPLOYED_NODE_FLAGS : process.env.BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean);
  const args = [...(opts.nodeArgs ?? []), ...nodeFlags, join(ROOT, 'dist', 'main.js')];
  log(`${label}: starting (fresh ${db.kind} database${env.EPHEMERAL_STORE === 'redis' ? `, short-lived state in Redis under ${env.REDIS_PREFIX}` : ''}, WORKERS=${workers})`);
  let server = await launch({ name: label, args, env, url, cwd });
  const firstStartMs = server.readyMs;

  const cli = async (what: string, args: string[], stdin?: string) => {
    const result = await runCli(args, env, cwd, stdin);
    if (result.code !== 0) throw new Error(`${label}: ${what} failed: ${result.stderr}`);
    return result.stdout;
  };
  await cli('users create', ['users', 'create', '--email', USER.email, '--password-stdin', '--name', 'Bench User', '--email-verified', '--json'], `${USER.password}\n`);
  await cli('resources create', ['resources', 'create', '--identifier', API_IDENTIFIER, '--scope', API_SCOPES.join(' '), '--signing-alg', opts.signingAlg, '--json']);
  const client = await cli('clients create', [
    'clients',
    'create',
    '--name',
    'Bench App',
    '--redirect-uri',
    REDIRECT_URI,
    '--grant-type',
    'authorization_code',
    '--grant-type',
    'refresh_token',
    '--grant-type',
    'client_credentials',
    '--scope',
    CLIENT_SCOPE,
    '--api',
    [API_IDENTIFIER, ...API_SCOPES].join(' '),
    '--json',
  ]);
  const created = JSON.parse(client) as { client: { clientId: string }; clientSecret: string };

  await halt(server);
  server = await launch({ name: label, args, env, url, cwd });
  const restartMs = server.readyMs;
  await sleep(1000);
  const rssIdleMb = mb(treeRss(server.pid));
  const rssIdleByProcessMb = treeRssByProcess(server.pid).map(mb);
  log(`${label}: ready in ${firstStartMs.toFixed(0)} ms (fresh database), ${restartMs.toFixed(0)} ms (restart); idle RSS ${rssIdleMb} MB`);
  return {
    server,
    env,
    target: { name: label, url, clientId: created.client.clientId, clientSecret: created.clientSecret, redirectUri: REDIRECT_URI, apiIdentifier: API_IDENTIFIER, user: USER },
    firstStartMs,
    restartMs,
    rssIdleMb,
    rssIdleByProcessMb,
  };
}
