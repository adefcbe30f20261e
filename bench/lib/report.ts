import type { Stats } from './load.ts';
import type { QueriesPerRequest } from './metrics.ts';
import { requestsTable, signInNote, signInTable, type SignInStep, type SignInTrace } from './signin.ts';

/** One counted slice of an interleaved scenario on one subject (see measureInterleaved in bench/run.ts). */
export interface SliceResult {
  round: number;
  rps: number;
  ok: number;
  failed: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  cpuMsPerRequest: number;
  loadGeneratorCores?: number;
  /** The pre-minted pool (codes, refresh tokens) ran out: rps is over the time until then. */
  poolExhausted?: boolean;
}

/** Ours ÷ ceiling, round by round (the two slices of a round are seconds apart): the median and the spread. */
export interface RatioSummary {
  median: number;
  min: number;
  max: number;
  rounds: number[];
}

export interface ScenarioResult {
  /**
   * Interleaved scenarios: rps is the median of the counted slices' rates; ok, failed, seconds
   * and the latency percentiles are over all counted slices together.
   */
  stats: Stats;
  /** Peak resident memory of the server's process tree during the measured run (MB). */
  rssMaxMb: number;
  /** CPU time the server's process tree used per successful request during the measured run (ms; all threads). */
  cpuMsPerRequest?: number;
  /** CPU the harness itself (the load generator) used meanwhile, in cores: it shares the machine with the server. */
  loadGeneratorCores?: number;
  /** Ours only: database queries per request, from our /metrics. */
  db?: QueriesPerRequest;
  /** What the ceiling is, when it is not the same request on the bare provider. */
  note?: string;
  /** Interleaved with the ceiling: every counted slice (the warm-up round is left out). */
  slices?: SliceResult[];
  /** Ours only, interleaved: this scenario's rate ÷ the ceiling's, per round. */
  vsCeiling?: RatioSummary;
}

export interface SubjectReport {
  label: string;
  kind: 'ours' | 'ceiling';
  database?: 'sqlite' | 'postgresql';
  /** Ours with EPHEMERAL_STORE=redis: sessions, interactions, codes … in Redis, the rest in `database`. */
  ephemeralStore?: 'redis';
  workers: number;
  /** Start to ready on a fresh database (migrations and key generation included). */
  firstStartMs: number;
  /** Start to ready on the same database again: an ordinary restart. */
  restartMs?: number;
  rssIdleMb: number;
  /** With WORKERS > 1: the supervisor first, then each worker. */
  rssIdleByProcessMb?: number[];
  rssIdleAfterLoadMb?: number;
  scenarios: Record<string, ScenarioResult>;
  /**
   * The token scenarios measured again right before BENCH_ROWS rows were inserted (baseline,
   * so that both sides of the comparison are minutes apart at most) and right after (scenarios).
   */
  scale?: { rows: number; insertSeconds: number; totalRows: number; baseline: Record<string, ScenarioResult>; scenarios: Record<string, ScenarioResult> };
  /** Ours: the statements of one sign-in (the login_flow scenario's flow), request by request, with no other load. */
  signIn?: SignInTrace;
}

export interface Subjects {
  ceiling?: SubjectReport;
  sqlite?: SubjectReport;
  postgresql?: SubjectReport;
  /** Ours on PostgreSQL with the short-lived state in Redis (BENCH_REDIS_URL). */
  postgresqlRedis?: SubjectReport;
  workers2?: SubjectReport;
}

/** Where a subject of ours keeps its state, for the tables' db column: `sqlite`, `postgresql`, `postgresql + redis`. */
const storeOf = (s: SubjectReport) => `${s.database ?? ''}${s.ephemeralStore ? ` + ${s.ephemeralStore}` : ''}`;

/** The same, as a name in the targets: SQLite, PostgreSQL, PostgreSQL + Redis. */
const storeName = (s: SubjectReport) => `${s.database === 'postgresql' ? 'PostgreSQL' : 'SQLite'}${s.ephemeralStore === 'redis' ? ' + Redis' : ''}`;

/** Ours on the protocol scenarios, in the tables' order. */
const oursOf = (subjects: Subjects) => [subjects.sqlite, subjects.postgresql, subjects.postgresqlRedis].filter((s): s is SubjectReport => Boolean(s));

