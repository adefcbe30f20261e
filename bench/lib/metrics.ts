/** Our service's Prometheus counters of database queries, by model and operation. */
export type QueryCounts = Map<string, { count: number; seconds: number }>;

const LINE = /^idp_db_query_duration_seconds_(count|sum)\{([^}]*)\}\s+([0-9.eE+-]+)$/;

export async function readQueryCounts(url: string, token: string): Promise<QueryCounts> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  const counts: QueryCounts = new Map();
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    const key = `${labels.model ?? '?'}.${labels.operation ?? '?'}`;
    const entry = counts.get(key) ?? { count: 0, seconds: 0 };
    if (m[1] === 'count') entry.count += Number(m[3]);
    else entry.seconds += Number(m[3]);
    counts.set(key, entry);
  }
  return counts;
}

export interface QueriesPerRequest {
  /** Database queries per request, all models. */
  queries: number;
  /** Time spent waiting on them per request (ms, summed; includes queueing for the connection, so under load it can exceed the latency). */
  dbMs: number;
  /** Per model.operation, queries per request, largest first. */
  byOperation: Record<string, number>;
}

/** The queries made between two readings, per request served in between. */
export function perRequest(before: QueryCounts, after: QueryCounts, requests: number): QueriesPerRequest {
  const byOperation: [string, number][] = [];
  let queries = 0;
  let seconds = 0;
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, seconds: 0 };
    const count = a.count - b.count;
    if (count <= 0) continue;
    queries += count;
    seconds += a.seconds - b.seconds;
    byOperation.push([key, count / requests]);
  }
  byOperation.sort((x, y) => y[1] - x[1]);
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    queries: round(queries / Math.max(1, requests)),
    dbMs: round((seconds * 1000) / Math.max(1, requests)),
    // Background work (the key-refresh timer) shows up as a few queries in a whole run: leave it out.
    byOperation: Object.fromEntries(byOperation.filter(([, v]) => v >= 0.01).map(([k, v]) => [k, round(v)])),
  };
}

/** Adds the queries made between two readings to `into` (the counted slices of a scenario, summed). */
export function addQueries(into: QueryCounts, before: QueryCounts, after: QueryCounts): void {
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, seconds: 0 };
    const sum = into.get(key) ?? { count: 0, seconds: 0 };
    into.set(key, { count: sum.count + a.count - b.count, seconds: sum.seconds + a.seconds - b.seconds });
  }
}
