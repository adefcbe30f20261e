import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createdClient, idp } from './helpers/cli.ts';
import { seed } from './helpers/seed.ts';
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
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', keys: 'ok', ...(server.env.REDIS_URL ? { redis: 'ok' } : {}) } });
  });
});

describe('metrics', () => {
  it('counts requests by route, tokens by grant type, logins, refresh-token reuse and database queries', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const m2m = createdClient(await idp(['clients', 'create', '--name', 'svc', '--grant-type', 'client_credentials', '--scope', '', '--json'], server.env));

    const before = {
      cc: await metric('idp_tokens_issued_total', { grant_type: 'client_credentials' }),
      ok: await metric('idp_logins_total', { method: 'password', result: 'succeeded' }),
      bad: await metric('idp_logins_total', { method: 'password', result: 'failed' }),
      reuse: await metric('idp_refresh_token_reuse_total'),
      token: await metric('idp_http_request_duration_seconds_count', { route: '/token', status_code: '200' }),
    };
    await oidc.clientCredentialsGrant(await discover(server.issuer, m2m.clientId, m2m.clientSecret));
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

/** Starts `entry` (the sources' `src/main.ts` unless told) with the given environment and waits until `readyText` has appeared `times` times. */
async function startProcess(extraEnv: Record<string, string>, readyText: string, times = 1, entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))) {
  const database = await createTestDatabase();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { ...(process.env as Record<string, string>), NODE_ENV: 'test', DATABASE_URL: database.url, PORT: String(port), ISSUER: base, LOG_LEVEL: 'info', ...extraEnv };
  const child = spawn(process.execPath, [entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
    env,
    child,
    exited,
    output: () => output,
    async stop() {
      child.kill('SIGKILL');
      await database.drop();
    },
  };
}

describe('the production build', () => {
  it('npm run build compiles a server that migrates, renders its pages and issues tokens without the TypeScript sources', async () => {
    // Built as `npm run build` builds dist/, into a sibling folder of its own (the same depth, so
    // views/, public/ and prisma/ resolve the same way) so that it cannot race another run.
    const outDir = fileURLToPath(new URL(`../.build-test-${process.pid}/`, import.meta.url));
    const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
    const build = spawnSync(process.execPath, [tsc, '-p', fileURLToPath(new URL('../tsconfig.build.json', import.meta.url)), '--outDir', outDir], { encoding: 'utf8' });
    try {
      expect(build.status, build.stdout + build.stderr).toBe(0);
      // Every import in the build points at built files, none back at the TypeScript sources.
      const built = readdirSync(outDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
      expect(built).toContain('main.js');
      const tsImports = built.filter((f) => /(from|import\()\s*['"][^'"]+\.ts['"]/.test(readFileSync(`${outDir}${f}`, 'utf8')));
      expect(tsImports).toEqual([]);
      // On a Node too old for it (this machine's own, when it has one), one line and exit code 1, not a crash.
      const systemNode = spawnSync('node', ['--version'], { encoding: 'utf8', env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
      if (systemNode.status === 0 && Number(systemNode.stdout.slice(1).split('.')[0]) < 22) {
        const old = spawnSync('node', [`${outDir}main.js`], { encoding: 'utf8', env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
        expect(old.status).toBe(1);
        expect(old.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^idp: Node v?20\.[\d.]+ is too old: the server needs Node 22\.12 or newer/)]);
      }
      const proc = await startProcess({}, 'identity provider ready', 1, `${outDir}main.js`);
      try {
        const app = await seed(proc.env, { redirectUri: REDIRECT_URI });
        const config = await discover(proc.base, app.clientId, app.clientSecret);
        const css = await fetch(`${proc.base}/assets/style.css`);
        expect(css.status).toBe(200);
        const { tokens } = await loginAndExchange(new UserAgent(), config, { login: app });
        expect(tokens.claims()?.sub).toBe(app.userId);
      } finally {
        await proc.stop();
      }
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  }, 90_000);
});

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
    // Three processes start (and one more after the kill) on a machine busy with the rest of the suite.
  }, 90_000);
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