/** One measured window of a mail scenario on one server (the windows of all servers interleave, round by round). */
export interface MailWindow {
  round: number;
  stats: Stats;
  /** The server's CPU per successful request, the work done after the answer included. */
  cpuMsPerRequest: number;
  /** Outbox messages the window's requests wrote. */
  written: number;
}

export interface MailRun {
  database: 'sqlite' | 'postgresql';
  mode: 'up' | 'down' | 'hanging';
  scenario: 'password_reset_request' | 'signup';
  windows: MailWindow[];
}

/** Where every message of one server went. */
export interface MailOutbox {
  database: 'sqlite' | 'postgresql';
  mode: 'up' | 'down' | 'hanging';
  /** Successful requests that must have written a message (one each). */
  expected: number;
  /** Messages in the outbox (any status). */
  written: number;
  sentWhenLoadStopped: number;
  pendingWhenLoadStopped: number;
  sent: number;
  pending: number;
  failed: number;
  /** Messages the SMTP server accepted. */
  received: number;
  /** From the end of the load (up) or of the outage (down, hanging) until nothing was pending; null: not within the wait. */
  emptiedAfterSeconds: number | null;
}

export interface MailReport {
  rounds: number;
  seconds: number;
  runs: MailRun[];
  outbox: MailOutbox[];
}

/** Scenarios measured on ours alone (no ceiling), on a server of their own per database. */
export interface OursOnlyRun {
  database: 'sqlite' | 'postgresql';
  label: string;
  /** Seconds per window (after the warm-up). */
  seconds: number;
  scenarios: Record<string, ScenarioResult>;
  /** One sign-in with an authenticator app, alone (before the load), request by request. */
  totpSignIn?: SignInStep[];
  /** One sign-in with a passkey alone, after two that warm up, before the load, request by request. */
  passkeySignIn?: SignInStep[];
  /** Each console list call once, alone (before the load), with its statements. */
  consoleCalls?: SignInStep[];
}

/** Everything a run measured: what latest.json holds and the tables are made from. */
export interface RunData {
  machine: {
    cpuModel: string;
    cores: number;
    availableParallelism: number;
    memoryGb: number;
    kernel: string;
    node: string;
    date: string;
    commit: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  settings: { seconds: number; warmup: number; connections: number; rows: number; scenarios: readonly string[] } & Record<string, unknown>;
  durationSeconds: number;
  /**
   * The harness (load generator, and the simulated browsers) on the same machine: its own CPU
   * time during the counted ours-vs-ceiling slices ÷ their wall time ÷ cores (the argon2
   * ceiling's slices, where this process is the ceiling, are left out).
   */
  loadGenerator?: { share: number; cores: number; cpuSeconds: number; wallSeconds: number };
  subjects: Subjects;
  oursOnly?: OursOnlyRun[];
  mail?: MailReport;
  targets: TargetResult[];
}

export interface TargetResult {
  target: string;
  required: string;
  measured: string;
  pass: boolean | null;
}

const fmt = (v: number | undefined, digits = 0) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(digits));
const ms = (v: number | undefined) => (v === undefined ? '—' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !b ? undefined : a / b);
const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
export { mb };

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export const SCENARIO_LABELS: Record<string, string> = {
  discovery: 'discovery',
  jwks: 'JWKS',
  client_credentials: 'client_credentials (JWT)',
  authorization_code: 'code exchange',
  refresh_token: 'refresh (rotation)',
  introspection: 'introspection',
  userinfo: 'userinfo',
  login_flow: 'full login flow (flows/s)',
  password_reset_request: 'forgot-password requests',
  signup: 'sign-ups (prompt=create, flows/s)',
  console_lists: 'console list calls (users, clients, APIs, roles, audit in turn)',
  totp_login: 'sign-ins with an authenticator app (TOTP, flows/s)',
  passkey_login: 'sign-ins with a passkey alone (flows/s)',
};

