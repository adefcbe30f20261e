/**
 * `npm run bench`: our service (SQLite, and PostgreSQL with BENCH_DATABASE_URL) against a bare
 * oidc-provider with the same options (the ceiling), under the same load. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { authorize, basicAuth, FORM, fullLogin, inParallel, isJwt, redeem, type AuthorizeOptions, type Code, type Target } from './lib/agent.ts';
import { UserAgent } from '../test/helpers/user-agent.ts';
import { bulkInsert, createPostgresDatabase, createSqliteDatabase, dropAllDatabases, outboxCounts, seedUsers, type BenchDatabase, type DatabaseKind, type OutboxCounts } from './lib/db.ts';
import { API_IDENTIFIER, API_SCOPES, CLIENT_SCOPE, REDIRECT_URI, TTL, ttlEnv, USER, type Fixture } from './lib/fixture.ts';
import { argon2Ceiling, runHttp, runLoop, type HttpLoad, type Stats } from './lib/load.ts';
import { perRequest, readQueryCounts } from './lib/metrics.ts';
import { freePort, killAllChildren, ROOT, runCli, sampleRss, startServer, treeCpuMs, treeRss, treeRssByProcess, type ServerProcess } from './lib/proc.ts';
import { clientAddresses, forgotPasswordForm, signUpThroughApp, SMTP_MODES, startSmtpStandIn, type SmtpMode, type SmtpStandIn } from './lib/mail.ts';
import { evaluateTargets, mb, renderMarkdown, SCENARIO_LABELS, type MailOutbox, type MailReport, type MailRun, type MailWindow, type RunData, type ScenarioResult, type SubjectReport } from './lib/report.ts';

const SCENARIOS = ['discovery', 'jwks', 'client_credentials', 'authorization_code', 'refresh_token', 'introspection', 'userinfo', 'login_flow'] as const;
type Scenario = (typeof SCENARIOS)[number];
const TOKEN_SCENARIOS: readonly Scenario[] = ['client_credentials', 'authorization_code', 'refresh_token'];

// ---- settings (environment)

function numberFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number ≥ ${min} (got "${raw}")`);
  return value;
}

/** The API's access-token signing algorithm, on ours and on the ceiling (BENCH_SIGNING_ALG). */
function signingAlgFromEnv(): 'RS256' | 'ES256' | 'EdDSA' {
  const alg = process.env.BENCH_SIGNING_ALG ?? 'RS256';
  if (alg !== 'RS256' && alg !== 'ES256' && alg !== 'EdDSA') throw new Error(`BENCH_SIGNING_ALG: ${alg} is not one of RS256, ES256, EdDSA`);
  return alg;
}

function readSettings() {
  const seconds = numberFromEnv('BENCH_DURATION', 10, 1);
  const only = process.env.BENCH_ONLY?.split(/[\s,]+/).filter(Boolean);
  const known = [...SCENARIOS, 'mail'];
  const unknown = only?.filter((s) => !known.includes(s));
  if (unknown?.length) throw new Error(`BENCH_ONLY: unknown scenario(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  return {
    seconds,
    warmup: numberFromEnv('BENCH_WARMUP', Math.min(2, Math.max(1, seconds / 5)), 0),
    connections: numberFromEnv('BENCH_CONNECTIONS', 16, 1),
    rows: Math.floor(numberFromEnv('BENCH_ROWS', 1_000_000, 1)),
    scenarios: SCENARIOS.filter((s) => !only || only.includes(s)),
    mail: !only || only.includes('mail'),
    mailRounds: Math.floor(numberFromEnv('BENCH_MAIL_ROUNDS', 3, 1)),
    skipScale: process.env.BENCH_SKIP_SCALE === '1',
    skipWorkers: process.env.BENCH_SKIP_WORKERS === '1',
    postgresUrl: process.env.BENCH_DATABASE_URL || undefined,
    cpuProfile: process.env.BENCH_CPU_PROF === '1',
    maxCodes: Math.floor(numberFromEnv('BENCH_MAX_CODES', 40_000, 100)),
    signingAlg: signingAlgFromEnv(),
    argon2: {
      memoryKib: numberFromEnv('PASSWORD_HASH_MEMORY_KIB', 19 * 1024, 1),
      iterations: numberFromEnv('PASSWORD_HASH_ITERATIONS', 2, 1),
      parallelism: numberFromEnv('PASSWORD_HASH_PARALLELISM', 1, 1),
    },
  };
}

const settings = readSettings();
const runStarted = performance.now();
const log = (message: string) => console.error(`[bench ${((performance.now() - runStarted) / 1000).toFixed(0).padStart(4)}s] ${message}`);

// ---- servers

interface Subject {
  report: SubjectReport;
  target: Target;
  server: ServerProcess;
  /** Ours only: the environment of the server (and of the CLI). */
  env?: Record<string, string>;
  /** Signed-in browsers whose grant covers the code requests: each mints codes without pages. */
  codeAgents: UserAgent[];
  /** Codes not redeemed yet. */
  codes: Code[];
  /** Refresh tokens not used yet; each answer's new refresh token goes back in (rotation). */
  refreshPool: string[];
  opaque?: { token: string; at: number };
}

const live = new Set<ServerProcess>();
let runDir = '';

async function launch(opts: Parameters<typeof startServer>[0]): Promise<ServerProcess> {
  const server = await startServer(opts);
  live.add(server);
  return server;
}

async function halt(server: ServerProcess) {
  await server.stop();
  live.delete(server);
}

function profileArgs(label: string): string[] {
  return settings.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${join(ROOT, 'bench', 'results', 'profiles', label)}`] : [];
}

