import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createdClient, idp } from './helpers/cli.ts';
import { createTestDatabase, TEST_PROVIDER, type TestDatabase } from './helpers/database.ts';
import { startCuttableProxy } from './helpers/proxy.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { captureLog } from './helpers/log.ts';

const { destination: capture, entries: logLines } = captureLog();

describe.runIf(TEST_PROVIDER === 'postgresql')('database outage', () => {
  let database: TestDatabase;
  let proxy: Awaited<ReturnType<typeof startCuttableProxy>>;
  let server: TestServer;
  let client: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    database = await createTestDatabase();
    const url = new URL(database.url);
    proxy = await startCuttableProxy(new URL(database.url));
    url.host = `127.0.0.1:${proxy.port}`;
    server = await startServer({ DATABASE_URL: url.href, LOG_LEVEL: 'info' }, { logDestination: capture });
    client = createdClient(await idp(['clients', 'create', '--name', 'svc', '--grant-type', 'client_credentials', '--scope', '', '--json'], server.env));
  });
  afterAll(async () => {
    await server?.close().catch(() => undefined);
    proxy?.close();
    await database?.drop();
  });

  const tokenRequest = () =>
    fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });

  it('answers 503 with a generic body while the database is unreachable, never lets anyone in, and recovers by itself', async () => {
    expect((await tokenRequest()).status).toBe(200);

    await proxy.cut();
    const during = await tokenRequest();
    expect(during.status).toBe(503);
    expect(during.headers.get('retry-after')).toBe('5');
    const body = await during.text();
    expect(JSON.parse(body)).toEqual({ error: 'temporarily_unavailable', error_description: 'The service is temporarily unavailable. Try again shortly.' });
    expect(body).not.toMatch(/ECONN|prisma|at \//i);
    expect((await fetch(`${server.issuer}/readyz`)).status).toBe(503);
    const adminCall = await fetch(`${server.issuer}/admin/v1/clients`, { headers: { authorization: 'Bearer x.y.z' } });
    expect(adminCall.status).toBe(401);
    expect((await fetch(`${server.issuer}/healthz`)).status).toBe(200);
    // A client this instance has not seen yet must be read from the database (known ones are cached).
    const page = await fetch(`${server.issuer}/authorize?client_id=not-cached-yet&response_type=code&scope=openid`, { redirect: 'manual' });
    expect(page.status).toBe(503);
    expect(await page.text()).toContain('Temporarily unavailable');

    await proxy.restore();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await tokenRequest()).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    expect((await fetch(`${server.issuer}/readyz`)).status).toBe(200);

    // The operator reads one warning when it went away and one line when it came back, not one per request.
    expect(logLines().filter((l) => l.msg.startsWith('database unavailable')).map((l) => l.level)).toEqual([40]);
    expect(logLines().filter((l) => l.msg === 'database available again').map((l) => l.level)).toEqual([30]);
  });
});