function oursOnlyTable(runs: OursOnlyRun[]): string {
  const rows: string[][] = [];
  for (const run of runs) {
    for (const [name, r] of Object.entries(run.scenarios)) {
      const top = Object.entries(r.db?.byOperation ?? {})
        .slice(0, 6)
        .map(([k, v]) => `${k}×${v}`)
        .join(', ');
      rows.push([SCENARIO_LABELS[name] ?? name, run.database, fmt(r.stats.rps), ms(r.stats.p50), ms(r.stats.p99), fmt(ratio(r.stats.p99, r.stats.p50), 1), ms(r.cpuMsPerRequest), fmt(r.db?.queries, 1), top || '—', String(r.stats.failed + r.stats.errors)]);
    }
  }
  return table(['scenario', 'db', 'req/s', 'p50 ms', 'p99 ms', 'p99/p50', 'CPU ms/req', 'queries/req', 'queries by model.operation, per request', 'failed'], rows);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
};

/** A mail run in one line: requests/s over all its windows, median latencies, CPU per request. */
function mailSummary(run: MailRun) {
  const ok = run.windows.reduce((sum, w) => sum + w.stats.ok, 0);
  const seconds = run.windows.reduce((sum, w) => sum + w.stats.seconds, 0);
  const cpu = run.windows.reduce((sum, w) => sum + w.cpuMsPerRequest * w.stats.ok, 0);
  return {
    rps: seconds ? ok / seconds : undefined,
    p50: median(run.windows.map((w) => w.stats.p50)),
    p99: median(run.windows.map((w) => w.stats.p99)),
    cpuMsPerRequest: ok ? cpu / ok : undefined,
    written: run.windows.reduce((sum, w) => sum + w.written, 0),
    failed: run.windows.reduce((sum, w) => sum + w.stats.failed, 0),
  };
}

/** This run's rate ÷ the same scenario's rate with SMTP up, round by round (the windows compared are seconds apart); the median. */
function mailRatio(report: MailReport, run: MailRun): number | undefined {
  const up = report.runs.find((r) => r.database === run.database && r.scenario === run.scenario && r.mode === 'up');
  if (!up) return undefined;
  const ratios = run.windows.flatMap((w) => {
    const same = up.windows.find((u) => u.round === w.round);
    return same?.stats.rps ? [w.stats.rps / same.stats.rps] : [];
  });
  return ratios.length ? median(ratios) : undefined;
}

