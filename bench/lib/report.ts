import type { Stats } from './load.ts';
import type { QueriesPerRequest } from './metrics.ts';

export interface ScenarioResult {
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
}

export interface SubjectReport {
  label: string;
  kind: 'ours' | 'ceiling';
  database?: 'sqlite' | 'postgresql';
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
}

export interface Subjects {
  ceiling?: SubjectReport;
  sqlite?: SubjectReport;
  postgresql?: SubjectReport;
  workers2?: SubjectReport;
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
  subjects: Subjects;
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
};

function mainTable(ours: SubjectReport[], ceiling: SubjectReport | undefined, scenarios: readonly string[]): string {
  const rows: string[][] = [];
  for (const name of scenarios) {
    const c = ceiling?.scenarios[name];
    for (const subject of ours) {
      const o = subject.scenarios[name];
      if (!o && !c) continue;
      rows.push([
        SCENARIO_LABELS[name] ?? name,
        subject.database ?? '',
        fmt(o?.stats.rps),
        ms(o?.stats.p50),
        ms(o?.stats.p99),
        fmt(ratio(o?.stats.p99, o?.stats.p50), 1),
        fmt(c?.stats.rps),
        ms(c?.stats.p50),
        ms(c?.stats.p99),
        fmt(ratio(c?.stats.p99, c?.stats.p50), 1),
        fmt(ratio(o?.stats.rps, c?.stats.rps), 2),
        ms(o?.cpuMsPerRequest),
        ms(c?.cpuMsPerRequest),
      ]);
    }
  }
  return table(
    ['scenario', 'db', 'ours req/s', 'p50 ms', 'p99 ms', 'p99/p50', 'ceiling req/s', 'ceiling p50 ms', 'ceiling p99 ms', 'ceiling p99/p50', 'ours ÷ ceiling', 'ours CPU ms/req', 'ceiling CPU ms/req'],
    rows,
  );
}

