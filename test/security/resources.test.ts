// Bounded resources: a client cannot hold connections, fill tables or the audit trail at will.
// OWASP API Security Top 10 API4:2023 (unrestricted resource consumption); CWE-400; RFC 9110 §15.5.9.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from '../helpers/seed.ts';
import { authorize, discover, REDIRECT_URI } from '../helpers/flow.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { stored } from '../helpers/stored.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ REQUEST_TIMEOUT_SECONDS: '1', MAX_CONNECTIONS: '4' });
});
afterAll(() => server?.close());

/** Opens a connection; resolves with everything the server sent once it closes it. */
function openConnection(): Promise<{ socket: Socket; closed: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(server.issuer).port), '127.0.0.1');
    let received = '';
    socket.on('data', (d) => (received += d));
    const closed = new Promise<string>((done) => socket.on('close', () => done(received)));
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

/** Writes `text` one character every `ms` milliseconds until the socket closes. */
function trickle(socket: Socket, text: string, ms: number) {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= text.length) return clearInterval(timer);
    socket.write(text[i++]!);
  }, ms);
  socket.on('close', () => clearInterval(timer));
}

describe('connections', () => {
  it.each([
    ['a token request whose body trickles in', 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n', 'grant_type=client_credentials&client_id=x'],
    ['a login post whose body trickles in', 'POST /interaction/abc/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\n', 'email=a%40example.com&password=xxxxxxxxxxxxxxxx'],
    ['a request whose headers trickle in', 'GET /healthz HTTP/1.1\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'],
  ])('SEC-RS-01 %s gets 408 and its connection is closed within the request timeout', async (_name, head, slow) => {
    const { socket, closed } = await openConnection();
    socket.write(head);
    trickle(socket, slow, 150);
    const answer = await closed;
    expect(answer.startsWith('HTTP/1.1 408')).toBe(true);
  });

  it('SEC-RS-02 connections past MAX_CONNECTIONS are closed at once, without an answer; the open ones are still served', async () => {
    const held = await Promise.all(Array.from({ length: 4 }, () => openConnection()));
    const extra = await openConnection();
    expect(await extra.closed).toBe('');
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(await held[0]!.closed).toMatch(/^HTTP\/1\.1 200/);
    for (const c of held.slice(1)) c.socket.destroy();
    await Promise.all(held.slice(1).map((c) => c.closed));
    expect((await fetch(`${server.issuer}/healthz`)).status).toBe(200);
  });
});

describe('sign-ins started by browsers that are not signed in', () => {
  let limited: TestServer;
  let app: Awaited<ReturnType<typeof seed>>;
  beforeAll(async () => {
    limited = await startServer({ INTERACTIONS_PER_MINUTE: '3' });
    app = await seed(limited.env, { redirectUri: REDIRECT_URI });
  });
  afterAll(() => limited?.close());

  const interactions = () => stored(limited).count('Interaction');
  const authorizeUrl = (extra: Record<string, string>) => {
    const url = new URL(`${limited.issuer}/authorize`);
    const params = { client_id: app.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', ...extra };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return url;
  };

  it.each([
    ['state', 2049],
    ['nonce', 2049],
    ['login_hint', 513],
    ['ui_locales', 257],
  ])('SEC-RS-03 an authorization request with a %s of %i characters is refused before anything is stored', async (name, length) => {
    const before = await interactions();
    const res = await fetch(authorizeUrl({ state: 'st', [name]: 'x'.repeat(length) }), { redirect: 'manual' });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toContain(`${name} must be at most`);
    expect(location.href.length).toBeLessThan(3000);
    expect(await interactions()).toBe(before);
  });

  it('SEC-RS-03 a pushed authorization request (PAR) with an oversized state is refused before anything is stored', async () => {
    const pushed = () => stored(limited).count('PushedAuthorizationRequest');
    const before = await pushed();
    const params = Object.fromEntries(authorizeUrl({ state: 'x'.repeat(2049) }).searchParams);
    const res = await fetch(`${limited.issuer}/par`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
    expect(await pushed()).toBe(before);
  });

  it('SEC-RS-04 a client address starts at most INTERACTIONS_PER_MINUTE sign-ins; past that, 429 with Retry-After and nothing more is stored; a signed-in browser is not counted', async () => {
    // One browser signs in first (one sign-in started), and keeps its session.
    const config = await discover(limited.issuer, app.clientId, app.clientSecret);
    const signedIn = new UserAgent();
    await authorize(signedIn, config, { login: app, scope: 'openid' });
    const before = await interactions();
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(authorizeUrl({ state: `s${i}` }), { redirect: 'manual' })).status);
    expect(statuses).toEqual([303, 303, 429, 429]);
    expect(await interactions()).toBe(before + 2);
    const refused = await fetch(authorizeUrl({ state: 'again' }), { redirect: 'manual' });
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(await refused.text()).toContain('Too many sign-ins');
    // The signed-in browser still gets its code without a new sign-in page.
    const silent = await authorize(signedIn, config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(silent.callbackUrl.searchParams.get('code')).toBeTruthy();
  });
});
