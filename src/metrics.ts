import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one app instance (its own registry, so several apps can share a process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Histogram({
      name: 'idp_http_request_duration_seconds',
      help: 'HTTP requests by method, route and status (count and latency)',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    tokensIssued: new Counter({ name: 'idp_tokens_issued_total', help: 'Successful token endpoint responses by grant type', labelNames: ['grant_type'], registers: [registry] }),
    logins: new Counter({ name: 'idp_logins_total', help: 'Sign-in attempts by method and result', labelNames: ['method', 'result'], registers: [registry] }),
    refreshTokenReuse: new Counter({ name: 'idp_refresh_token_reuse_total', help: 'Rotated-out refresh tokens presented again (the grant is revoked)', registers: [registry] }),
    dbQueries: new Histogram({
      name: 'idp_db_query_duration_seconds',
      help: 'Database queries by model and operation (count and latency)',
      labelNames: ['model', 'operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