function scaleTable(ours: SubjectReport[]): string {
  const rows: string[][] = [];
  for (const subject of ours) {
    if (!subject.scale) continue;
    for (const [name, big] of Object.entries(subject.scale.scenarios)) {
      const empty = subject.scale.baseline[name] ?? subject.scenarios[name];
      rows.push([
        SCENARIO_LABELS[name] ?? name,
        subject.database ?? '',
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
      rows.push([SCENARIO_LABELS[name] ?? name, s.database ?? '', fmt(db.queries, 1), fmt(db.dbMs, 2), top]);
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

/** The targets of the issue, evaluated on what this run measured. */
export function evaluateTargets(subjects: Subjects, rows: number): TargetResult[] {
  const { ceiling, sqlite, postgresql, workers2 } = subjects;
  const out: TargetResult[] = [];
  const ratioTarget = (target: string, min: number, a: number | undefined, b: number | undefined, what = 'ours ÷ ceiling') => {
    const r = ratio(a, b);
    out.push({ target, required: `≥ ${min.toFixed(2)}× (${what})`, measured: r === undefined ? '—' : `${r.toFixed(2)}× (${fmt(a)} vs ${fmt(b)})`, pass: r === undefined ? null : r >= min });
  };
  const rps = (s: SubjectReport | undefined, name: string) => s?.scenarios[name]?.stats.rps;

  ratioTarget('client_credentials, SQLite', 0.9, rps(sqlite, 'client_credentials'), rps(ceiling, 'client_credentials'));
  ratioTarget('client_credentials, PostgreSQL', 0.8, rps(postgresql, 'client_credentials'), rps(ceiling, 'client_credentials'));
  ratioTarget('code exchange, SQLite', 0.7, rps(sqlite, 'authorization_code'), rps(ceiling, 'authorization_code'));
  ratioTarget('refresh rotation, SQLite', 0.7, rps(sqlite, 'refresh_token'), rps(ceiling, 'refresh_token'));
  ratioTarget('full login flows/s, SQLite', 0.8, rps(sqlite, 'login_flow'), rps(ceiling, 'login_flow'), 'flows/s ÷ argon2 verifies/s');

  // p99 ≤ 3 × p50 in every scenario of ours (both databases, empty and with the stored rows).
  const spreads: [string, number][] = [];
  for (const s of [sqlite, postgresql, workers2]) {
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
  for (const s of [sqlite, postgresql]) {
    for (const [name, r] of Object.entries(s?.scale?.scenarios ?? {})) {
      const empty = (s?.scale?.baseline[name] ?? s?.scenarios[name])?.stats.rps;
      if (empty) scaleRatios.push([`${name} (${s!.database})`, r.stats.rps / empty]);
    }
  }
  scaleRatios.sort((a, b) => a[1] - b[1]);
  out.push({
    target: `${rowsLabel([sqlite, postgresql].filter((s): s is SubjectReport => Boolean(s)), rows)} vs empty database, token scenarios`,
    required: '≥ 0.90× (each)',
    measured: scaleRatios.length ? `worst ${scaleRatios[0]![1].toFixed(2)}× (${scaleRatios[0]![0]}); ${scaleRatios.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}` : '—',
    pass: scaleRatios.length ? scaleRatios.every(([, v]) => v >= 0.9) : null,
  });

  ratioTarget('WORKERS=2 vs WORKERS=1, client_credentials, SQLite', 1.7, rps(workers2, 'client_credentials'), rps(sqlite, 'client_credentials'), 'WORKERS=2 ÷ WORKERS=1');

  out.push({
    target: 'RSS idle (SQLite, WORKERS=1)',
    required: '< 150 MB',
    measured: sqlite ? `${fmt(sqlite.rssIdleMb, 0)} MB${postgresql ? `; PostgreSQL ${fmt(postgresql.rssIdleMb, 0)} MB` : ''}${workers2 ? `; WORKERS=2 tree ${fmt(workers2.rssIdleMb, 0)} MB` : ''}` : '—',
    pass: sqlite ? sqlite.rssIdleMb < 150 : null,
  });
  out.push({
    target: 'start to ready (SQLite, restart)',
    required: '< 1500 ms',
    measured: sqlite?.restartMs !== undefined ? `${fmt(sqlite.restartMs)} ms (fresh database: ${fmt(sqlite.firstStartMs)} ms)` : '—',
    pass: sqlite?.restartMs !== undefined ? sqlite.restartMs < 1500 : null,
  });
  return out;
}

export function renderMarkdown(data: RunData): string {
  const { machine: m, settings, subjects } = data;
  const ours = [subjects.sqlite, subjects.postgresql].filter((s): s is SubjectReport => Boolean(s));
  const sections = [
    '# Benchmark: ours vs bare oidc-provider (ceiling)',
    `${m.date} · ${m.cpuModel} · ${m.cores} cores · ${m.memoryGb} GB · Node ${m.node} · commit ${m.commit.slice(0, 12)}`,
    `${settings.connections} connections, ${settings.seconds} s per scenario after ${settings.warmup} s warm-up · API access tokens signed with ${String(settings.signingAlg ?? 'RS256')} · whole run ${data.durationSeconds} s · load average at start ${m.loadAverageAtStart.join(' ')}, at end ${m.loadAverageAtEnd.join(' ')}`,
    `## Throughput and latency\n\n${mainTable(ours, subjects.ceiling, settings.scenarios)}\n\nfull login flow: ours = complete sign-ins per second (authorize → login with argon2id → consent → token), ceiling = argon2id verifications per second with the same parameters. CPU ms/req: the server's process tree (PostgreSQL itself not included).`,
    ...(ours.some((s) => s.scale) ? [`## With stored rows (tokens, codes, sessions, interactions, grants)\n\n${scaleTable(ours)}`] : []),
    ...(subjects.workers2 ? [`## WORKERS (SQLite)\n\n${workersTable(subjects.sqlite, subjects.workers2)}`] : []),
    `## Processes: start-up and memory\n\n${processTable([subjects.ceiling, ...ours, subjects.workers2].filter((s): s is SubjectReport => Boolean(s)))}`,
    `## Database queries per request (ours, from /metrics)\n\n${dbTable(ours, settings.scenarios)}`,
    `## Targets\n\n${targetsTable(data.targets)}`,
  ];
  return `${sections.join('\n\n')}\n`;
}
