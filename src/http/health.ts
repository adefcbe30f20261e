import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/index.ts';
import { pendingMigrations } from '../db/migrate.ts';
import type { Metrics } from '../metrics.ts';

export interface Lifecycle {
  /** Set when shutdown begins: readiness fails so that load balancers stop sending traffic. */
  closing: boolean;
}

const withTimeout = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms).unref())]);

/** Liveness, readiness and Prometheus metrics. */
export async function healthRoutes(app: FastifyInstance, deps: { db: Database; metrics: Metrics; lifecycle: Lifecycle; keysLoaded: () => boolean }) {
  const noStore = { 'cache-control': 'no-store' };

  app.get('/healthz', (_req, reply) => reply.headers(noStore).send({ status: 'ok', pid: process.pid }));

  app.get('/readyz', async (_req, reply) => {
    const checks: Record<string, string> = {};
    if (deps.lifecycle.closing) checks.lifecycle = 'shutting down';
    try {
      await withTimeout(deps.db.prisma.$queryRaw`SELECT 1`, 2000);
      checks.database = 'ok';
      const pending = await withTimeout(pendingMigrations(deps.db), 2000);
      checks.migrations = pending.length ? `pending: ${pending.join(', ')}` : 'ok';
    } catch {
      checks.database = 'unavailable';
    }
    checks.keys = deps.keysLoaded() ? 'ok' : 'not loaded';
    const ready = !deps.lifecycle.closing && Object.entries(checks).every(([k, v]) => k === 'lifecycle' || v === 'ok');
    return reply.code(ready ? 200 : 503).headers(noStore).send({ status: ready ? 'ready' : 'not ready', checks });
  });

  app.get('/metrics', async (_req, reply) =>
    reply.headers(noStore).type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
