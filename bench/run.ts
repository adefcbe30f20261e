/**
 * `npm run bench`: our service (SQLite, and PostgreSQL with BENCH_DATABASE_URL, and PostgreSQL with
 * the short-lived state in Redis with BENCH_REDIS_URL too) against a bare
 * oidc-provider with the same options (the ceiling), under the same load. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { authorize, basicAuth, FORM, fullLogin, inParallel, isJwt, redeem, type AuthorizeOptions, type Code, type Target } from './lib/agent.ts';
import { UserAgent } from '../test/helpers/user-agent.ts';
import { bulkInsert, createPostgresDatabase, createSqliteDatabase, outboxCounts, seedPasswordUsers, seedUsers, type BenchDatabase, type DatabaseKind, type OutboxCounts } from './lib/db.ts';
import { API_IDENTIFIER, API_SCOPES, CODE_REQUEST, LOGIN_REQUEST, REDIRECT_URI, TTL, USER, type Fixture } from './lib/fixture.ts';
import { argon2Verifier, Recorder, runHttp, runLoop, type HttpLoad, type Stats } from './lib/load.ts';
import { addQueries, perRequest, readQueryCounts, type QueryCounts } from './lib/metrics.ts';
import { buildServer, cleanUpOnExit, halt, launch, METRICS_TOKEN, startOurs as startOursProcess } from './lib/ours.ts';
import { freePort, ROOT, sampleRss, signalTree, treeCpuMs, treeRss, type ServerProcess } from './lib/proc.ts';
import { clientAddresses, forgotPasswordForm, signUpThroughApp, SMTP_MODES, startSmtpStandIn, type SmtpMode, type SmtpStandIn } from './lib/mail.ts';
import { evaluateTargets, mb, renderMarkdown, SCENARIO_LABELS, type MailOutbox, type MailReport, type OursOnlyRun, type MailRun, type MailWindow, type RatioSummary, type RunData, type ScenarioResult, type SliceResult, type SubjectReport } from './lib/report.ts';
import { adminToken, consoleListOp, enrolTotp, passkeySignInOp, totpSignInOp, traceConsoleLists, forgotPasswordOp, OURS_ONLY_ENV, OURS_ONLY_SCENARIOS, signUpOp, type OursOnlyScenario } from './lib/accounts.ts';
import { createRedisNamespace, OURS_NAMES, oursKinds, type OursKind, type RedisNamespace } from './lib/redis.ts';
import { argon2FromEnv, checkNode, numberFromEnv, signingAlgFromEnv } from './lib/settings.ts';
import { traceSignIns, tracingHook, type SignInStep } from './lib/signin.ts';

const SCENARIOS = ['discovery', 'jwks', 'client_credentials', 'authorization_code', 'refresh_token', 'introspection', 'userinfo', 'login_flow'] as const;
type Scenario = (typeof SCENARIOS)[number];
/** Every scenario but the login flow is one kind of HTTP request, sent again and again. */
type HttpScenario = Exclude<Scenario, 'login_flow'>;
const TOKEN_SCENARIOS: readonly HttpScenario[] = ['client_credentials', 'authorization_code', 'refresh_token'];

// ---- settings (environment)

