/**
 * `npm run bench:memory`: resident memory before, during and after load. Builds and starts ours
 * as `npm run bench` does (`node dist/main.js`, a fresh SQLite database, and PostgreSQL with
 * BENCH_DATABASE_URL), reads its idle RSS, runs a mix of load (client_credentials, full sign-ins
 * with argon2id, code exchanges with refreshes) for BENCH_MEMORY_LOAD_SECONDS, then samples RSS
 * every second for BENCH_MEMORY_AFTER_SECONDS with no load. V8's heap numbers come from the
 * server's /metrics; then the server's CPU per operation (BENCH_MEMORY_CPU_SECONDS of each kind
 * alone). BENCH_NODE_FLAGS (the server's Node options instead of the deployed ones; empty for
 * none) and BENCH_SERVER_ENV (`NAME=value …` added to its environment) are the knobs to compare.
 * Also: BENCH_MEMORY_AFTER_SECONDS (60), BENCH_CONNECTIONS (16), BENCH_MEMORY_ONLY=postgresql,
 * BENCH_MEMORY_NO_BUILD=1 (use dist/ as it is), BENCH_MEMORY_JSON=1 (the raw numbers too),
 * BENCH_MEMORY_SERVER_OUTPUT=1 (the server's last output, e.g. with --trace-gc).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserAgent } from '../test/helpers/user-agent.ts';
import { type AuthorizeOptions, authorize, basicAuth, FORM, fullLogin, redeem, type Target } from './lib/agent.ts';
import { createPostgresDatabase, createSqliteDatabase, type DatabaseKind } from './lib/db.ts';
import { API_IDENTIFIER, API_SCOPES, LOGIN_REQUEST } from './lib/fixture.ts';
import { runHttp, runLoop, type Stats } from './lib/load.ts';
import { buildServer, cleanUpOnExit, halt, METRICS_TOKEN, startOurs } from './lib/ours.ts';
import { treeCpuMs, treeRss } from './lib/proc.ts';
import { argon2FromEnv, checkNode, numberFromEnv, signingAlgFromEnv } from './lib/settings.ts';

const log = (message: string) => console.error(`[bench:memory] ${message}`);
const postgresUrl = process.env.BENCH_DATABASE_URL || undefined;
const loadSeconds = numberFromEnv('BENCH_MEMORY_LOAD_SECONDS', 25, 1);
const afterSeconds = numberFromEnv('BENCH_MEMORY_AFTER_SECONDS', 60, 1);
const connections = Math.floor(numberFromEnv('BENCH_CONNECTIONS', 16, 4));
/** Seconds of each CPU probe after the memory is read (0: none). */
const cpuSeconds = numberFromEnv('BENCH_MEMORY_CPU_SECONDS', 10, 0);
const nodeFlags = process.env.BENCH_NODE_FLAGS ?? '(deployed)';
const serverEnv = parseEnv(process.env.BENCH_SERVER_ENV ?? '');
let runDir = '';

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text.split(/\s+/).filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`BENCH_SERVER_ENV: "${pair}" is not NAME=value`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

const cleanup = cleanUpOnExit(() => runDir);

// ---- what the server reports, and what /proc says

interface Heap {
  /** V8 heap used / committed, external memory (ArrayBuffers, Buffers), new and old space used; MB. */
  used: number;
  total: number;
  external: number;
  newSpace: number;
  /** New space committed (both semi-spaces), MB. */
  newCommitted: number;
  oldSpace: number;
}

const MB = 1024 * 1024;
const round1 = (v: number) => Math.round(v * 10) / 10;

async function readHeap(url: string): Promise<Heap> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  const text = await res.text();
  const value = (re: RegExp) => {
    const m = re.exec(text);
    return m ? round1(Number(m[1]) / MB) : Number.NaN;
  };
  return {
    used: value(/^nodejs_heap_size_used_bytes ([0-9.eE+-]+)$/m),
    total: value(/^nodejs_heap_size_total_bytes ([0-9.eE+-]+)$/m),
    external: value(/^nodejs_external_memory_bytes ([0-9.eE+-]+)$/m),
    newSpace: value(/^nodejs_heap_space_size_used_bytes\{space="new"\} ([0-9.eE+-]+)$/m),
    newCommitted: value(/^nodejs_heap_space_size_total_bytes\{space="new"\} ([0-9.eE+-]+)$/m),
    oldSpace: value(/^nodejs_heap_space_size_used_bytes\{space="old"\} ([0-9.eE+-]+)$/m),
  };
}

/** Where the server's resident memory is (one process, WORKERS=1), MB: anonymous, file-backed, and by kind of mapping. */
interface Resident {
  rss: number;
  anon: number;
  file: number;
  /** The main malloc heap (brk). */
  brk: number;
  /** Every other anonymous mapping: V8's heap, glibc's per-thread malloc arenas, large malloc blocks (mmap), thread stacks. */
  otherAnon: number;
  /** Pages of the SQLite file read through its memory map. */
  sqliteMap: number;
}

