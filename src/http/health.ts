import type { FastifyInstance, FastifyRequest } from 'fastify';
import { secretEquals } from '../lib/crypto.ts';
import type { Metrics } from '../metrics.ts';

export interface Lifecycle {
  /** Set when shutdown begins: readiness fails so that load balancers stop sending traffic. */
  closing: boolean;
}

const withTimeout = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms).unref())]);

/**
 * Liveness, readiness and Prometheus metrics. What the service reports about itself (metrics,
 * the details of readiness) is for the operator: with METRICS_TOKEN, only for requests bearing
 * it; without it, open outside production and closed in production.
 */
export async function healthRoutes(
  app: FastifyInstance,
  deps: {
    /** The database answers, and which migrations it still lacks. */
    database: { ping(): Promise<void>; pendingMigrations(): Promise<string[]> };
    /** Redis, when configured (REDIS_URL): the login throttle, and with EPHEMERAL_STORE=redis sessions and codes. */
    redis: { ping(): Promise<void> } | undefined;
    metrics: Metrics;
    lifecycle: Lifecycle;
    keysLoaded: () => boolean;
    metricsToken: string | undefined;
    production: boolean;
  },
) {
  const noStore = { 'cache-control': 'no-store' };
  const operator = (req: FastifyRequest) => {
    if (!deps.metricsToken) return !deps.production;
    const presented = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    return presented !== undefined && secretEquals(presented, deps.metricsToken);
  };

  app.get('/healthz', (_req, reply) => reply.headers(noStore).send({ status: 'ok', pid: process.pid }));

  app.get('/readyz', async (req, reply) => {
    const checks: Record<string, string> = {};
    if (deps.lifecycle.closing) checks.lifecycle = 'shutting down';
    try {
      await withTimeout(deps.database.ping(), 2000);
      checks.database = 'ok';
      const pending = await withTimeout(deps.database.pendingMigrations(), 2000);
      checks.migrations = pending.length ? `pending: ${pending.join(', ')}` : 'ok';
    } catch {
      checks.database = 'unavailable';
    }
    if (deps.redis) {
      try {
        await withTimeout(deps.redis.ping(), 2000);
        checks.redis = 'ok';
      } catch {
        checks.redis = 'unavailable';
      }
    }
    checks.keys = deps.keysLoaded() ? 'ok' : 'not loaded';
    const ready = !deps.lifecycle.closing && Object.entries(checks).every(([k, v]) => k === 'lifecycle' || v === 'ok');
    return reply
      .code(ready ? 200 : 503)
      .headers(noStore)
      .send({ status: ready ? 'ready' : 'not ready', ...(operator(req) ? { checks } : {}) });
  });

  app.get('/metrics', async (req, reply) => {
    if (!operator(req)) {
      const description = deps.metricsToken ? 'send the METRICS_TOKEN as a bearer token' : 'metrics are not served in production without METRICS_TOKEN';
      return reply
        .code(deps.metricsToken ? 401 : 403)
        .headers(noStore)
        .header('www-authenticate', 'Bearer realm="metrics"')
        .send({ error: deps.metricsToken ? 'unauthorized' : 'forbidden', error_description: description });
    }
    return reply.headers(noStore).type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
}