function readSettings() {
  const seconds = numberFromEnv('BENCH_DURATION', 10, 1);
  const only = process.env.BENCH_ONLY?.split(/[\s,]+/).filter(Boolean);
  const known: string[] = [...SCENARIOS, ...OURS_ONLY_SCENARIOS, 'mail'];
  const unknown = only?.filter((s) => !known.includes(s));
  if (unknown?.length) throw new Error(`BENCH_ONLY: unknown scenario(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  return {
    seconds,
    warmup: numberFromEnv('BENCH_WARMUP', Math.min(2, Math.max(1, seconds / 5)), 0),
    connections: numberFromEnv('BENCH_CONNECTIONS', 16, 1),
    rows: Math.floor(numberFromEnv('BENCH_ROWS', 1_000_000, 1)),
    scenarios: SCENARIOS.filter((s) => !only || only.includes(s)),
    mail: !only || only.includes('mail'),
    /** Ours only (no ceiling): TOTP and passkey sign-ins, forgot-password, sign-up, the console's lists; seconds per window. */
    oursOnly: OURS_ONLY_SCENARIOS.filter((s) => !only || only.includes(s)),
    oursOnlySeconds: numberFromEnv('BENCH_OURS_ONLY_DURATION', 5, 1),
    /** Users with an authenticator app for the TOTP sign-ins: each signs in about once per 30 s (a code is single-use per step). */
    totpUsers: Math.floor(numberFromEnv('BENCH_TOTP_USERS', 400, 1)),
    mailRounds: Math.floor(numberFromEnv('BENCH_MAIL_ROUNDS', 3, 1)),
    /** Ours vs the ceiling: rounds that count (after one that warms up), and seconds per slice. */
    rounds: Math.floor(numberFromEnv('BENCH_ROUNDS', 5, 1)),
    slice: numberFromEnv('BENCH_SLICE', 3, 0.5),
    skipScale: process.env.BENCH_SKIP_SCALE === '1',
    skipWorkers: process.env.BENCH_SKIP_WORKERS === '1',
    postgresUrl: process.env.BENCH_DATABASE_URL || undefined,
    /** With postgresUrl: ours on PostgreSQL with the short-lived state in Redis too (EPHEMERAL_STORE=redis). */
    redisUrl: process.env.BENCH_REDIS_URL || undefined,
    cpuProfile: process.env.BENCH_CPU_PROF === '1',
    maxCodes: Math.floor(numberFromEnv('BENCH_MAX_CODES', 40_000, 100)),
    signingAlg: signingAlgFromEnv(),
    argon2: argon2FromEnv(),
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

let runDir = '';

function profileArgs(label: string): string[] {
  return settings.cpuProfile ? ['--cpu-prof', `--cpu-prof-dir=${join(ROOT, 'bench', 'results', 'profiles', label)}`] : [];
}

/** Our service as a child process, as deployed (`node dist/main.js`, built once per run), seeded through the `idp` CLI. */
async function startOurs(label: string, db: BenchDatabase, workers: number, extraEnv: Record<string, string> = {}, host?: string): Promise<Subject> {
  const started = await startOursProcess({ label, db, workers, cwd: runDir, signingAlg: settings.signingAlg, argon2: settings.argon2, nodeArgs: profileArgs(label), extraEnv, log, ...(host ? { host } : {}) });
  const { firstStartMs, restartMs, rssIdleMb, rssIdleByProcessMb } = started;
  return {
    report: { label, kind: 'ours', database: db.kind, workers, firstStartMs: Math.round(firstStartMs), restartMs: Math.round(restartMs), rssIdleMb, ...(workers > 1 ? { rssIdleByProcessMb } : {}), scenarios: {} },
    target: started.target,
    server: started.server,
    env: started.env,
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
async function prepare(s: Subject, name: HttpScenario): Promise<HttpLoad> {
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
      // The pool is filled by measure() or before each slice, for the rate measured so far.
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
  }
}

/** One request of the scenario by hand, so that a misconfiguration fails loudly instead of measuring errors. */
async function probe(load: HttpLoad, name: HttpScenario, s: Subject) {
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

/** Codes for `seconds` of load at `rate` per second, with a margin (at most BENCH_MAX_CODES). */
const codesFor = (rate: number, seconds: number) => Math.min(settings.maxCodes, Math.ceil(rate * seconds) + 2 * settings.connections + 1);

/** A first guess of a subject's code-exchange rate: half its client_credentials rate (a code exchange does more work). */
const codeRateGuess = (s: Subject) => (s.report.scenarios.client_credentials?.stats.rps ?? (s.report.kind === 'ours' ? 800 : 1500)) * 0.5;

/**
 * One subject alone, in one window of BENCH_DURATION after a warm-up of BENCH_WARMUP: the parts
 * that compare a server with itself (stored rows) or with another run of ours (WORKERS).
 */
async function measure(s: Subject, name: HttpScenario): Promise<ScenarioResult> {
  const ours = s.report.kind === 'ours';
  const load = await prepare(s, name);
  const pooled = name === 'authorization_code';
  // Codes: enough for the warm-up at the guessed rate, then enough for the run at 1.6 × the
  // rate the warm-up measured.
  if (pooled) await mintCodes(s, codesFor(codeRateGuess(s) * (settings.warmup > 0 ? 1 : 1.6), settings.warmup || settings.seconds));
  await probe(load, name, s);
  if (settings.warmup > 0) {
    const warm = await runHttp(load, { connections: settings.connections, seconds: settings.warmup });
    if (pooled) await mintCodes(s, codesFor(warm.rps * 1.6, settings.seconds));
  }
  return measuredWindow(s, name, ours && s.report.workers === 1, () => runHttp(load, { connections: settings.connections, seconds: settings.seconds }));
}

/** One measured run, with what the server spent on it: CPU, peak memory and (optionally) its queries. */
async function measuredWindow(s: Subject, name: string, withQueries: boolean, run: () => Promise<Stats>): Promise<ScenarioResult> {
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

const round2 = (v: number) => Math.round(v * 100) / 100;
const round3 = (v: number) => Math.round(v * 1000) / 1000;

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

async function runScenarios(s: Subject, names: readonly HttpScenario[], into: Record<string, ScenarioResult>) {
  for (const name of names) into[name] = await measure(s, name);
}

// ---- ours vs the ceiling: interleaved slices, the others paused

/**
 * Runs `fn` with every server of `pids` but `pid` paused (SIGSTOP, the whole process tree), so
 * that their background work takes no CPU from it; `pid` undefined pauses them all.
 */
async function alone<T>(pid: number | undefined, pids: readonly number[], fn: () => Promise<T>): Promise<T> {
  const others = pids.filter((p) => p !== pid);
  for (const p of others) signalTree(p, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    for (const p of others) signalTree(p, 'SIGCONT');
  }
}

/** One side of an interleaved scenario: a server, or (the login flow's ceiling) argon2 in this process. */
interface Contender {
  subject: Subject;
  /** The server that runs during this contender's slices; undefined: argon2, here. */
  pid: number | undefined;
  /** Unmeasured, before each slice (the contender's server alone running): fills its pools. */
  ready(): Promise<void>;
  run(seconds: number, pooled?: Recorder): Promise<Stats>;
  /** CPU used so far by what does the work (ms). */
  cpuMs(): number;
  /** This process is the load generator (false for argon2: its CPU is the ceiling's work). */
  generator: boolean;
  withQueries: boolean;
}

interface Slice extends SliceResult {
  generatorCpuMs: number;
  wallMs: number;
  rssMaxMb: number;
}

/** This process's CPU time so far (ms, all threads). */
const ownCpuMs = () => {
  const used = process.cpuUsage();
  return (used.user + used.system) / 1000;
};

/** The load generator's CPU and wall time over the counted slices of every interleaved scenario. */
const generatorUse = { cpuMs: 0, wallMs: 0 };

async function contender(s: Subject, name: Scenario): Promise<Contender> {
  const pid = s.server.pid;
  const ours = s.report.kind === 'ours';
  const withQueries = ours && s.report.workers === 1;
  const server = { pid, cpuMs: () => treeCpuMs(pid), generator: true, withQueries };
  if (name === 'login_flow') {
    if (!ours) {
      const verify = await argon2Verifier(settings.argon2, USER.password);
      await verify();
      return { subject: s, pid: undefined, ready: async () => {}, run: (seconds, pooled) => runLoop(verify, { workers: settings.connections, seconds, pooled }), cpuMs: ownCpuMs, generator: false, withQueries: false };
    }
    const op = async () => {
      const { tokens } = await fullLogin(s.target, LOGIN_REQUEST);
      if (!tokens.id_token) throw new Error('no ID token');
    };
    await op();
    return { subject: s, ...server, ready: async () => {}, run: (seconds, pooled) => runLoop(op, { workers: settings.connections, seconds, pooled }) };
  }
  // Codes for the next slice: 1.6 × the fastest slice so far (a guess before the first), with a margin.
  let fastest = 0;
  const mint = () => (name === 'authorization_code' ? mintCodes(s, codesFor(1.6 * (fastest || codeRateGuess(s)), settings.slice)) : Promise.resolve());
  await mint();
  let load = await prepare(s, name);
  await probe(load, name, s);
  return {
    subject: s,
    ...server,
    async ready() {
      // Tops up the refresh tokens, renews the opaque access token before it expires, mints codes.
      load = await prepare(s, name);
      await mint();
    },
    async run(seconds, pooled) {
      const stats = await runHttp(load, { connections: settings.connections, seconds, ...(pooled ? { pooled } : {}) });
      fastest = Math.max(fastest, stats.rps);
      return stats;
    },
  };
}

/** One slice of `seconds` on one contender, with what it cost: the server's CPU, this process's CPU, memory, queries. */
async function slice(c: Contender, round: number, pooled: Recorder | undefined, queries: QueryCounts): Promise<Slice> {
  await c.ready();
  const { url } = c.subject.target;
  const before = c.withQueries && pooled ? await readQueryCounts(url, METRICS_TOKEN) : undefined;
  const rss = c.pid === undefined ? undefined : sampleRss(c.pid);
  const cpu = c.cpuMs();
  const generator = ownCpuMs();
  const started = performance.now();
  const stats = await c.run(settings.slice, pooled);
  const wallMs = performance.now() - started;
  const generatorCpuMs = ownCpuMs() - generator;
  const cpuMsPerRequest = round2((c.cpuMs() - cpu) / Math.max(1, stats.ok));
  const rssMaxMb = rss ? mb(rss.stop()) : 0;
  if (before) addQueries(queries, before, await readQueryCounts(url, METRICS_TOKEN));
  return {
    round,
    rps: stats.rps,
    ok: stats.ok,
    failed: stats.failed,
    errors: stats.errors,
    seconds: stats.seconds,
    p50: stats.p50,
    p99: stats.p99,
    cpuMsPerRequest,
    ...(c.generator ? { loadGeneratorCores: round2(generatorCpuMs / wallMs) } : {}),
    ...(stats.poolExhausted ? { poolExhausted: true } : {}),
    generatorCpuMs,
    wallMs,
    rssMaxMb,
  };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * One scenario on the ceiling and on ours (each database), in short alternating slices: a
 * warm-up round that does not count, then BENCH_ROUNDS rounds of one BENCH_SLICE-second slice per
 * contender, the order turning each round, every other server paused during a slice. Each of
 * ours gets the median of its per-round ratios to the ceiling, and their spread.
 */
async function measureInterleaved(name: Scenario, ceiling: Subject, ours: Subject[]): Promise<void> {
  const pids = [ceiling, ...ours].map((s) => s.server.pid);
  const contenders: Contender[] = [];
  for (const s of [ceiling, ...ours]) {
    const c = await alone(name === 'login_flow' && s === ceiling ? undefined : s.server.pid, pids, () => contender(s, name));
    contenders.push(c);
  }
  const slices = new Map<Contender, Slice[]>(contenders.map((c) => [c, []]));
  const pooled = new Map<Contender, Recorder>(contenders.map((c) => [c, new Recorder()]));
  const queries = new Map<Contender, QueryCounts>(contenders.map((c) => [c, new Map()]));
  const label = SCENARIO_LABELS[name] ?? name;
  log(`${label}: ${contenders.map((c) => c.subject.target.name).join(' / ')} in ${settings.rounds} rounds of ${settings.slice} s slices after a warm-up round`);
  for (let round = 0; round <= settings.rounds; round++) {
    const turn = round % contenders.length;
    const order = [...contenders.slice(turn), ...contenders.slice(0, turn)];
    const line: string[] = [];
    for (const c of order) {
      const counted = round > 0;
      const result = await alone(c.pid, pids, () => slice(c, round, counted ? pooled.get(c) : undefined, queries.get(c)!));
      const who = c.generator ? c.subject.target.name : 'argon2id';
      line.push(`${who} ${result.rps}/s ${result.cpuMsPerRequest} ms CPU${result.failed ? `, ${result.failed} failed` : ''}${result.errors ? `, ${result.errors} connection errors` : ''}${result.poolExhausted ? `, POOL RAN OUT after ${result.seconds} s` : ''}`);
      if (result.poolExhausted) log(`${label}: ${who}: the pool ran out after ${result.seconds} s of a ${settings.slice} s slice (round ${round}${counted ? '' : ', warm-up'}): its rate is over that time; raise BENCH_MAX_CODES if it is the limit (${settings.maxCodes})`);
      if (counted) {
        slices.get(c)!.push(result);
        generatorUse.cpuMs += c.generator ? result.generatorCpuMs : 0;
        generatorUse.wallMs += c.generator ? result.wallMs : 0;
      }
    }
    log(`${label}: ${round ? `round ${round}` : 'warm-up'}: ${line.join('; ')}`);
  }

  const ceilingSlices = slices.get(contenders[0]!)!;
  for (const c of contenders) {
    const own = slices.get(c)!;
    const ok = own.reduce((sum, x) => sum + x.ok, 0);
    const stats = pooled.get(c)!.stats(own.reduce((sum, x) => sum + x.seconds, 0), own.reduce((sum, x) => sum + x.errors, 0));
    stats.rps = round2(median(own.map((x) => x.rps)));
    if (own.some((x) => x.poolExhausted)) stats.poolExhausted = true;
    const generatorWall = own.reduce((sum, x) => sum + x.wallMs, 0);
    const result: ScenarioResult = {
      stats,
      rssMaxMb: Math.max(0, ...own.map((x) => x.rssMaxMb)),
      cpuMsPerRequest: round2(own.reduce((sum, x) => sum + x.cpuMsPerRequest * x.ok, 0) / Math.max(1, ok)),
      ...(c.generator ? { loadGeneratorCores: round2(own.reduce((sum, x) => sum + x.generatorCpuMs, 0) / Math.max(1, generatorWall)) } : {}),
      ...(c.withQueries ? { db: perRequest(new Map(), queries.get(c)!, ok + stats.failed) } : {}),
      slices: own.map(({ generatorCpuMs: _cpu, wallMs: _wall, rssMaxMb: _rss, ...rest }) => rest),
    };
    if (name === 'login_flow') {
      result.note = c.generator
        ? 'one unit = one whole sign-in (8 requests); queries are per sign-in'
        : `argon2id verify, m=${settings.argon2.memoryKib} KiB t=${settings.argon2.iterations} p=${settings.argon2.parallelism}, ${settings.connections} at once, in the harness process (UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 4})`;
    }
    if (c !== contenders[0]) {
      const rounds = own.flatMap((x) => {
        const other = ceilingSlices.find((y) => y.round === x.round);
        return other?.rps ? [round3(x.rps / other.rps)] : [];
      });
      if (rounds.length) result.vsCeiling = { median: round3(median(rounds)), min: Math.min(...rounds), max: Math.max(...rounds), rounds } satisfies RatioSummary;
    }
    c.subject.report.scenarios[name] = result;
    const r = result.vsCeiling;
    log(
      `${c.generator ? c.subject.target.name : 'argon2id ceiling'}: ${label}: median ${stats.rps}/s, p50 ${stats.p50} ms, p99 ${stats.p99} ms, ${result.cpuMsPerRequest} ms CPU/req` +
        (r ? ` — ÷ ceiling ${r.median.toFixed(2)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})` : '') +
        (result.db ? `; ${result.db.queries} queries/req` : ''),
    );
  }
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
        // The other servers are paused, so that their background work (delivering or retrying
        // their mail) takes no CPU from the window: each server's window pays for its own.
        const window = await alone(server.subject.server.pid, servers.map((s) => s.subject.server.pid), () => mailWindow(server, scenario, round));
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

// ---- ours only: forgot-password, sign-up, the console's lists

/** Accounts seeded for the forgot-password requests (each is sent at most 3 links). */
const FORGOT_ACCOUNTS = 10_000;

/**
 * Ours alone, on a server of its own (open sign-up, a client address per request behind
 * TRUST_PROXY=1, SMTP on a closed port as everywhere else): each scenario is one window of
 * BENCH_OURS_ONLY_DURATION after the warm-up, with CPU and queries per request. There is no
 * ceiling to compare with: these requests are ours, not the protocol's.
 */
async function measureOursOnly(kind: DatabaseKind): Promise<OursOnlyRun> {
  const db = kind === 'sqlite' ? await createSqliteDatabase(runDir, 'ours-only') : await createPostgresDatabase(settings.postgresUrl!);
  // Its issuer is on `localhost`: passkeys refuse an IP address.
  const s = await startOurs(`ours-${kind}-accounts`, db, 1, OURS_ONLY_ENV, 'localhost');
  const run: OursOnlyRun = { database: kind, label: s.report.label, seconds: settings.oursOnlySeconds, scenarios: {} };
  const ops: Record<OursOnlyScenario, () => Promise<() => Promise<void>>> = {
    password_reset_request: async () => {
      await seedUsers(db, FORGOT_ACCOUNTS, 'forgot-');
      return forgotPasswordOp(s.target, settings.connections, FORGOT_ACCOUNTS, 'forgot-');
    },
    totp_login: async () => {
      const users = await seedPasswordUsers(db, settings.totpUsers, 'totp-', USER.email);
      const started = performance.now();
      const enrolled = await enrolTotp(s.env!, users);
      log(`${s.report.label}: ${enrolled.length} users with an authenticator app (enrolled in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
      const signIn = totpSignInOp(s.target, enrolled, USER.password, LOGIN_REQUEST);
      // One sign-in request by request, alone, after two that warm up, before the load.
      for (let i = 0; i < 2; i++) await signIn();
      const steps: SignInStep[] = [];
      await signIn(tracingHook(s.target, METRICS_TOKEN, steps));
      run.totpSignIn = steps;
      return () => signIn();
    },
    passkey_login: async () => {
      const users = await seedPasswordUsers(db, settings.connections, 'passkey-', USER.email);
      const signIn = await passkeySignInOp(s.target, s.env!, users, LOGIN_REQUEST);
      for (let i = 0; i < 2; i++) await signIn();
      const steps: SignInStep[] = [];
      await signIn(tracingHook(s.target, METRICS_TOKEN, steps));
      run.passkeySignIn = steps;
      return () => signIn();
    },
    signup: async () => signUpOp(s.target, 'signup-'),
    console_lists: async () => {
      const token = await adminToken(s.target, s.env!, runDir);
      run.consoleCalls = await traceConsoleLists(s.target, token, METRICS_TOKEN);
      return consoleListOp(s.target, token);
    },
  };
  for (const name of settings.oursOnly) {
    const op = await ops[name]();
    await op();
    if (settings.warmup > 0) await runLoop(op, { workers: settings.connections, seconds: settings.warmup });
    // A forgot-password request writes its message after answering: the window's CPU and
    // queries include that work (waiting until every answered request's message is written).
    const settle = async (stats: Stats, before: number) => {
      if (name === 'password_reset_request') await waitForOutbox(db, (c) => outboxTotal(c) >= before + stats.ok, 30);
    };
    run.scenarios[name] = await measuredWindow(s, name, true, async () => {
      const before = outboxTotal(await outboxCounts(db));
      const stats = await runLoop(op, { workers: settings.connections, seconds: settings.oursOnlySeconds });
      await settle(stats, before);
      return stats;
    });
  }
  await halt(s.server);
  await db.drop();
  return run;
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

