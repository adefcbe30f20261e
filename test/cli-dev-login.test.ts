import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createdClient, idp } from './helpers/cli.ts';
import { seed } from './helpers/seed.ts';
import { freePort, startServer, type TestServer } from './helpers/server.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';

const BIN = fileURLToPath(new URL('../bin/idp.js', import.meta.url));
const API = 'https://api.example.com';

let server: TestServer;
let port: number;
let redirectUri: string;
let confidential: Awaited<ReturnType<typeof seed>>;
let secret: string;
let publicClient: Awaited<ReturnType<typeof seed>>;
const running = new Set<ChildProcess>();

beforeAll(async () => {
  server = await startServer();
  port = await freePort();
  redirectUri = `http://127.0.0.1:${port}/callback`;
  confidential = await seed(server.env, { redirectUri });
  publicClient = await seed(server.env, { redirectUri, public: true });
  secret = confidential.clientSecret!;
});
afterEach(() => {
  for (const child of running) child.kill();
  running.clear();
});
afterAll(async () => {
  await server.close();
});

interface Run {
  /** The authorization address, as soon as the command has printed it. */
  url: Promise<string>;
  done: Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * Runs `idp dev login` in a child process with the server's environment (ISSUER, PORT, ...):
 * it prints the address to open on standard error while it waits for the redirect.
 */
function devLogin(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, [BIN, 'dev', 'login', '--no-open', ...(args.includes('--port') ? [] : ['--port', String(port)]), ...args], {
    env: { ...process.env, ...server.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  let found: (url: string) => void;
  const url = new Promise<string>((resolve) => (found = resolve));
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => {
    stderr += d;
    const line = stderr.split('\n').find((l) => l.startsWith(`${server.issuer}/authorize?`));
    if (line) found(line);
  });
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      running.delete(child);
      found('');
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
  return { url, done };
}

/** The last line of standard error, the CLI's `{error, error_description}` with --json. */
const errorOf = (stderr: string) => JSON.parse(stderr.trim().split('\n').at(-1)!) as { error: string; error_description: string };

/**
 * Signs in through the real pages, as a browser would, until the identity provider redirects to
 * the command's loopback address; then loads that address, which the command answers.
 */
async function browse(url: string, user: { email: string; password: string }, consent: 'allow' | 'deny' = 'allow') {
  expect(url).toMatch(/^http/);
  const target = new URL(url).searchParams.get('redirect_uri')!;
  const ua = new UserAgent();
  let step = await ua.follow(url, target);
  const login = await step.res.text();
  expect(login).toContain('Sign in');
  step = await ua.submit(step.url, login, formAction(login, '/login'), { email: user.email, password: user.password }, target);
  if (!step.url.startsWith(target)) {
    const html = await step.res.text();
    expect(html).toContain('Allow access');
    step = await ua.submit(step.url, html, formAction(html, consent === 'allow' ? '/confirm' : '/abort'), {}, target);
  }
  expect(step.url.startsWith(target)).toBe(true);
  const page = await fetch(step.url);
  return { status: page.status, text: await page.text() };
}

interface Printed {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
  id_token: string;
  refresh_token?: string;
  id_token_claims: Record<string, unknown>;
}

describe('idp dev login', () => {
  it('signs in a confidential client (secret from IDP_CLIENT_SECRET) and prints tokens whose ID token is the user’s', async () => {
    const run = devLogin(['--client', confidential.clientId, '--json'], { IDP_CLIENT_SECRET: secret });
    const url = new URL(await run.url);
    // The address the command built: PKCE S256, state, nonce, the loopback redirect URI, no secret.
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ client_id: confidential.clientId, redirect_uri: redirectUri, response_type: 'code', code_challenge_method: 'S256', scope: 'openid email' });
    expect(url.searchParams.get('state')).toBeTruthy();
    expect(url.searchParams.get('nonce')).toBeTruthy();
    const page = await browse(url.href, confidential);
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/close this tab/);

    const res = await run.done;
    expect(res.code).toBe(0);
    expect(res.stderr).not.toContain(secret);
    const out = JSON.parse(res.stdout) as Printed;
    expect(out).toMatchObject({ token_type: 'Bearer', scope: 'openid email', expires_in: expect.any(Number) });
    expect(decodeJwt(out.id_token).sub).toBe(confidential.userId);
    expect(out.id_token_claims).toMatchObject({ sub: confidential.userId, aud: confidential.clientId, iss: server.issuer, nonce: url.searchParams.get('nonce') });
    expect(res.stdout).not.toContain(secret);

    // Without --resource, the access token is the one /userinfo takes.
    const userinfo = await fetch(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${out.access_token}` } });
    expect(userinfo.status).toBe(200);
    expect(await userinfo.json()).toMatchObject({ sub: confidential.userId, email: confidential.email });
  });

  it('prints readable lines without --json, with a refresh token for offline_access asked with --prompt consent', async () => {
    const run = devLogin(['--client', confidential.clientId, '--client-secret', secret, '--scope', 'openid email offline_access', '--prompt', 'consent']);
    const page = await browse(await run.url, confidential);
    expect(page.status).toBe(200);
    const res = await run.done;
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^access_token: \S+$/m);
    expect(res.stdout).toMatch(/^refresh_token: \S+$/m);
    expect(res.stdout).toMatch(/^id_token_claims:\n( {2}.+\n)* {2}sub: /m);
    expect(res.stdout).toContain(`  sub: ${confidential.userId}`);
  });

  it('with --resource, a public client gets a JWT access token (at+jwt) for the API, which /userinfo refuses', async () => {
    const run = devLogin(['--client', publicClient.clientId, '--issuer', server.issuer, '--scope', 'openid read', '--resource', API, '--json']);
    const page = await browse(await run.url, publicClient);
    expect(page.status).toBe(200);
    const res = await run.done;
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout) as Printed;
    expect(out.id_token_claims.sub).toBe(publicClient.userId);
    expect(decodeProtectedHeader(out.access_token).typ).toBe('at+jwt');
    const { payload } = await jwtVerify(out.access_token, createRemoteJWKSet(new URL(`${server.issuer}/jwks`)), { issuer: server.issuer, audience: API, typ: 'at+jwt' });
    expect(payload).toMatchObject({ sub: publicClient.userId, client_id: publicClient.clientId, scope: 'read' });
    const userinfo = await fetch(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${out.access_token}` } });
    expect(userinfo.status).toBe(401);
  });

  it('exits non-zero with access_denied when the user refuses consent, and tells the browser', async () => {
    const run = devLogin(['--client', confidential.clientId, '--prompt', 'consent', '--json'], { IDP_CLIENT_SECRET: secret });
    const page = await browse(await run.url, confidential, 'deny');
    expect(page.status).toBe(400);
    expect(page.text).toContain('access_denied');
    const res = await run.done;
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    const err = errorOf(res.stderr);
    expect(err.error).toBe('access_denied');
    // The provider's own words, in parentheses.
    expect(err.error_description).toMatch(/^the authorization endpoint answered access_denied \(.+\)$/);
  });

  it('refuses an unknown client at once, before any browser is involved', async () => {
    const res = await devLogin(['--client', 'no-such-client', '--json']).done;
    expect(res.code).toBe(1);
    expect(res.stderr).not.toContain('/authorize?');
    const err = errorOf(res.stderr);
    expect(err.error).toBe('invalid_client');
    expect(err.error_description).toMatch(/--client/);
  });

  it('refuses a port whose redirect URI the client has not registered, naming the URI to register', async () => {
    const other = await freePort();
    const res = await devLogin(['--client', publicClient.clientId, '--port', String(other), '--json']).done;
    expect(res.code).toBe(1);
    const err = errorOf(res.stderr);
    expect(err.error).toBe('invalid_request');
    expect(err.error_description).toMatch(/redirect_uri did not match/);
    expect(err.error_description).toContain(`the client must have http://127.0.0.1:${other}/callback among its redirect URIs`);
  });

  it('signs in on any free port (--port 0) with a native client registered through `idp clients create`', async () => {
    const created = createdClient(
      await idp(['clients', 'create', '--name', 'Terminal', '--public', '--application-type', 'native', '--redirect-uri', 'http://127.0.0.1/callback', '--json'], server.env),
    );
    const run = devLogin(['--client', created.clientId, '--port', '0', '--json']);
    const url = new URL(await run.url);
    const used = new URL(url.searchParams.get('redirect_uri')!);
    expect(used.port).not.toBe('');
    expect(used.pathname).toBe('/callback');
    expect((await browse(url.href, publicClient)).status).toBe(200);
    const res = await run.done;
    expect(res.code).toBe(0);
    expect((JSON.parse(res.stdout) as Printed).id_token_claims.sub).toBe(publicClient.userId);
  });

  it('refuses a redirect with the wrong state and keeps waiting for the real one', async () => {
    const run = devLogin(['--client', publicClient.clientId, '--json']);
    const url = new URL(await run.url);
    const forged = await fetch(`${redirectUri}?code=forged&state=not-the-one&iss=${encodeURIComponent(server.issuer)}`);
    expect(forged.status).toBe(400);
    expect(await forged.text()).toMatch(/state does not match/);
    const missing = await fetch(`${redirectUri}?code=forged`);
    expect(missing.status).toBe(400);

    const page = await browse(url.href, publicClient);
    expect(page.status).toBe(200);
    const res = await run.done;
    expect(res.code).toBe(0);
    expect((JSON.parse(res.stdout) as Printed).id_token_claims.sub).toBe(publicClient.userId);
  });

  it('refuses a redirect from another issuer (RFC 9207) without redeeming its code', async () => {
    const run = devLogin(['--client', publicClient.clientId, '--json']);
    const state = new URL(await run.url).searchParams.get('state')!;
    const mixedUp = await fetch(`${redirectUri}?code=whatever&state=${encodeURIComponent(state)}&iss=${encodeURIComponent('https://other.example.com')}`);
    expect(mixedUp.status).toBe(400);
    expect(await mixedUp.text()).toMatch(/Sign-in failed/);
    const res = await run.done;
    expect(res.code).toBe(1);
    expect(errorOf(res.stderr).error).toBe('invalid_issuer');
  });

  it('names the issuer to use when the discovery document names another', async () => {
    const res = await devLogin(['--client', publicClient.clientId, '--json'], { ISSUER: server.issuer.replace('127.0.0.1', 'localhost') }).done;
    expect(res.code).toBe(1);
    const err = errorOf(res.stderr);
    expect(err.error).toBe('invalid_issuer');
    expect(err.error_description).toContain(`--issuer ${server.issuer}`);
  });
});
