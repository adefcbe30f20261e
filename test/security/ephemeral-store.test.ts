import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createdClient, idp } from '../helpers/cli.ts';
import { discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { startCuttableProxy } from '../helpers/proxy.ts';
import { seed } from '../helpers/seed.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { captureLog } from '../helpers/log.ts';

/**
 * With EPHEMERAL_STORE=redis, sessions, interactions and codes are in Redis: without it, nothing
 * that needs them may go ahead (fail closed), and nothing of the outage reaches the person.
 */
const REDIS_URL = process.env.TEST_REDIS_URL;

const { destination: capture, entries: logLines } = captureLog();

describe.runIf(REDIS_URL)('a Redis outage with EPHEMERAL_STORE=redis', () => {
  let proxy: Awaited<ReturnType<typeof startCuttableProxy>>;
  let server: TestServer;
  let config: oidc.Configuration;
  let user: { email: string; password: string };
  let service: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    proxy = await startCuttableProxy(new URL(REDIS_URL!));
    const url = new URL(REDIS_URL!);
    url.host = `127.0.0.1:${proxy.port}`;
    server = await startServer({ REDIS_URL: url.href, REDIS_PREFIX: `test-${randomUUID()}:`, EPHEMERAL_STORE: 'redis', LOG_LEVEL: 'info' }, { logDestination: capture });
    const seeded = await seed({ ...server.env, REDIS_URL: REDIS_URL! }, { redirectUri: REDIRECT_URI });
    user = seeded;
    config = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
    service = createdClient(await idp(['clients', 'create', '--name', 'svc', '--grant-type', 'client_credentials', '--scope', '', '--json'], { ...server.env, REDIS_URL: REDIS_URL! }));
  });
  afterAll(async () => {
    await server?.close().catch(() => undefined);
    proxy?.close();
  });

  const clientCredentials = () =>
    fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${service.clientId}:${service.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
  const authorizeUrl = (extra: Record<string, string> = {}) =>
    oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', ...extra });

  it('SEC-ES-01 a Redis outage lets nobody in: a sign-in answers 503 with Retry-After and a generic page, readiness fails, what needs no Redis goes on, and service comes back without a restart', async () => {
    const signedIn = new UserAgent();
    await loginAndExchange(signedIn, config, { login: user });

    await proxy.cut();
    const page = await new UserAgent().request(authorizeUrl(), { redirect: 'manual' });
    expect(page.status).toBe(503);
    expect(page.headers.get('retry-after')).toBe('5');
    const html = await page.text();
    expect(html).toContain('Temporarily unavailable');
    expect(html).not.toMatch(/ECONN|ioredis|Redis|at \//);
    const ready = await fetch(`${server.issuer}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { checks: Record<string, string> }).checks).toMatchObject({ database: 'ok', redis: 'unavailable' });
    // A browser signed in before the outage gets no code either: its session cannot be checked.
    const silent = await signedIn.request(authorizeUrl({ prompt: 'none' }), { redirect: 'manual' });
    expect(silent.status).toBe(503);
    expect(silent.headers.get('location')).toBeNull();
    // Machine-to-machine tokens need nothing kept in Redis.
    expect((await clientCredentials()).status).toBe(200);

    await proxy.restore();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await fetch(`${server.issuer}/readyz`)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    const { tokens } = await loginAndExchange(new UserAgent(), config, { login: user });
    expect(tokens.access_token).toBeTruthy();

    // One warning when it went away, one line when it came back.
    expect(logLines().filter((l) => l.msg.startsWith('Redis unavailable')).map((l) => l.level)).toEqual([40]);
    expect(logLines().filter((l) => l.msg === 'Redis available again').map((l) => l.level)).toEqual([30]);
  });
});