/** Production serves /metrics only with this token. */
const METRICS_TOKEN = randomBytes(32).toString('base64url');

/** Our service as a child process, as deployed (`node dist/main.js`, built once per run), seeded through the `idp` CLI. */
async function startOurs(label: string, db: BenchDatabase, workers: number, extraEnv: Record<string, string> = {}): Promise<Subject> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
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
    PASSWORD_HASH_MEMORY_KIB: String(settings.argon2.memoryKib),
    PASSWORD_HASH_ITERATIONS: String(settings.argon2.iterations),
    PASSWORD_HASH_PARALLELISM: String(settings.argon2.parallelism),
    ...ttlEnv(),
    ...extraEnv,
  };
  const args = [...profileArgs(label), join(ROOT, 'dist', 'main.js')];
  log(`${label}: starting (fresh ${db.kind} database, WORKERS=${workers})`);
  let server = await launch({ name: label, args, env, url, cwd: runDir });
  const firstStartMs = server.readyMs;

  const user = await runCli(['users', 'create', '--email', USER.email, '--password-stdin', '--name', 'Bench User', '--email-verified', '--json'], env, runDir, `${USER.password}\n`);
  if (user.code !== 0) throw new Error(`${label}: users create failed: ${user.stderr}`);
  const api = await runCli(['resources', 'create', '--identifier', API_IDENTIFIER, '--scope', API_SCOPES.join(' '), '--signing-alg', settings.signingAlg, '--json'], env, runDir);
  if (api.code !== 0) throw new Error(`${label}: resources create failed: ${api.stderr}`);
  const client = await runCli(
    ['clients', 'create', '--name', 'Bench App', '--redirect-uri', REDIRECT_URI, '--grant-type', 'authorization_code', '--grant-type', 'refresh_token', '--grant-type', 'client_credentials', '--scope', CLIENT_SCOPE, '--api', [API_IDENTIFIER, ...API_SCOPES].join(' '), '--json'],
    env,
    runDir,
  );
  if (client.code !== 0) throw new Error(`${label}: clients create failed: ${client.stderr}`);
  const created = JSON.parse(client.stdout) as { client: { clientId: string }; clientSecret: string };

  // An ordinary restart, on a database that is already migrated and has its keys.
  await halt(server);
  server = await launch({ name: label, args, env, url, cwd: runDir });
  const restartMs = server.readyMs;
  await sleep(1000);
  const rssIdleMb = mb(treeRss(server.pid));
  const rssIdleByProcessMb = treeRssByProcess(server.pid).map(mb);
  log(`${label}: ready in ${firstStartMs.toFixed(0)} ms (fresh database), ${restartMs.toFixed(0)} ms (restart); idle RSS ${rssIdleMb} MB`);

  return {
    report: { label, kind: 'ours', database: db.kind, workers, firstStartMs: Math.round(firstStartMs), restartMs: Math.round(restartMs), rssIdleMb, ...(workers > 1 ? { rssIdleByProcessMb } : {}), scenarios: {} },
    target: { name: label, url, clientId: created.client.clientId, clientSecret: created.clientSecret, redirectUri: REDIRECT_URI, apiIdentifier: API_IDENTIFIER, user: USER },
    server,
    env,
    codeAgents: [],
    codes: [],
    refreshPool: [],
  };
}

