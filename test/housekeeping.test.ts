import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArtifactStore } from '../src/artifacts/store.ts';
import { openDatabase } from '../src/db/index.ts';
import { createBackground } from '../src/background.ts';
import { createLeases } from '../src/housekeeping/leases.ts';
import { createHousekeeping } from '../src/housekeeping/service.ts';
import { createLogger } from '../src/logger.ts';
import { idp } from './helpers/cli.ts';
import { seed } from './helpers/seed.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.close());

describe('housekeeping', () => {
  it('purges expired artifacts, grants and old audit events, and keeps everything live', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const { tokens } = await loginAndExchange(ua, config, { login: app });

    const prisma = server.current.db.prisma;
    const past = new Date(Date.now() - 60_000);
    for (let i = 0; i < 5; i++) {
      await prisma.oidcPayload.create({ data: { model: 'AccessToken', id: `expired-${i}`, payload: '{}', expiresAt: past } });
    }
    await prisma.grant.create({ data: { id: 'expired-grant', accountId: app.userId, clientId: app.clientId, payload: '{}', expiresAt: past } });
    await prisma.auditEvent.create({ data: { id: 'ancient', actor: 'cli:test', action: 'test.old', at: new Date(Date.now() - 400 * 24 * 3600 * 1000) } });
    const liveBefore = await prisma.oidcPayload.count({ where: { expiresAt: { gte: new Date() } } });

    const purged = await idp(['purge', '--json'], server.env);
    expect(purged.code, purged.stderr).toBe(0);
    expect(purged.json()).toMatchObject({ artifacts: 5, grants: 1, auditEvents: 1 });

    expect(await prisma.oidcPayload.count({ where: { id: { startsWith: 'expired-' } } })).toBe(0);
    expect(await prisma.grant.count({ where: { id: 'expired-grant' } })).toBe(0);
    expect(await prisma.oidcPayload.count({ where: { expiresAt: { gte: new Date() } } })).toBe(liveBefore);
    // Live things still work: the refresh token, and the browser session.
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).resolves.toBeDefined();
    const silent = await authorize(ua, config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(silent.callbackUrl.searchParams.get('code')).toBeTruthy();
  });

  it('runs once across instances: only the holder of the lease purges', async () => {
    const dbs = await Promise.all([openDatabase(server.databaseUrl), openDatabase(server.databaseUrl), openDatabase(server.databaseUrl)]);
    try {
      const instances = dbs.map((db) => {
        const housekeeping = createHousekeeping({ artifacts: createArtifactStore(db.prisma), audit: { purge: async () => 0 }, throttle: { purge: async () => 0 }, mail: { purge: async () => 0 }, accountTokens: { purge: async () => 0 } }, { auditRetentionDays: 90, mailRetentionDays: 30 });
        return createBackground([{ name: 'purge', everySeconds: 600, once: true, run: () => housekeeping.purge() }], { leases: createLeases(db.prisma), log: createLogger('silent') });
      });
      const results = await Promise.all(instances.map((b) => b.runNow('purge')));
      expect(results.filter(Boolean)).toHaveLength(1);
      // The same holder renews its lease; the others still wait.
      const winner = results.indexOf(true);
      expect(await instances[winner]!.runNow('purge')).toBe(true);
      expect(await instances[(winner + 1) % 3]!.runNow('purge')).toBe(false);
      // When the lease runs out (aged here rather than waited for), another instance takes over.
      await dbs[0]!.prisma.lease.update({ where: { name: 'purge' }, data: { expiresAt: new Date(Date.now() - 1000) } });
      expect(await instances[(winner + 1) % 3]!.runNow('purge')).toBe(true);
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
  });

  it('is the app’s own background work: it purges by itself every PURGE_INTERVAL_SECONDS, and stops when the app closes', async () => {
    const purging = await startServer({ PURGE_INTERVAL_SECONDS: '1' });
    try {
      const prisma = purging.current.db.prisma;
      const expired = () => prisma.oidcPayload.count({ where: { id: { startsWith: 'stale-' } } });
      const stale = (i: number) => ({ model: 'AccessToken', id: `stale-${i}`, payload: '{}', expiresAt: new Date(Date.now() - 60_000) });
      await prisma.oidcPayload.create({ data: stale(1) });
      for (let i = 0; i < 100 && (await expired()) > 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(await expired()).toBe(0);

      // Closed, the app leaves the database alone; another process still finds the row later.
      await purging.current.app.close();
      const db = await openDatabase(purging.databaseUrl);
      try {
        await db.prisma.oidcPayload.create({ data: stale(2) });
        await new Promise((r) => setTimeout(r, 2500));
        expect(await db.prisma.oidcPayload.count({ where: { id: 'stale-2' } })).toBe(1);
      } finally {
        await db.close();
      }
    } finally {
      await purging.close().catch(() => {});
    }
  });
});