function resident(pid: number): Resident {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) / 1024;
  let brk = 0;
  let sqliteMap = 0;
  let anonOther = 0;
  let current = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = head[1] ?? '';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const value = Number(rss[1]) / 1024;
    if (current === '[heap]') brk += value;
    else if (current.endsWith('.db')) sqliteMap += value;
    else if (current === '') anonOther += value;
  }
  return { rss: round1(kb('VmRSS')), anon: round1(kb('RssAnon')), file: round1(kb('RssFile')), brk: round1(brk), otherAnon: round1(anonOther), sqliteMap: round1(sqliteMap) };
}

// ---- the load

const REFRESH_REQUEST: AuthorizeOptions = { scope: 'openid offline_access read', resource: API_IDENTIFIER, prompt: 'consent' };
/** Refreshes made with each refresh token chain (each answer's token is used for the next). */
const REFRESHES_PER_CODE = 4;

async function refresh(target: Target, token: string): Promise<string> {
  const res = await fetch(`${target.url}/token`, {
    method: 'POST',
    headers: { authorization: basicAuth(target), 'content-type': FORM },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, resource: API_IDENTIFIER }),
  });
  const body = (await res.json()) as { refresh_token?: string };
  if (res.status !== 200 || !body.refresh_token) throw new Error(`${target.name}: refresh answered ${res.status}`);
  return body.refresh_token;
}

/**
 * The mix, all at once: client_credentials (autocannon), new browsers signing in with the
 * password (argon2id, consent page, code exchange), and signed-in browsers consenting to
 * offline_access, exchanging the code and refreshing the token a few times.
 */
function clientCredentials(target: Target, connections: number, seconds: number): Promise<Stats> {
  const load = {
    url: `${target.url}/token`,
    method: 'POST',
    headers: { authorization: basicAuth(target), 'content-type': FORM },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: API_IDENTIFIER, scope: API_SCOPES.join(' ') }).toString(),
  };
  return runHttp(load, { connections, seconds });
}

/** A signed-in browser consents to offline_access, the code is exchanged and the refresh token rotated a few times. */
function codeAndRefreshes(target: Target): () => Promise<void> {
  const agents: UserAgent[] = [];
  return async () => {
    const agent = agents.pop() ?? new UserAgent();
    try {
      let token = (await redeem(target, await authorize(target, agent, REFRESH_REQUEST))).refresh_token;
      if (!token) throw new Error(`${target.name}: no refresh token issued`);
      for (let i = 0; i < REFRESHES_PER_CODE; i++) token = await refresh(target, token);
    } finally {
      agents.push(agent);
    }
  };
}

const CODE_AND_REFRESHES = `code + ${REFRESHES_PER_CODE} refreshes`;

async function runMix(target: Target, seconds: number): Promise<Record<string, Stats>> {
  const cc = Math.max(2, Math.round(connections * 0.375));
  const logins = Math.max(1, Math.round(connections * 0.25));
  const refreshers = Math.max(1, connections - cc - logins);
  const [cred, signIns, codeAndRefresh] = await Promise.all([
    clientCredentials(target, cc, seconds),
    runLoop(async () => void (await fullLogin(target, LOGIN_REQUEST)), { workers: logins, seconds }),
    runLoop(codeAndRefreshes(target), { workers: refreshers, seconds }),
  ]);
  return { client_credentials: cred, 'sign-ins (argon2id)': signIns, [CODE_AND_REFRESHES]: codeAndRefresh };
}

/**
 * After the memory is read: the server's CPU per operation with these settings (a flag that saves
 * memory may cost CPU), client_credentials alone, then code + refreshes alone, `seconds` each.
 */
async function cpuPerOperation(target: Target, pid: number, seconds: number): Promise<Record<string, number>> {
  let cpu = treeCpuMs(pid);
  const cred = await clientCredentials(target, connections, seconds);
  const credMs = (treeCpuMs(pid) - cpu) / Math.max(1, cred.ok);
  cpu = treeCpuMs(pid);
  const chains = await runLoop(codeAndRefreshes(target), { workers: connections, seconds });
  const chainMs = (treeCpuMs(pid) - cpu) / Math.max(1, chains.ok);
  return { client_credentials: Math.round(credMs * 100) / 100, [CODE_AND_REFRESHES]: Math.round(chainMs * 100) / 100 };
}

// ---- one run

interface Point {
  label: string;
  at: number;
  res: Resident;
  treeMb: number;
  heap: Heap;
}

interface Run {
  kind: DatabaseKind;
  readyMs: number;
  restartMs: number;
  points: Point[];
  peakMb: number;
  loadavg: [number, number];
  load: Record<string, Stats>;
  /** RSS every second after the load (MB). */
  tail: number[];
  /** Server CPU ms per operation, each kind alone, after the memory was read. */
  cpuMs: Record<string, number>;
  /** The last lines the server wrote (BENCH_MEMORY_SERVER_OUTPUT=1 prints them: --trace-gc and the like). */
  output: string;
}