/** The bare oidc-provider (bench/ceiling.ts) as a child process. */
async function startCeiling(): Promise<Subject> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const fixture: Fixture = {
    issuer: url,
    port,
    clientId: 'ceiling-client',
    clientSecret: randomBytes(32).toString('base64url'),
    redirectUri: REDIRECT_URI,
    api: { identifier: API_IDENTIFIER, scopes: API_SCOPES, accessTokenTtl: TTL.accessToken, signingAlg: settings.signingAlg },
    user: USER,
    ttl: TTL,
  };
  log('ceiling: starting');
  const server = await launch({
    name: 'ceiling',
    args: [...profileArgs('ceiling'), join(ROOT, 'bench', 'ceiling.ts')],
    env: { NODE_ENV: 'production', BENCH_CEILING_CONFIG: JSON.stringify(fixture) },
    url,
    cwd: runDir,
  });
  await sleep(1000);
  const rssIdleMb = mb(treeRss(server.pid));
  log(`ceiling: ready in ${server.readyMs.toFixed(0)} ms; idle RSS ${rssIdleMb} MB`);
  return {
    report: { label: 'ceiling (bare oidc-provider, in-memory)', kind: 'ceiling', workers: 1, firstStartMs: Math.round(server.readyMs), rssIdleMb, scenarios: {} },
    target: { name: 'ceiling', url, clientId: fixture.clientId, clientSecret: fixture.clientSecret, redirectUri: REDIRECT_URI, apiIdentifier: API_IDENTIFIER, user: USER },
    server,
    codeAgents: [],
    codes: [],
    refreshPool: [],
  };
}

// ---- pools and tokens

/** Browsers minting codes and refresh tokens at the same time. */
const MINTERS = 8;
const CODE_REQUEST: AuthorizeOptions = { scope: 'openid profile email read', resource: API_IDENTIFIER };
const REFRESH_REQUEST: AuthorizeOptions = { scope: 'openid offline_access read', resource: API_IDENTIFIER, prompt: 'consent' };

