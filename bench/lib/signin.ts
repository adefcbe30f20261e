/**
 * The statements of one sign-in, request by request: a full sign-in (the login_flow scenario's
 * flow) with nothing else running, reading our /metrics query counters before and after each
 * HTTP request.
 */
import { fullLogin, type AuthorizeOptions, type RequestHook, type Target } from './agent.ts';
import { readQueryCounts, type QueryCounts } from './metrics.ts';

export interface SignInStep {
  /** Method and path without the query, identifiers replaced: `GET /interaction/:uid`. */
  request: string;
  status: number;
  statements: number;
  /** model.operation → statements, most first. */
  byOperation: Record<string, number>;
}

export interface SignInTrace {
  /** The scenario's authorization request (scope, resource, prompt). */
  request: AuthorizeOptions;
  /** The traced sign-in with the fewest statements. */
  steps: SignInStep[];
  total: number;
  /** Every traced sign-in's total, in order. */
  totals: number[];
  /** Sign-ins made before tracing (warm-up), not counted. */
  warmup: number;
}

/** Identifiers in a path (interaction uids, resume ids) become `:uid`. */
function routeOf(method: string, url: string): string {
  const path = new URL(url).pathname
    .split('/')
    .map((segment) => (segment.length >= 16 && /^[\w-]+$/.test(segment) ? ':uid' : segment))
    .join('/');
  return `${method} ${path}`;
}

const NO_BODY = new Set([101, 204, 205, 304]);

function difference(before: QueryCounts, after: QueryCounts): { statements: number; byOperation: Record<string, number> } {
  const rows: [string, number][] = [];
  for (const [key, a] of after) {
    const count = a.count - (before.get(key)?.count ?? 0);
    if (count > 0) rows.push([key, count]);
  }
  rows.sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]));
  return { statements: rows.reduce((sum, [, n]) => sum + n, 0), byOperation: Object.fromEntries(rows) };
}

/**
 * A request hook that reads the server's query counters before and after each request (the
 * answer is read whole in between) and adds a step to `steps` for it.
 */
export function tracingHook(target: Target, metricsToken: string, steps: SignInStep[], route: (method: string, url: string) => string = routeOf): RequestHook {
  return async (method, url, send) => {
    const before = await readQueryCounts(target.url, metricsToken);
    const res = await send();
    const body = await res.arrayBuffer();
    const after = await readQueryCounts(target.url, metricsToken);
    steps.push({ request: route(method, url), status: res.status, ...difference(before, after) });
    return new Response(NO_BODY.has(res.status) ? null : body, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

/** One sign-in of a new browser, with the statements of each request. */
async function traceOneSignIn(target: Target, metricsToken: string, request: AuthorizeOptions): Promise<SignInStep[]> {
  const steps: SignInStep[] = [];
  const hook = tracingHook(target, metricsToken, steps);
  const { tokens } = await fullLogin(target, request, hook);
  if (!tokens.id_token) throw new Error(`${target.name}: the traced sign-in got no ID token`);
  return steps;
}

/** `warmup` sign-ins, then `count` traced ones, one after the other. */
export async function traceSignIns(target: Target, metricsToken: string, request: AuthorizeOptions, opts: { warmup?: number; count?: number } = {}): Promise<SignInTrace> {
  const warmup = opts.warmup ?? 0;
  for (let i = 0; i < warmup; i++) await fullLogin(target, request);
  const traces: SignInStep[][] = [];
  for (let i = 0; i < (opts.count ?? 3); i++) traces.push(await traceOneSignIn(target, metricsToken, request));
  const totalOf = (steps: SignInStep[]) => steps.reduce((sum, s) => sum + s.statements, 0);
  const totals = traces.map(totalOf);
  const steps = traces.reduce((best, t) => (totalOf(t) < totalOf(best) ? t : best));
  return { request, steps, total: totalOf(steps), totals, warmup };
}

/** The per-request table (markdown), with a total line. */
export function signInTable(trace: SignInTrace): string {
  return requestsTable(trace.steps);
}

/** Requests and their statements (markdown), with a total line. */
export function requestsTable(steps: SignInStep[]): string {
  const total = steps.reduce((sum, s) => sum + s.statements, 0);
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  const ops = (byOperation: Record<string, number>) =>
    Object.entries(byOperation)
      .map(([k, n]) => (n > 1 ? `${k} ×${n}` : k))
      .join(', ') || '—';
  const all: Record<string, number> = {};
  for (const step of steps) for (const [k, n] of Object.entries(step.byOperation)) all[k] = (all[k] ?? 0) + n;
  const sorted = Object.fromEntries(Object.entries(all).sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0])));
  return [
    line(['#', 'request', 'status', 'statements', 'model.operation']),
    line(['---', '---', '---', '---', '---']),
    ...steps.map((s, i) => line([i + 1, `\`${s.request}\``, s.status, s.statements, ops(s.byOperation)])),
    line(['', `**total** (${steps.length} requests)`, '', `**${total}**`, ops(sorted)]),
  ].join('\n');
}

/** One sentence on how the trace was taken. */
export function signInNote(trace: SignInTrace): string {
  const { scope, resource, prompt } = trace.request;
  const same = trace.totals.every((t) => t === trace.total);
  return (
    `One sign-in of a new browser (scope \`${scope}\`${resource ? `, resource \`${resource}\`` : ''}${prompt ? `, prompt=${prompt}` : ''}), alone on the server, after ${trace.warmup} untraced sign-ins; ` +
    `/metrics read before and after each request. ${trace.totals.length} traced sign-ins made ${trace.totals.join(', ')} statements${same ? '' : ' (they differ: the sign-in with the fewest is shown)'}.`
  );
}