const cleanup = cleanUpOnExit(() => runDir, log);

/**
 * Ours on each database (and on PostgreSQL with the short-lived state in Redis) against the
 * ceiling, scenario by scenario; then with stored rows; then WORKERS=2.
 */
async function measureProtocol(kinds: OursKind[], subjects: RunData['subjects']) {
  const tokenScenarios = TOKEN_SCENARIOS.filter((n) => settings.scenarios.includes(n));
  // 1. All servers side by side: the ceiling, and ours on each database (fresh).
  const ceiling = await startCeiling();
  subjects.ceiling = ceiling.report;
  const ours: { subject: Subject; db: BenchDatabase; redis?: RedisNamespace }[] = [];
  for (const kind of kinds) {
    const db = kind === 'sqlite' ? await createSqliteDatabase(runDir, 'main') : await createPostgresDatabase(settings.postgresUrl!);
    const redis = kind === 'postgresqlRedis' ? await createRedisNamespace(settings.redisUrl!) : undefined;
    const subject = await startOurs(`ours-${OURS_NAMES[kind]}`, db, 1, redis?.env);
    if (redis) subject.report.ephemeralStore = 'redis';
    subjects[kind] = subject.report;
    ours.push({ subject, db, ...(redis ? { redis } : {}) });
  }

  // The statements of one sign-in, request by request: before any load, each server alone.
  if (settings.scenarios.includes('login_flow')) {
    const pids = [ceiling, ...ours.map((o) => o.subject)].map((s) => s.server.pid);
    for (const { subject } of ours) {
      const trace = await alone(subject.server.pid, pids, () => traceSignIns(subject.target, METRICS_TOKEN, LOGIN_REQUEST, { warmup: 2, count: 3 }));
      subject.report.signIn = trace;
      log(`${subject.target.name}: one sign-in makes ${trace.total} statements: ${trace.steps.map((step) => `${step.request} ${step.statements}`).join(', ')}`);
    }
  }

  // 2. Each scenario on the ceiling and ours in short alternating slices, the others paused, so
  // that each ratio compares windows seconds apart.
  for (const name of settings.scenarios) await measureInterleaved(name, ceiling, ours.map((o) => o.subject));
  await halt(ceiling.server);

  // 3. The token scenarios again with the stored rows, then the memory left after all that load.
  for (const { subject, db, redis } of ours) {
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
    if (redis) log(`${label}: deleted ${await redis.drop()} Redis keys under ${redis.prefix}`);
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
  checkNode();
  const kinds = oursKinds(settings.postgresUrl, settings.redisUrl);
  runDir = await mkdtemp(join(tmpdir(), 'idp-bench-'));
  log('building the server (npm run build)');
  buildServer();
  const info = machine();
  log(`${info.cpuModel}, ${info.cores} cores (load average ${info.loadAverageAtStart.join(' ')}), Node ${info.node}; ours vs ceiling: ${settings.rounds} rounds of ${settings.slice} s slices per server after a warm-up round; one server alone: ${settings.seconds} s after ${settings.warmup} s warm-up; ${settings.connections} connections; scenarios: ${settings.scenarios.join(', ')}`);

  const subjects: RunData['subjects'] = {};

  // The ours-only and mail parts run on each database, not with Redis.
  const databases = kinds.filter((k): k is DatabaseKind => k !== 'postgresqlRedis');
  if (settings.scenarios.length) await measureProtocol(kinds, subjects);

  // 5. Ours only: forgot-password, sign-up, the console's lists.
  const oursOnly: OursOnlyRun[] = [];
  if (settings.oursOnly.length) for (const kind of databases) oursOnly.push(await measureOursOnly(kind));

  // 6. Requests that send email, with the SMTP server up, down and hanging.
  let mail: MailReport | undefined;
  if (settings.mail) {
    mail = { rounds: settings.mailRounds, seconds: settings.seconds, runs: [], outbox: [] };
    for (const kind of databases) {
      const measured = await measureMail(kind);
      mail.runs.push(...measured.runs);
      mail.outbox.push(...measured.outbox);
    }
  }

  // 7. Report.
  const data: RunData = {
    machine: { ...info, loadAverageAtEnd: loadavg().map((v) => Math.round(v * 100) / 100) },
    settings: { ...settings, postgresUrl: settings.postgresUrl ? '(set)' : undefined, redisUrl: settings.redisUrl ? '(set)' : undefined },
    durationSeconds: Math.round((performance.now() - runStarted) / 1000),
    ...(generatorUse.wallMs ? { loadGenerator: loadGeneratorShare(info.cores) } : {}),
    subjects,
    ...(oursOnly.length ? { oursOnly } : {}),
    ...(mail ? { mail } : {}),
    targets: evaluateTargets(subjects, settings.rows, mail),
  };
  const markdown = renderMarkdown(data);
  process.stdout.write(`\n${markdown}`);
  await writeResults(data, markdown);
  log(`wrote bench/results/latest.json and latest.md (${data.durationSeconds} s in all)`);
}

/** The load generator's share of the machine during the counted ours-vs-ceiling slices. */
function loadGeneratorShare(cores: number): NonNullable<RunData['loadGenerator']> {
  const share = generatorUse.cpuMs / generatorUse.wallMs / cores;
  log(`load generator (this process): ${(share * 100).toFixed(1)}% of ${cores} cores during the counted slices (${(generatorUse.cpuMs / 1000).toFixed(1)} s CPU in ${(generatorUse.wallMs / 1000).toFixed(1)} s)`);
  return { share: round3(share), cores, cpuSeconds: round2(generatorUse.cpuMs / 1000), wallSeconds: round2(generatorUse.wallMs / 1000) };
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
