import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idp, seed } from './helpers/cli.ts';
import { createTestDatabase } from './helpers/database.ts';
import { discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { freePort, startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.close());

/** The value of one Prometheus sample, or 0 when absent. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${server.issuer}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `) ? wanted.every((w) => l.includes(w)) : false);
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('health', () => {
  it('answers liveness and readiness with what was checked', async () => {
    expect((await fetch(`${server.issuer}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.issuer}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', keys: 'ok' } });
  });
});

describe('metrics', () => {
  it('counts requests by route, tokens by grant type, logins, refresh-token reuse and database queries', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const m2m = (await idp(['clients', 'create', '--name', 'svc', '--grant-type', 'client_credentials', '--scope', '', '--json'], server.env)).json<{ client_id: string; client_secret: string }>();

    const before = {
      cc: await metric('idp_tokens_issued_total', { grant_type: 'client_credentials' }),
      ok: await metric('idp_logins_total', { method: 'password', result: 'succeeded' }),
      bad: await metric('idp_logins_total', { method: 'password', result: 'failed' }),
      reuse: await metric('idp_refresh_token_reuse_total'),
      token: await metric('idp_http_request_duration_seconds_count', { route: '/token', status_code: '200' }),
    };
    await oidc.clientCredentialsGrant(await discover(server.issuer, m2m.client_id, m2m.client_secret));
    await loginAndExchange(new UserAgent(), config, { login: { email: app.email, password: 'wrong password' } }).catch(() => undefined);
    const { tokens } = await loginAndExchange(new UserAgent(), config, { login: app });
    await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await oidc.refreshTokenGrant(config, tokens.refresh_token!).catch(() => undefined);

    expect(await metric('idp_tokens_issued_total', { grant_type: 'client_credentials' })).toBe(before.cc + 1);
    expect(await metric('idp_tokens_issued_total', { grant_type: 'authorization_code' })).toBeGreaterThanOrEqual(1);
    expect(await metric('idp_logins_total', { method: 'password', result: 'succeeded' })).toBe(before.ok + 1);
    expect(await metric('idp_logins_total', { method: 'password', result: 'failed' })).toBe(before.bad + 1);
    expect(await metric('idp_refresh_token_reuse_total')).toBe(before.reuse + 1);
    // client_credentials, code exchange, refresh (the reused refresh token got a 400).
    expect(await metric('idp_http_request_duration_seconds_count', { route: '/token', status_code: '200' })).toBe(before.token + 3);
    expect(await metric('idp_db_query_duration_seconds_count', { model: 'Client', operation: 'findUnique' })).toBeGreaterThan(0);
    expect(await metric('process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });
});

/** GET on a new connection each time (keep-alive would stick to one worker). */
function getFresh(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** Starts `node src/main.ts` with the given environment and waits until `readyText` has appeared `times` times. */
async function startProcess(extraEnv: Record<string, string>, readyText: string, times = 1) {
  const database = await createTestDatabase();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env, NODE_ENV: 'test', DATABASE_URL: database.url, PORT: String(port), ISSUER: base, LOG_LEVEL: 'info', ...extraEnv };
  const child = spawn(process.execPath, [fileURLToPath(new URL('../src/main.ts', import.meta.url))], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    const check = () => output.split(readyText).length > times && resolve();
    child.stdout.on('data', check);
    void exited.then(() => reject(new Error(`server exited early: ${output}`)));
  });
  return {
    base,
    child,
    exited,
    output: () => output,
    async stop() {
      child.kill('SIGKILL');
      await database.drop();
    },
  };
}

describe('all cores: WORKERS', () => {
  it('serves from every worker, replaces a worker that dies, and stops them all on SIGTERM', async () => {
    const proc = await startProcess({ WORKERS: '2' }, 'identity provider ready', 2);
    try {
      const pids = async (n: number) => new Set(await Promise.all(Array.from({ length: n }, async () => (JSON.parse((await getFresh(`${proc.base}/healthz`)).body) as { pid: number }).pid)));
      let seen = await pids(20);
      for (let i = 0; i < 10 && seen.size < 2; i++) seen = new Set([...seen, ...(await pids(20))]);
      expect(seen.size).toBe(2);
      expect(seen.has(proc.child.pid!)).toBe(false);

      const [victim] = [...seen];
      process.kill(victim!, 'SIGKILL');
      let replaced = false;
      for (let i = 0; i < 100 && !replaced; i++) {
        await new Promise((r) => setTimeout(r, 100));
        replaced = [...(await pids(4).catch(() => new Set<number>()))].some((pid) => !seen.has(pid));
      }
      expect(replaced).toBe(true);
      expect(proc.output()).toContain('worker died; starting another');

      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    } finally {
      await proc.stop();
    }
  });
});

describe('graceful shutdown', () => {
  it('fails readiness on SIGTERM while still serving, lets in-flight requests finish, then exits cleanly', async () => {
    const proc = await startProcess({ SHUTDOWN_DRAIN_SECONDS: '3' }, 'identity provider ready');
    const { base } = proc;
    try {
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const inFlight = Array.from({ length: 20 }, () => fetch(`${base}/.well-known/openid-configuration`).then((r) => r.status));
      proc.child.kill('SIGTERM');
      const draining = await fetch(`${base}/readyz`);
      expect(draining.status).toBe(503);
      expect(await draining.json()).toMatchObject({ status: 'not ready', checks: { lifecycle: 'shutting down' } });
      // Still serving while load balancers take it out of rotation.
      expect((await fetch(`${base}/.well-known/openid-configuration`)).status).toBe(200);
      expect(await Promise.all(inFlight)).toEqual(Array(20).fill(200));
      expect(await proc.exited).toBe(0);
      expect(proc.output()).toContain('"msg":"stopped"');
      await expect(fetch(`${base}/healthz`)).rejects.toThrow();
    } finally {
      await proc.stop();
    }
  });
});
