// What the service says about itself is for its operator: OWASP API Security Top 10 API8:2023
// (security misconfiguration); CWE-200 (exposure of information to an unauthorized actor).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.ts';

const TOKEN = 'metrics-token-0123456789-abcdefghijklmnop';
let withToken: TestServer;
let production: TestServer;
beforeAll(async () => {
  withToken = await startServer({ METRICS_TOKEN: TOKEN });
  production = await startServer({
    NODE_ENV: 'production',
    COOKIE_SECRETS: 'a-cookie-secret-that-is-long-enough-0123456789',
    KEY_ENCRYPTION_SECRET: 'a-key-encryption-secret-that-is-long-enough-01',
    SMTP_URL: 'smtp://127.0.0.1:1',
  });
});
afterAll(async () => {
  await withToken?.close();
  await production?.close();
});

const get = (server: TestServer, path: string, token?: string) => fetch(`${server.issuer}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

describe('metrics and readiness details', () => {
  it('SEC-OB-01 with METRICS_TOKEN, /metrics answers only requests bearing it; /readyz gives its details only to them', async () => {
    for (const token of [undefined, 'wrong', `${TOKEN}x`]) {
      const res = await get(withToken, '/metrics', token);
      expect(res.status).toBe(401);
      expect(await res.text()).not.toContain('idp_');
    }
    const ok = await get(withToken, '/metrics', TOKEN);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('idp_http_request_duration_seconds');

    const anonymous = await get(withToken, '/readyz');
    expect(anonymous.status).toBe(200);
    expect(await anonymous.json()).toEqual({ status: 'ready' });
    expect(await (await get(withToken, '/readyz', TOKEN)).json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', keys: 'ok', ...(withToken.env.REDIS_URL ? { redis: 'ok' } : {}) } });
  });

  it('SEC-OB-02 in production without METRICS_TOKEN, /metrics is not served and /readyz says only ready or not', async () => {
    const metrics = await get(production, '/metrics');
    expect(metrics.status).toBe(403);
    expect(((await metrics.json()) as { error_description: string }).error_description).toContain('METRICS_TOKEN');
    const ready = await get(production, '/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });
});