/** Codes from the real flow: each minter signs in and consents once, then /authorize answers with a code at once. */
async function mintCodes(s: Subject, total: number): Promise<void> {
  const started = performance.now();
  const { codes } = s;
  const before = codes.length;
  if (before >= total) return;
  if (!s.codeAgents.length) {
    s.codeAgents = await inParallel(Array.from({ length: MINTERS }), MINTERS, async () => {
      const agent = new UserAgent();
      codes.push(await authorize(s.target, agent, CODE_REQUEST));
      return agent;
    });
  }
  let remaining = total - codes.length;
  await Promise.all(
    s.codeAgents.map(async (agent) => {
      while (remaining-- > 0) codes.push(await authorize(s.target, agent, CODE_REQUEST));
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const minted = codes.length - before;
  log(`${s.target.name}: minted ${minted} codes in ${seconds.toFixed(1)} s (${(minted / seconds).toFixed(0)}/s)`);
}

/** Refresh tokens from the real flow with offline_access and prompt=consent (consent page every time). */
async function fillRefreshPool(s: Subject, size: number) {
  const missing = size - s.refreshPool.length;
  if (missing <= 0) return;
  const started = performance.now();
  const agents = Array.from({ length: MINTERS }, () => new UserAgent());
  let remaining = missing;
  await Promise.all(
    agents.map(async (agent) => {
      while (remaining-- > 0) {
        const tokens = await redeem(s.target, await authorize(s.target, agent, REFRESH_REQUEST));
        if (!tokens.refresh_token) throw new Error(`${s.target.name}: no refresh token issued`);
        s.refreshPool.push(tokens.refresh_token);
      }
    }),
  );
  log(`${s.target.name}: minted ${missing} refresh tokens in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** An opaque access token for userinfo (openid scope, no API), from a fresh sign-in. */
async function opaqueToken(s: Subject): Promise<string> {
  if (s.opaque && Date.now() - s.opaque.at < 5 * 60_000) return s.opaque.token;
  const { tokens } = await fullLogin(s.target, { scope: 'openid profile email' });
  if (isJwt(tokens.access_token)) throw new Error(`${s.target.name}: expected an opaque access token for userinfo`);
  s.opaque = { token: tokens.access_token, at: Date.now() };
  return tokens.access_token;
}

// ---- scenarios

const form = (params: Record<string, string>) => new URLSearchParams(params).toString();

/** The requests of one scenario; pools are minted here, before any load. */
async function prepare(s: Subject, name: Scenario): Promise<HttpLoad> {
  const { target } = s;
  const tokenHeaders = { authorization: basicAuth(target), 'content-type': FORM };
  switch (name) {
    case 'discovery':
      return { url: `${target.url}/.well-known/openid-configuration` };
    case 'jwks':
      return { url: `${target.url}/jwks` };
    case 'client_credentials':
      return { url: `${target.url}/token`, method: 'POST', headers: tokenHeaders, body: form({ grant_type: 'client_credentials', resource: API_IDENTIFIER, scope: API_SCOPES.join(' ') }) };
    case 'authorization_code':
      // The pool is filled by measure(): for the warm-up, then for the run at the warm-up's rate.
      return {
        url: `${target.url}/token`,
        method: 'POST',
        headers: tokenHeaders,
        next: () => {
          const code = s.codes.pop();
          return code ? { body: form({ grant_type: 'authorization_code', code: code.code, redirect_uri: target.redirectUri, code_verifier: code.verifier }) } : null;
        },
      };
    case 'refresh_token': {
      await fillRefreshPool(s, Math.max(64, 4 * settings.connections));
      return {
        url: `${target.url}/token`,
        method: 'POST',
        headers: tokenHeaders,
        next: () => {
          const token = s.refreshPool.shift();
          return token ? { body: form({ grant_type: 'refresh_token', refresh_token: token, resource: API_IDENTIFIER }) } : null;
        },
        onResponse: (status, body) => {
          if (status !== 200) return;
          const next = (JSON.parse(String(body)) as { refresh_token?: string }).refresh_token;
          if (next) s.refreshPool.push(next);
        },
      };
    }
    case 'introspection':
      return { url: `${target.url}/token/introspection`, method: 'POST', headers: tokenHeaders, body: form({ token: await opaqueToken(s) }) };
    case 'userinfo':
      return { url: `${target.url}/userinfo`, headers: { authorization: `Bearer ${await opaqueToken(s)}` } };
    case 'login_flow':
      throw new Error('login_flow is not an HTTP scenario');
  }
}

/** One request of the scenario by hand, so that a misconfiguration fails loudly instead of measuring errors. */
async function probe(load: HttpLoad, name: Scenario, s: Subject) {
  const item = load.next ? load.next() : { body: load.body, headers: {} };
  if (!item) throw new Error(`${s.target.name}: empty pool for ${name}`);
  const body = item.body ?? load.body;
  const res = await fetch(load.url, { method: load.method ?? 'GET', headers: { ...load.headers, ...item.headers }, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${s.target.name}: ${name} answered ${res.status}: ${text.slice(0, 300)}`);
  if (name === 'introspection' && !text.includes('"active":true')) throw new Error(`${s.target.name}: introspection says the token is not active: ${text}`);
  if ((name === 'client_credentials' || name === 'authorization_code' || name === 'refresh_token')) {
    const token = (JSON.parse(text) as { access_token?: string }).access_token ?? '';
    if (!isJwt(token)) throw new Error(`${s.target.name}: ${name} did not issue a JWT access token`);
  }
  load.onResponse?.(res.status, text);
}

async function measure(s: Subject, name: Scenario): Promise<ScenarioResult> {
  const ours = s.report.kind === 'ours';
  if (name === 'login_flow') return ours ? measureLoginFlow(s) : measureArgon2();
  const load = await prepare(s, name);
  const pooled = name === 'authorization_code';
  // Codes: enough for the warm-up at half the client_credentials rate (a code exchange does
  // more work), then enough for the run at the rate the warm-up measured, with a margin.
  const guess = (s.report.scenarios.client_credentials?.stats.rps ?? (ours ? 800 : 1500)) * (settings.warmup > 0 ? 0.5 : 0.8);
  const codes = (rate: number, seconds: number) => Math.min(settings.maxCodes, Math.ceil(rate * seconds) + 2 * settings.connections + 1);
  if (pooled) await mintCodes(s, codes(guess, settings.warmup || settings.seconds));
  await probe(load, name, s);
  if (settings.warmup > 0) {
    const warm = await runHttp(load, { connections: settings.connections, seconds: settings.warmup });
    if (pooled) await mintCodes(s, codes(warm.rps * 1.6, settings.seconds));
  }
  return measuredWindow(s, name, ours && s.report.workers === 1, () => runHttp(load, { connections: settings.connections, seconds: settings.seconds }));
}

/** One measured run, with what the server spent on it: CPU, peak memory and (optionally) its queries. */
async function measuredWindow(s: Subject, name: Scenario, withQueries: boolean, run: () => Promise<Stats>): Promise<ScenarioResult> {
  const before = withQueries ? await readQueryCounts(s.target.url, METRICS_TOKEN) : undefined;
  const rss = sampleRss(s.server.pid);
  const cpu = treeCpuMs(s.server.pid);
  const generator = process.cpuUsage();
  const stats = await run();
  const used = process.cpuUsage(generator);
  const cpuMsPerRequest = round2((treeCpuMs(s.server.pid) - cpu) / Math.max(1, stats.ok));
  const loadGeneratorCores = round2((used.user + used.system) / 1e6 / stats.seconds);
  const rssMaxMb = mb(rss.stop());
  const db = before ? perRequest(before, await readQueryCounts(s.target.url, METRICS_TOKEN), stats.ok + stats.failed) : undefined;
  report(s, name, stats, db?.queries, cpuMsPerRequest, loadGeneratorCores);
  return { stats, rssMaxMb, cpuMsPerRequest, loadGeneratorCores, ...(db ? { db } : {}) };
}

/**
 * authorize → login page → POST password (argon2id) → consent page → POST allow → callback → token.
 * prompt=consent keeps the consent page in every sign-in (a returning person's consent is
 * remembered, which would otherwise skip it after the first).
 */
const LOGIN_REQUEST: AuthorizeOptions = { ...CODE_REQUEST, prompt: 'consent' };

async function measureLoginFlow(s: Subject): Promise<ScenarioResult> {
  const op = async () => {
    const { tokens } = await fullLogin(s.target, LOGIN_REQUEST);
    if (!tokens.id_token) throw new Error('no ID token');
  };
  await op();
  if (settings.warmup > 0) await runLoop(op, { workers: settings.connections, seconds: settings.warmup });
  const result = await measuredWindow(s, 'login_flow', s.report.workers === 1, () => runLoop(op, { workers: settings.connections, seconds: settings.seconds }));
  return { ...result, note: 'one unit = one whole sign-in (8 requests); queries are per sign-in' };
}

/** The ceiling of password logins: argon2id verifications per second with our parameters. */
async function measureArgon2(): Promise<ScenarioResult> {
  const cpu = process.cpuUsage();
  const stats = await argon2Ceiling(settings.argon2, USER.password, { workers: settings.connections, seconds: settings.seconds + settings.warmup, warmup: 0 });
  const used = process.cpuUsage(cpu);
  const cpuMsPerRequest = round2((used.user + used.system) / 1000 / Math.max(1, stats.ok));
  log(`argon2id ceiling (m=${settings.argon2.memoryKib} KiB, t=${settings.argon2.iterations}, p=${settings.argon2.parallelism}): ${stats.rps} verifies/s, p50 ${stats.p50} ms, p99 ${stats.p99} ms`);
  return { stats, rssMaxMb: 0, cpuMsPerRequest, note: `argon2id verify, m=${settings.argon2.memoryKib} KiB t=${settings.argon2.iterations} p=${settings.argon2.parallelism}, ${settings.connections} at once, in the harness process (UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 4})` };
}

const round2 = (v: number) => Math.round(v * 100) / 100;

function report(s: Subject, name: string, stats: Stats, queries?: number, cpuMs?: number, generatorCores?: number) {
  const extra = [
    cpuMs !== undefined ? `${cpuMs} ms CPU/req` : '',
    generatorCores !== undefined ? `load generator ${generatorCores} cores` : '',
    stats.failed ? `${stats.failed} failed (${JSON.stringify(stats.statusCodes)})` : '',
    stats.errors ? `${stats.errors} connection errors` : '',
    stats.poolExhausted ? `pool ran out after ${stats.seconds} s` : '',
    queries !== undefined ? `${queries} queries/req` : '',
  ].filter(Boolean);
  log(`${s.target.name}: ${SCENARIO_LABELS[name] ?? name}: ${stats.rps} /s, p50 ${stats.p50} ms, p99 ${stats.p99} ms${extra.length ? ` — ${extra.join('; ')}` : ''}`);
}

async function runScenarios(s: Subject, names: readonly Scenario[], into: Record<string, ScenarioResult>) {
  for (const name of names) into[name] = await measure(s, name);
}

// ---- mail: requests that send email, with the SMTP server up, down or hanging

/** Accounts seeded on each mail server: every forgot-password request names another one (an address gets at most 3 links per 15 minutes). */
const RESET_ACCOUNTS = 100_000;
const MAIL_SCENARIOS = ['password_reset_request', 'signup'] as const;
type MailScenario = (typeof MAIL_SCENARIOS)[number];
/** How long the outbox may take to empty after the load (up) or the outage (down, hanging). */
const MAIL_DRAIN_SECONDS = 120;

interface MailServer {
  mode: SmtpMode;
  smtp: SmtpStandIn;
  db: BenchDatabase;
  subject: Subject;
  /** Successful requests so far: each wrote one message. */
  expected: number;
  ops: Record<MailScenario, () => Promise<void>>;
}

const outboxTotal = (c: OutboxCounts) => c.pending + c.sent + c.failed;

/** Ours with an SMTP server in `mode`, open sign-up, and RESET_ACCOUNTS accounts to send reset links to. */
async function startMailServer(kind: DatabaseKind, mode: SmtpMode): Promise<MailServer> {
  const smtp = await startSmtpStandIn(mode);
  const db = kind === 'sqlite' ? await createSqliteDatabase(runDir, `mail-${mode}`) : await createPostgresDatabase(settings.postgresUrl!);
  const subject = await startOurs(`mail-${kind}-smtp-${mode}`, db, 1, {
    SMTP_URL: smtp.url,
    SIGNUP: 'open',
    SIGNUP_IP_MAX_PER_HOUR: '1000000',
    // Every request comes from a client address of its own (X-Forwarded-For).
    TRUST_PROXY: '1',
    // An unreachable server is tried again after 1 s, 2 s, 4 s … (30 s, 1 min … by default), and no message is given up during the run.
    MAIL_RETRY_SECONDS: '1',
    MAIL_MAX_ATTEMPTS: '100',
  });
  await seedUsers(db, RESET_ACCOUNTS, 'reset-');
  const forms = await Promise.all(Array.from({ length: settings.connections }, () => forgotPasswordForm(subject.target)));
  const nextIp = clientAddresses();
  let accounts = 0;
  let signUps = 0;
  const server: MailServer = {
    mode,
    smtp,
    db,
    subject,
    expected: 0,
    ops: {
      password_reset_request: async () => {
        const n = ++accounts;
        if (n > RESET_ACCOUNTS) throw new Error('every seeded account was sent a link: raise RESET_ACCOUNTS');
        await forms[n % forms.length]!(`reset-${n}@bench.example`, nextIp());
        server.expected++;
      },
      signup: async () => {
        await signUpThroughApp(subject.target, `signup-${++signUps}@bench.example`, nextIp());
        server.expected++;
      },
    },
  };
  return server;
}

/** Waits until `done` holds of the outbox's counts (polling), or `seconds` have passed; the seconds it took, or null. */
async function waitForOutbox(db: BenchDatabase, done: (c: OutboxCounts) => boolean, seconds: number): Promise<number | null> {
  const started = performance.now();
  while (performance.now() - started < seconds * 1000) {
    if (done(await outboxCounts(db))) return (performance.now() - started) / 1000;
    await sleep(100);
  }
  return null;
}

/** One measured window; CPU per request includes the work done after the answers (a forgot-password request writes its message later). */
async function mailWindow(server: MailServer, scenario: MailScenario, round: number): Promise<MailWindow> {
  const { pid } = server.subject.server;
  const before = outboxTotal(await outboxCounts(server.db));
  const expectedBefore = server.expected;
  const cpu = treeCpuMs(pid);
  const stats = await runLoop(server.ops[scenario], { workers: settings.connections, seconds: settings.seconds });
  const wanted = before + server.expected - expectedBefore;
  await waitForOutbox(server.db, (c) => outboxTotal(c) >= wanted, 30);
  const written = outboxTotal(await outboxCounts(server.db)) - before;
  const cpuMsPerRequest = round2((treeCpuMs(pid) - cpu) / Math.max(1, stats.ok));
  report(server.subject, scenario, stats, undefined, cpuMsPerRequest);
  return { round, stats, cpuMsPerRequest, written };
}

/**
 * Runs `fn` with the other servers paused (SIGSTOP), so that their background work (delivering
 * or retrying their mail) takes no CPU from the window: each server's window pays for its own.
 */
async function alone<T>(server: MailServer, servers: MailServer[], fn: () => Promise<T>): Promise<T> {
  const others = servers.filter((s) => s !== server).map((s) => s.subject.server.pid);
  for (const pid of others) process.kill(pid, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    for (const pid of others) process.kill(pid, 'SIGCONT');
  }
}

/**
 * The same requests on three servers at once, whose SMTP server is up, down (connection refused)
 * or hanging (accepts, never answers), in interleaved rounds (the order turns each round), so
 * that the ratios compare windows seconds apart. Then the outages end, and the outboxes must
 * deliver every message the requests wrote.
 */
async function measureMail(kind: DatabaseKind): Promise<Pick<MailReport, 'runs' | 'outbox'>> {
  const servers: MailServer[] = [];
  for (const mode of SMTP_MODES) servers.push(await startMailServer(kind, mode));
  const runs = new Map<string, MailRun>();
  for (const server of servers) {
    for (const scenario of MAIL_SCENARIOS) {
      runs.set(`${server.mode}/${scenario}`, { database: kind, mode: server.mode, scenario, windows: [] });
      await server.ops[scenario]();
      if (settings.warmup > 0) await runLoop(server.ops[scenario], { workers: settings.connections, seconds: settings.warmup });
    }
  }
  // Round 0 warms every server up under the same interleaving, and is not counted: a server
  // keeps getting faster for tens of seconds of load (its JIT, the database's pages).
  for (let round = 0; round <= settings.mailRounds; round++) {
    const order = [...servers.slice(round % servers.length), ...servers.slice(0, round % servers.length)];
    for (const scenario of MAIL_SCENARIOS) {
      for (const server of order) {
        const window = await alone(server, servers, () => mailWindow(server, scenario, round));
        if (round > 0) runs.get(`${server.mode}/${scenario}`)!.windows.push(window);
      }
    }
  }

  const stopped = await Promise.all(servers.map((s) => outboxCounts(s.db)));
  for (const server of servers) await server.smtp.recover();
  const emptied = await Promise.all(servers.map((s) => waitForOutbox(s.db, (c) => c.pending === 0, MAIL_DRAIN_SECONDS)));
  const outbox: MailOutbox[] = [];
  for (const [i, server] of servers.entries()) {
    const end = await outboxCounts(server.db);
    outbox.push({
      database: kind,
      mode: server.mode,
      expected: server.expected,
      written: outboxTotal(end),
      sentWhenLoadStopped: stopped[i]!.sent,
      pendingWhenLoadStopped: stopped[i]!.pending,
      sent: end.sent,
      pending: end.pending,
      failed: end.failed,
      received: server.smtp.received,
      emptiedAfterSeconds: emptied[i] === null ? null : Math.round(emptied[i]! * 10) / 10,
    });
    log(`mail-${kind}-smtp-${server.mode}: ${server.expected} messages written by requests; ${end.sent} sent, ${end.pending} pending, ${end.failed} failed; the SMTP server received ${server.smtp.received}`);
    await halt(server.subject.server);
    await server.smtp.close();
    await server.db.drop();
  }
  return { runs: [...runs.values()], outbox };
}

// ---- the run

function machine() {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    availableParallelism: availableParallelism(),
    memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    node: process.version,
    date: new Date().toISOString(),
    /** Other work on the machine skews every number: 1, 5 and 15 minute load averages when the run began. */
    loadAverageAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
    commit,
  };
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const server of [...live]) await halt(server).catch(() => {});
    killAllChildren();
    await dropAllDatabases();
    if (runDir) await rm(runDir, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping servers and dropping databases`);
    void cleanup().finally(() => process.exit(code));
  });
}
process.on('exit', () => killAllChildren());

/** Ours on each database against the ceiling, scenario by scenario; then with stored rows; then WORKERS=2. */
async function measureProtocol(databases: DatabaseKind[], subjects: RunData['subjects']) {
  const tokenScenarios = TOKEN_SCENARIOS.filter((n) => settings.scenarios.includes(n));
  // 1. All servers side by side: the ceiling, and ours on each database (fresh).
  const ceiling = await startCeiling();
  subjects.ceiling = ceiling.report;
  const ours: { subject: Subject; db: BenchDatabase }[] = [];
  for (const kind of databases) {
    const db = kind === 'sqlite' ? await createSqliteDatabase(runDir, 'main') : await createPostgresDatabase(settings.postgresUrl!);
    const subject = await startOurs(`ours-${kind}`, db, 1);
    subjects[kind] = subject.report;
    ours.push({ subject, db });
  }

  // 2. Each scenario on each server in turn (one at a time), so that drift in the machine's
  // background load hits ours and the ceiling alike.
  for (const name of settings.scenarios) {
    for (const s of [ceiling, ...ours.map((o) => o.subject)]) s.report.scenarios[name] = await measure(s, name);
  }
  await halt(ceiling.server);

  // 3. The token scenarios again with the stored rows, then the memory left after all that load.
  for (const { subject, db } of ours) {
    const label = subject.report.label;
    if (!settings.skipScale && tokenScenarios.length) {
      const baseline: Record<string, ScenarioResult> = {};
      log(`${label}: token scenarios again, right before the insert (baseline)`);
      await runScenarios(subject, tokenScenarios, baseline);
      log(`${label}: inserting ${settings.rows} rows`);
      const inserted = await bulkInsert(db, settings.rows);
      log(`${label}: inserted ${inserted.rows} rows in ${inserted.seconds.toFixed(1)} s (${inserted.totalRows} artifact rows in all)`);
      subject.report.scale = { rows: inserted.rows, insertSeconds: Math.round(inserted.seconds * 10) / 10, totalRows: inserted.totalRows, baseline, scenarios: {} };
      await runScenarios(subject, tokenScenarios, subject.report.scale.scenarios);
    }
    await sleep(2000);
    subject.report.rssIdleAfterLoadMb = mb(treeRss(subject.server.pid));
    await halt(subject.server);
    await db.drop();
  }

  // 4. WORKERS=2 (SQLite) for client_credentials; WORKERS=1 is ours-sqlite above.
  if (!settings.skipWorkers && settings.scenarios.includes('client_credentials')) {
    const db = await createSqliteDatabase(runDir, 'workers');
    const two = await startOurs('ours-sqlite-workers2', db, 2);
    subjects.workers2 = two.report;
    two.report.scenarios.client_credentials = await measure(two, 'client_credentials');
    await halt(two.server);
    await db.drop();
  }
}

async function main() {
  const [major] = process.versions.node.split('.').map(Number);
  if ((major ?? 0) < 22) throw new Error(`Node ${process.version} cannot run TypeScript directly: run "npm run bench" (it uses the Node the project pins)`);
  runDir = await mkdtemp(join(tmpdir(), 'idp-bench-'));
  log('building the server (npm run build)');
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
  const info = machine();
  log(`${info.cpuModel}, ${info.cores} cores, Node ${info.node}; ${settings.seconds} s per scenario after ${settings.warmup} s warm-up, ${settings.connections} connections; scenarios: ${settings.scenarios.join(', ')}`);

  const subjects: RunData['subjects'] = {};

  const databases: DatabaseKind[] = settings.postgresUrl ? ['sqlite', 'postgresql'] : ['sqlite'];
  if (settings.scenarios.length) await measureProtocol(databases, subjects);

  // 5. Requests that send email, with the SMTP server up, down and hanging.
  let mail: MailReport | undefined;
  if (settings.mail) {
    mail = { rounds: settings.mailRounds, seconds: settings.seconds, runs: [], outbox: [] };
    for (const kind of databases) {
      const measured = await measureMail(kind);
      mail.runs.push(...measured.runs);
      mail.outbox.push(...measured.outbox);
    }
  }

  // 6. Report.
  const data: RunData = {
    machine: { ...info, loadAverageAtEnd: loadavg().map((v) => Math.round(v * 100) / 100) },
    settings: { ...settings, postgresUrl: settings.postgresUrl ? '(set)' : undefined },
    durationSeconds: Math.round((performance.now() - runStarted) / 1000),
    subjects,
    ...(mail ? { mail } : {}),
    targets: evaluateTargets(subjects, settings.rows, mail),
  };
  const markdown = renderMarkdown(data);
  process.stdout.write(`\n${markdown}`);
  await writeResults(data, markdown);
  log(`wrote bench/results/latest.json and latest.md (${data.durationSeconds} s in all)`);
}

const RESULTS = join(ROOT, 'bench', 'results');

async function writeResults(data: RunData, markdown: string) {
  await mkdir(RESULTS, { recursive: true });
  await writeFile(join(RESULTS, 'latest.md'), markdown);
  await writeFile(join(RESULTS, 'latest.json'), `${JSON.stringify(data, null, 2)}\n`);
}

/** `node bench/run.ts --render`: the tables again from latest.json (after a change to the report), without measuring. */
async function rerender() {
  const data = JSON.parse(await readFile(join(RESULTS, 'latest.json'), 'utf8')) as RunData;
  data.targets = evaluateTargets(data.subjects, data.settings.rows, data.mail);
  const markdown = renderMarkdown(data);
  process.stdout.write(markdown);
  await writeResults(data, markdown);
}

try {
  await (process.argv.includes('--render') ? rerender() : main());
} catch (err) {
  console.error('bench failed:', err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