function mailTables(report: MailReport): string {
  const runs = report.runs.map((run) => {
    const m = mailSummary(run);
    return [SCENARIO_LABELS[run.scenario] ?? run.scenario, run.database, run.mode, fmt(m.rps), ms(m.p50), ms(m.p99), ms(m.cpuMsPerRequest), fmt(mailRatio(report, run), 2), String(m.written), String(m.failed)];
  });
  const outbox = report.outbox.map((o) => [
    o.database,
    o.mode,
    String(o.expected),
    String(o.written),
    String(o.sentWhenLoadStopped),
    String(o.pendingWhenLoadStopped),
    String(o.sent),
    String(o.pending),
    String(o.failed),
    String(o.received),
    o.emptiedAfterSeconds === null ? 'not yet' : fmt(o.emptiedAfterSeconds, 1),
  ]);
  return [
    table(['scenario', 'db', 'SMTP', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req', '÷ SMTP up', 'messages written', 'failed requests'], runs),
    table(['db', 'SMTP', 'requests that write a message', 'messages in the outbox', 'delivered during the load', 'waiting when the load stopped', 'delivered', 'still waiting', 'failed', 'received by the SMTP server', 'outbox empty after s'], outbox),
  ].join('\n\n');
}

/** Ours ÷ ceiling: the median of the per-round ratios (an older latest.json: the ratio of the two rates). */
const vsCeiling = (o: ScenarioResult | undefined, c: ScenarioResult | undefined) => o?.vsCeiling?.median ?? ratio(o?.stats.rps, c?.stats.rps);
const spread = (r: RatioSummary | undefined) => (r ? `${r.min.toFixed(2)}–${r.max.toFixed(2)}` : '—');

function mainTable(ours: SubjectReport[], ceiling: SubjectReport | undefined, scenarios: readonly string[]): string {
  const rows: string[][] = [];
  for (const name of scenarios) {
    const c = ceiling?.scenarios[name];
    for (const subject of ours) {
      const o = subject.scenarios[name];
      if (!o && !c) continue;
      rows.push([
        SCENARIO_LABELS[name] ?? name,
        storeOf(subject),
        fmt(o?.stats.rps),
        fmt(c?.stats.rps),
        fmt(vsCeiling(o, c), 2),
        spread(o?.vsCeiling),
        ms(o?.cpuMsPerRequest),
        ms(c?.cpuMsPerRequest),
        ms(o?.stats.p50),
        ms(o?.stats.p99),
        fmt(ratio(o?.stats.p99, o?.stats.p50), 1),
        ms(c?.stats.p50),
        ms(c?.stats.p99),
        fmt(ratio(c?.stats.p99, c?.stats.p50), 1),
        `${fmt(o?.loadGeneratorCores, 2)} / ${fmt(c?.loadGeneratorCores, 2)}`,
      ]);
    }
  }
  return table(
    ['scenario', 'db', 'ours req/s', 'ceiling req/s', 'ours ÷ ceiling', 'spread of the rounds', 'ours CPU ms/req', 'ceiling CPU ms/req', 'p50 ms', 'p99 ms', 'p99/p50', 'ceiling p50 ms', 'ceiling p99 ms', 'ceiling p99/p50', 'load generator cores (ours / ceiling)'],
    rows,
  );
}

/** What a reader must know before trusting a rate: slices whose pool ran out, failed requests. */
function mainTableNotes(subjects: SubjectReport[], scenarios: readonly string[]): string[] {
  const notes: string[] = [];
  for (const name of scenarios) {
    for (const subject of subjects) {
      const r = subject.scenarios[name];
      if (!r) continue;
      const who = `${SCENARIO_LABELS[name] ?? name} on ${subject.label}`;
      const exhausted = r.slices?.filter((x) => x.poolExhausted) ?? [];
      if (exhausted.length) notes.push(`${who}: the pool ran out in ${exhausted.length} of ${r.slices!.length} slices (rounds ${exhausted.map((x) => x.round).join(', ')}), after ${exhausted.map((x) => fmt(x.seconds, 1)).join(', ')} s: those rates are over that time.`);
      else if (!r.slices && r.stats.poolExhausted) notes.push(`${who}: the pool ran out after ${fmt(r.stats.seconds, 1)} s.`);
      if (r.stats.failed || r.stats.errors) notes.push(`${who}: ${r.stats.failed} failed responses (${JSON.stringify(r.stats.statusCodes)}), ${r.stats.errors} connection errors.`);
    }
  }
  return notes;
}

function scaleTable(ours: SubjectReport[]): string {
  const rows: string[][] = [];
  for (const subject of ours) {
    if (!subject.scale) continue;
    for (const [name, big] of Object.entries(subject.scale.scenarios)) {
      const empty = subject.scale.baseline[name] ?? subject.scenarios[name];
      rows.push([
        SCENARIO_LABELS[name] ?? name,
        storeOf(subject),
        fmt(empty?.stats.rps),
        fmt(big.stats.rps),
        fmt(ratio(big.stats.rps, empty?.stats.rps), 2),
        ms(empty?.stats.p99),
        ms(big.stats.p99),
        ms(empty?.cpuMsPerRequest),
        ms(big.cpuMsPerRequest),
        fmt(big.db?.queries, 1),
      ]);
    }
  }
  const label = rowsLabel(ours);
  return table(['scenario', 'db', 'before req/s', `${label} req/s`, 'ratio', 'p99 before ms', `p99 ${label} ms`, 'CPU ms/req before', `CPU ms/req ${label}`, 'queries/req'], rows);
}

function rowsLabel(ours: SubjectReport[], fallback = 0): string {
  const rows = ours.find((s) => s.scale)?.scale?.rows ?? fallback;
  return rows >= 1_000_000 ? `${rows / 1_000_000}M rows` : `${rows} rows`;
}

function workersTable(one: SubjectReport | undefined, two: SubjectReport | undefined): string {
  const a = one?.scenarios.client_credentials;
  const b = two?.scenarios.client_credentials;
  const rows = [
    ['1', fmt(a?.stats.rps), ms(a?.stats.p50), ms(a?.stats.p99), ms(a?.cpuMsPerRequest), fmt(a?.loadGeneratorCores, 2), fmt(a?.rssMaxMb, 0), '1.00'],
    ['2', fmt(b?.stats.rps), ms(b?.stats.p50), ms(b?.stats.p99), ms(b?.cpuMsPerRequest), fmt(b?.loadGeneratorCores, 2), fmt(b?.rssMaxMb, 0), fmt(ratio(b?.stats.rps, a?.stats.rps), 2)],
  ];
  return table(['WORKERS', 'client_credentials req/s', 'p50 ms', 'p99 ms', 'server CPU ms/req', 'load generator CPU (cores)', 'RSS under load MB', 'vs WORKERS=1'], rows);
}

function processTable(subjects: SubjectReport[]): string {
  const rows = subjects.map((s) => {
    const peak = Math.max(0, ...[s.scenarios, s.scale?.baseline ?? {}, s.scale?.scenarios ?? {}].flatMap((group) => Object.values(group).map((r) => r.rssMaxMb)));
    return [
      s.label,
      String(s.workers),
      fmt(s.firstStartMs),
      fmt(s.restartMs),
      s.rssIdleByProcessMb && s.rssIdleByProcessMb.length > 1 ? `${fmt(s.rssIdleMb, 0)} (${s.rssIdleByProcessMb.map((v) => fmt(v, 0)).join(' + ')})` : fmt(s.rssIdleMb, 0),
      peak ? fmt(peak, 0) : '—',
      fmt(s.rssIdleAfterLoadMb, 0),
    ];
  });
  return table(['server', 'processes (workers)', 'start→ready ms (fresh db)', 'start→ready ms (restart)', 'RSS idle MB', 'RSS max under load MB', 'RSS idle after load MB'], rows);
}

function dbTable(ours: SubjectReport[], scenarios: readonly string[]): string {
  const rows: string[][] = [];
  for (const name of scenarios) {
    for (const s of ours) {
      const db = s.scenarios[name]?.db;
      if (!db) continue;
      const top = Object.entries(db.byOperation)
        .slice(0, 6)
        .map(([k, v]) => `${k}×${v}`)
        .join(', ');
      rows.push([SCENARIO_LABELS[name] ?? name, storeOf(s), fmt(db.queries, 1), fmt(db.dbMs, 2), top]);
    }
  }
  return table(['scenario', 'db', 'queries/req', 'DB wait ms/req (summed, incl. queueing)', 'queries by model.operation, per request'], rows);
}

function targetsTable(targets: TargetResult[]): string {
  return table(
    ['target', 'required', 'measured', 'result'],
    targets.map((t) => [t.target, t.required, t.measured, t.pass === null ? 'not run' : t.pass ? 'PASS' : 'FAIL']),
  );
}

/** The target for the database statements of one whole sign-in. */
const SIGN_IN_STATEMENTS = 15;

/** The targets of the issue, evaluated on what this run measured. */
export function evaluateTargets(subjects: Subjects, rows: number, mail?: MailReport): TargetResult[] {
  const { ceiling, sqlite, postgresql, postgresqlRedis, workers2 } = subjects;
  const out: TargetResult[] = [];
  const ratioTarget = (target: string, min: number, a: number | undefined, b: number | undefined, what: string) => {
    const r = ratio(a, b);
    out.push({ target, required: `≥ ${min.toFixed(2)}× (${what})`, measured: r === undefined ? '—' : `${r.toFixed(2)}× (${fmt(a)} vs ${fmt(b)})`, pass: r === undefined ? null : r >= min });
  };
  const rps = (s: SubjectReport | undefined, name: string) => s?.scenarios[name]?.stats.rps;
  /** Judged on the median of the per-round ratios; the spread and both median rates are shown. */
  const ceilingTarget = (target: string, min: number, s: SubjectReport | undefined, name: string, what = 'ours ÷ ceiling') => {
    const o = s?.scenarios[name];
    const c = ceiling?.scenarios[name];
    const r = vsCeiling(o, c);
    const detail = [o?.vsCeiling ? `rounds ${spread(o.vsCeiling)}` : '', `${fmt(o?.stats.rps)} vs ${fmt(c?.stats.rps)}`].filter(Boolean).join('; ');
    out.push({
      target,
      required: `≥ ${min.toFixed(2)}× (${what}${o?.vsCeiling ? ', median of the rounds' : ''})`,
      measured: r === undefined ? '—' : `${r.toFixed(2)}× (${detail})`,
      pass: r === undefined ? null : r >= min,
    });
  };

  ceilingTarget('client_credentials, SQLite', 0.9, sqlite, 'client_credentials');
  ceilingTarget('client_credentials, PostgreSQL', 0.8, postgresql, 'client_credentials');
  if (postgresqlRedis) ceilingTarget('client_credentials, PostgreSQL + Redis', 0.8, postgresqlRedis, 'client_credentials');
  ceilingTarget('code exchange, SQLite', 0.7, sqlite, 'authorization_code');
  ceilingTarget('refresh rotation, SQLite', 0.7, sqlite, 'refresh_token');
  ceilingTarget('full login flows/s, SQLite', 0.8, sqlite, 'login_flow', 'flows/s ÷ argon2 verifies/s');

  // p99 ≤ 3 × p50 in every scenario of ours (both databases, empty and with the stored rows).
  const spreads: [string, number][] = [];
  for (const s of [sqlite, postgresql, postgresqlRedis, workers2]) {
    if (!s) continue;
    for (const [name, r] of Object.entries(s.scenarios)) spreads.push([`${name} (${s.label})`, r.stats.p99 / r.stats.p50]);
    for (const [name, r] of Object.entries(s.scale?.baseline ?? {})) spreads.push([`${name} (${s.label}, before rows)`, r.stats.p99 / r.stats.p50]);
    for (const [name, r] of Object.entries(s.scale?.scenarios ?? {})) spreads.push([`${name} (${s.label}, rows)`, r.stats.p99 / r.stats.p50]);
  }
  const worst = spreads.sort((a, b) => b[1] - a[1]);
  const failing = worst.filter(([, v]) => v > 3);
  out.push({
    target: 'p99 ≤ 3 × p50, every scenario (ours)',
    required: 'p99/p50 ≤ 3.0',
    measured: worst.length ? `worst ${worst[0]![1].toFixed(1)} (${worst[0]![0]}); ${failing.length}/${worst.length} above 3` : '—',
    pass: worst.length ? failing.length === 0 : null,
  });

  const scaleRatios: [string, number][] = [];
  for (const s of oursOf(subjects)) {
    for (const [name, r] of Object.entries(s.scale?.scenarios ?? {})) {
      const empty = (s.scale?.baseline[name] ?? s.scenarios[name])?.stats.rps;
      if (empty) scaleRatios.push([`${name} (${storeOf(s)})`, r.stats.rps / empty]);
    }
  }
  scaleRatios.sort((a, b) => a[1] - b[1]);
  out.push({
    target: `${rowsLabel(oursOf(subjects), rows)} vs empty database, token scenarios`,
    required: '≥ 0.90× (each)',
    measured: scaleRatios.length ? `worst ${scaleRatios[0]![1].toFixed(2)}× (${scaleRatios[0]![0]}); ${scaleRatios.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}` : '—',
    pass: scaleRatios.length ? scaleRatios.every(([, v]) => v >= 0.9) : null,
  });

  // WORKERS=2 is measured alone, in one window; WORKERS=1 is ours in the interleaved slices above.
  ratioTarget('WORKERS=2 vs WORKERS=1, client_credentials, SQLite', 1.7, rps(workers2, 'client_credentials'), rps(sqlite, 'client_credentials'), 'WORKERS=2 ÷ WORKERS=1');

  out.push({
    target: 'RSS idle (SQLite, WORKERS=1)',
    required: '< 150 MB',
    measured: sqlite ? `${fmt(sqlite.rssIdleMb, 0)} MB${postgresql ? `; PostgreSQL ${fmt(postgresql.rssIdleMb, 0)} MB` : ''}${postgresqlRedis ? `; PostgreSQL + Redis ${fmt(postgresqlRedis.rssIdleMb, 0)} MB` : ''}${workers2 ? `; WORKERS=2 tree ${fmt(workers2.rssIdleMb, 0)} MB` : ''}` : '—',
    pass: sqlite ? sqlite.rssIdleMb < 150 : null,
  });
  out.push({
    target: 'start to ready (SQLite, restart)',
    required: '< 1500 ms',
    measured: sqlite?.restartMs !== undefined ? `${fmt(sqlite.restartMs)} ms (fresh database: ${fmt(sqlite.firstStartMs)} ms)` : '—',
    pass: sqlite?.restartMs !== undefined ? sqlite.restartMs < 1500 : null,
  });
  const traced = oursOf(subjects).filter((s) => s.signIn);
  out.push({
    target: 'statements per sign-in (login_flow, traced request by request)',
    required: `≤ ${SIGN_IN_STATEMENTS}`,
    measured: traced.length ? traced.map((s) => `${s.signIn!.total} (${storeName(s)}, ${s.signIn!.steps.length} requests)`).join('; ') : '—',
    pass: traced.length ? traced.every((s) => s.signIn!.total <= SIGN_IN_STATEMENTS) : null,
  });
  if (mail) out.push(...mailTargets(mail));
  return out;
}

/** Requests that write mail are not slowed by an SMTP outage, and no message is lost in one. */
function mailTargets(mail: MailReport): TargetResult[] {
  const out: TargetResult[] = [];
  for (const scenario of ['password_reset_request', 'signup'] as const) {
    for (const database of ['sqlite', 'postgresql'] as const) {
      const outages = mail.runs.filter((r) => r.scenario === scenario && r.database === database && r.mode !== 'up');
      if (!outages.length) continue;
      const ratios = outages.map((r) => [r.mode, mailRatio(mail, r)] as const);
      const worst = Math.min(...ratios.map(([, v]) => v ?? 0));
      out.push({
        target: `${SCENARIO_LABELS[scenario]} with SMTP down or hanging, ${database === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`,
        required: '≥ 0.90× (÷ SMTP up, median of rounds)',
        measured: ratios.map(([mode, v]) => `${mode} ${fmt(v, 2)}×`).join(', '),
        pass: worst >= 0.9,
      });
    }
  }
  out.push({
    target: 'no message lost: every request wrote its message; none failed; every sent one arrived',
    required: 'written = requests, failed 0, arrived ≥ sent',
    measured: mail.outbox.map((o) => `${o.database}/${o.mode}: ${o.written}/${o.expected} written, ${o.failed} failed, ${o.received}/${o.sent} arrived`).join('; '),
    pass: mail.outbox.every((o) => o.written === o.expected && o.failed === 0 && o.received >= o.sent),
  });
  return out;
}

export function renderMarkdown(data: RunData): string {
  const { machine: m, settings, subjects } = data;
  const ours = oursOf(subjects);
  const sections = [
    '# Benchmark: ours vs bare oidc-provider (ceiling)',
    `${m.date} · ${m.cpuModel} · ${m.cores} cores · ${m.memoryGb} GB · Node ${m.node} · commit ${m.commit.slice(0, 12)}`,
    data.loadGenerator
      ? `Load generator (the benchmark process, on the same ${data.loadGenerator.cores} cores): ${fmt(data.loadGenerator.share * 100, 1)}% of the machine's CPU during the counted ours-vs-ceiling slices (${fmt(data.loadGenerator.cpuSeconds, 1)} s of CPU in ${fmt(data.loadGenerator.wallSeconds, 1)} s, ${fmt((data.loadGenerator.share * data.loadGenerator.cores), 2)} cores)`
      : 'Load generator share: not recorded',
    (settings.rounds !== undefined
      ? `Ours vs ceiling: ${String(settings.rounds)} rounds of ${String(settings.slice)} s per server after a warm-up round, the order turning each round, every other server paused (SIGSTOP) during a slice; one server at a time (stored rows, WORKERS): ${settings.seconds} s after ${settings.warmup} s warm-up`
      : `${settings.seconds} s per scenario after ${settings.warmup} s warm-up`) +
      ` · ${settings.connections} connections · API access tokens signed with ${String(settings.signingAlg ?? 'RS256')} · whole run ${data.durationSeconds} s · load average at start ${m.loadAverageAtStart.join(' ')}, at end ${m.loadAverageAtEnd.join(' ')}`,
    `## Throughput and latency\n\n${mainTable(ours, subjects.ceiling, settings.scenarios)}\n\n${[
      ...(settings.rounds !== undefined
        ? ['req/s: the median of the counted slices; ours ÷ ceiling: the median over the rounds of ours ÷ the ceiling in the same round, and its spread (min–max); CPU ms/req and p50/p99: over all counted slices.']
        : []),
      `full login flow: ours = complete sign-ins per second (authorize → login with argon2id → consent → token), ceiling = argon2id verifications per second with the same parameters, in the benchmark process. CPU ms/req: the server's process tree (PostgreSQL itself not included${subjects.postgresqlRedis ? ', nor Redis' : ''}). Load generator cores: the benchmark process's CPU ÷ wall time during the slices.`,
      ...mainTableNotes([subjects.ceiling, ...ours].filter((s): s is SubjectReport => Boolean(s)), settings.scenarios),
    ].join('\n\n')}`,
    ...(ours.some((s) => s.scale) ? [`## With stored rows (tokens, codes, sessions, interactions, grants)\n\n${scaleTable(ours)}`] : []),
    ...(subjects.workers2 ? [`## WORKERS (SQLite)\n\n${workersTable(subjects.sqlite, subjects.workers2)}`] : []),
    `## Processes: start-up and memory\n\n${processTable([subjects.ceiling, ...ours, subjects.workers2].filter((s): s is SubjectReport => Boolean(s)))}`,
    `## Database queries per request (ours, from /metrics)\n\n${dbTable(ours, settings.scenarios)}${subjects.postgresqlRedis ? '\n\npostgresql + redis: database statements only; the commands sent to Redis are not counted.' : ''}`,
    ...ours.filter((s) => s.signIn).map((s) => `## Statements per sign-in, request by request (${s.label})\n\n${signInTable(s.signIn!)}\n\n${signInNote(s.signIn!)}${s.ephemeralStore ? ' Database statements only: the commands sent to Redis are not counted.' : ''}`),
    ...(data.oursOnly?.length
      ? [
          `## Ours only (no ceiling): sign-ins with an authenticator app and with a passkey, forgot-password, sign-up, console lists\n\n${oursOnlyTable(data.oursOnly)}\n\nOne window of ${data.oursOnly[0]!.seconds} s per scenario after the warm-up, on a server of its own per database (open sign-up, SMTP on a closed port, a client address per request). A TOTP sign-in is one whole flow (the login_flow's, with the code page after the password), each time as another of the users given an authenticator app beforehand (a code is accepted once per 30-second step). A passkey sign-in is the same flow with "Sign in with a passkey" (a software authenticator in the harness signs the challenge) instead of the password. A sign-up is one whole flow (authorize → sign-up page → form, argon2id hashing included → "check your email" page); a forgot-password request's CPU and queries include the message it writes after answering. The console lists run on the users, audit events and clients the scenarios before them left.`,
          ...data.oursOnly.filter((r) => r.totpSignIn).map((r) => `### Sign-in with an authenticator app, request by request (${r.label})\n\n${requestsTable(r.totpSignIn!)}`),
          ...data.oursOnly.filter((r) => r.passkeySignIn).map((r) => `### Sign-in with a passkey alone, request by request (${r.label})\n\n${requestsTable(r.passkeySignIn!)}`),
          ...data.oursOnly.filter((r) => r.consoleCalls).map((r) => `### Console list calls one by one (${r.label}, statements each)\n\n${requestsTable(r.consoleCalls!)}`),
        ]
      : []),
    ...(data.mail
      ? [
          `## Mail: requests that send email, with the SMTP server up, down (connection refused) and hanging (accepts, never answers)\n\n${mailTables(data.mail)}\n\n${data.mail.rounds} interleaved rounds of ${data.mail.seconds} s per scenario and server; ÷ SMTP up is the median of the rounds' ratios. After the load, the SMTP server of the down and hanging servers starts working (on the same port) and the outbox delivers what waited.`,
        ]
      : []),
    `## Targets\n\n${targetsTable(data.targets)}`,
  ];
  return `${sections.join('\n\n')}\n`;
}