async function measure(kind: DatabaseKind): Promise<Run> {
  const db = kind === 'sqlite' ? await createSqliteDatabase(runDir, 'memory') : await createPostgresDatabase(postgresUrl!);
  const ours = await startOurs({ label: `ours-${kind}`, db, workers: 1, cwd: runDir, signingAlg: signingAlgFromEnv(), argon2: argon2FromEnv(), extraEnv: serverEnv, log });
  const { pid } = ours.server;
  const { url } = ours.target;
  const started = performance.now();
  const point = async (label: string): Promise<Point> => {
    const heap = await readHeap(url);
    return { label, at: Math.round((performance.now() - started) / 1000), res: resident(pid), treeMb: round1(treeRss(pid) / MB), heap };
  };
  const points: Point[] = [];
  points.push(await point('idle'));
  const load0 = loadavg()[0]!;

  log(`ours-${kind}: load for ${loadSeconds} s (${connections} at once)`);
  let peak = treeRss(pid);
  const sampler = setInterval(() => (peak = Math.max(peak, treeRss(pid))), 250);
  const load = await runMix(ours.target, loadSeconds);
  clearInterval(sampler);
  peak = Math.max(peak, treeRss(pid));
  points.push(await point('end of load'));

  const tail: number[] = [];
  const after = performance.now();
  for (let s = 1; s <= afterSeconds; s++) {
    await sleep(Math.max(0, after + s * 1000 - performance.now()));
    tail.push(round1(treeRss(pid) / MB));
    if (s === 10 || s === 30 || s === afterSeconds) points.push(await point(`+${s} s`));
  }
  const load1 = loadavg()[0]!;
  const cpuMs = cpuSeconds > 0 ? await cpuPerOperation(ours.target, pid, cpuSeconds) : {};
  const output = ours.server.output();
  await halt(ours.server);
  await db.drop();
  return { kind, readyMs: Math.round(ours.firstStartMs), restartMs: Math.round(ours.restartMs), points, peakMb: round1(peak / MB), loadavg: [Math.round(load0 * 100) / 100, Math.round(load1 * 100) / 100], load, tail, cpuMs, output };
}

function report(run: Run): string {
  const idle = run.points[0]!;
  const last = run.points[run.points.length - 1]!;
  const rows = run.points.map(
    (p) =>
      `| ${p.label} | ${p.res.rss} | ${p.res.anon} | ${p.res.file} | ${p.res.brk} | ${p.res.otherAnon} | ${p.res.sqliteMap} | ${p.heap.used} | ${p.heap.total} | ${p.heap.newSpace} / ${p.heap.newCommitted} | ${p.heap.oldSpace} | ${p.heap.external} |`,
  );
  const loads = Object.entries(run.load).map(([name, s]) => `${name} ${s.rps.toFixed(name.startsWith('client') ? 0 : 1)}/s (${s.ok} ok, ${s.failed + s.errors} failed)`);
  return [
    `## ours-${run.kind}, node flags: ${nodeFlags || 'none'}${Object.keys(serverEnv).length ? `, ${process.env.BENCH_SERVER_ENV}` : ''}`,
    '',
    `start→ready ${run.readyMs} ms (fresh database), ${run.restartMs} ms (restart); load average ${run.loadavg[0]} before the load, ${run.loadavg[1]} at the end`,
    `load: ${loads.join('; ')}`,
    ...(Object.keys(run.cpuMs).length ? [`server CPU ms per operation afterwards, each alone for ${cpuSeconds} s: ${Object.entries(run.cpuMs).map(([k, v]) => `${k} ${v}`).join('; ')}`] : []),
    '',
    `**RSS idle ${idle.res.rss} MB, peak ${run.peakMb} MB, +${afterSeconds} s ${last.res.rss} MB: ${(last.res.rss / idle.res.rss).toFixed(2)} × idle** (target ≤ 1.5 ×)`,
    '',
    '| when | RSS | anon | file | malloc brk heap | other anon | SQLite map | V8 heap used | V8 heap committed | new space used / committed | old space used | external |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `RSS each second after the load (MB): ${run.tail.join(' ')}`,
    '',
  ].join('\n');
}

async function main() {
  checkNode();
  runDir = await mkdtemp(join(tmpdir(), 'idp-bench-memory-'));
  if (!process.env.BENCH_MEMORY_NO_BUILD) {
    log('building the server (npm run build)');
    buildServer();
  }
  const kinds: DatabaseKind[] = process.env.BENCH_MEMORY_ONLY === 'postgresql' ? ['postgresql'] : postgresUrl ? ['sqlite', 'postgresql'] : ['sqlite'];
  for (const kind of kinds) {
    if (kind === 'postgresql' && !postgresUrl) throw new Error('BENCH_MEMORY_ONLY=postgresql needs BENCH_DATABASE_URL');
    const run = await measure(kind);
    process.stdout.write(`\n${report(run)}`);
    if (process.env.BENCH_MEMORY_JSON) process.stdout.write(`\n<json>${JSON.stringify({ nodeFlags, serverEnv, ...run, output: undefined })}</json>\n`);
    if (process.env.BENCH_MEMORY_SERVER_OUTPUT) process.stdout.write(`\n<server-output>\n${run.output}\n</server-output>\n`);
  }
}

try {
  await main();
} catch (err) {
  console.error('bench:memory failed:', err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
