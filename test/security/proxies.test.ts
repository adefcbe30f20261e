// Proxies, the Host header and client addresses: RFC 7239 §8.1 (forwarded headers can be forged);
// OpenID Connect Discovery 1.0 §3–4 and RFC 8414 §3 (endpoints belong to the issuer); CWE-348, CWE-644.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { idp } from '../helpers/cli.ts';
import { seed } from '../helpers/seed.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { formAction, UserAgent } from '../helpers/user-agent.ts';
import { stored } from '../helpers/stored.ts';

/** A request with exactly these headers (fetch will not send another Host). */
function raw(url: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: body === undefined ? 'GET' : 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const FORGED = { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };

let oneProxy: TestServer;
let listed: TestServer;
beforeAll(async () => {
  oneProxy = await startServer({ TRUST_PROXY: '1' });
  listed = await startServer({ TRUST_PROXY: '127.0.0.0/8, 10.0.0.0/8' });
});
afterAll(async () => {
  await oneProxy?.close();
  await listed?.close();
});

/** A failed sign-in from a browser whose requests carry `forwardedFor`; the audited address and the throttled ones. */
async function failedLoginFrom(server: TestServer, forwardedFor: string) {
  const app = await seed(server.env, { redirectUri: REDIRECT_URI });
  const config = await discover(server.issuer, app.clientId, app.clientSecret);
  const ua = new UserAgent({ headers: { 'x-forwarded-for': forwardedFor } });
  const started = await authorize(ua, config, { consent: false });
  const html = await started.last.res.text();
  expect((await ua.submit(started.last.url, html, formAction(html, '/login'), { email: app.email, password: 'not the password' })).res.status).toBe(401);
  const prisma = server.current.db.prisma;
  const event = await prisma.auditEvent.findFirstOrThrow({ where: { action: 'login.failed', target: app.userId } });
  const ips = await stored(server).throttleKeys('ip:');
  return { ip: event.ip, ips };
}

describe('client addresses behind proxies', () => {
  it.each([
    ['true', 'choose its own address'],
    ['yes please', 'not an IP address'],
    ['10.0.0.0/33', 'not an IP address'],
  ])('SEC-PX-01 TRUST_PROXY=%s is refused at start with a clear message', async (value, message) => {
    const res = await idp(['migrate'], { ...oneProxy.env, TRUST_PROXY: value });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('TRUST_PROXY');
    expect(res.stderr).toContain(message);
  });

  it('SEC-PX-02 with one trusted proxy, a client that prepends X-Forwarded-For entries cannot choose its address (audit, throttling)', async () => {
    const { ip, ips } = await failedLoginFrom(oneProxy, '6.6.6.6, 203.0.113.7');
    expect(ip).toBe('203.0.113.7');
    expect(ips).toContain('ip:203.0.113.7');
    expect(ips.some((k) => k.includes('6.6.6.6'))).toBe(false);
  });

  it('SEC-PX-03 with trusted proxy addresses, the client is the first hop not added by one of them', async () => {
    const { ip, ips } = await failedLoginFrom(listed, '6.6.6.6, 203.0.113.9, 10.1.2.3');
    expect(ip).toBe('203.0.113.9');
    expect(ips).toContain('ip:203.0.113.9');
    expect(ips.some((k) => k.includes('6.6.6.6') || k.includes('10.1.2.3'))).toBe(false);
  });

  it('SEC-PX-04 the provider\'s own events see the same address as the pages (refresh-token reuse in the audit trail)', async () => {
    const app = await seed(oneProxy.env, { redirectUri: REDIRECT_URI });
    const config = await discover(oneProxy.issuer, app.clientId, app.clientSecret);
    const { tokens } = await loginAndExchange(new UserAgent(), config, { login: app });
    const refresh = () =>
      fetch(`${oneProxy.issuer}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '6.6.6.6, 198.51.100.4' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }),
      });
    expect((await refresh()).status).toBe(200);
    expect((await refresh()).status).toBe(400);
    // The provider's event is recorded beside its answer, not before it.
    const reuse = await vi.waitFor(() => oneProxy.current.db.prisma.auditEvent.findFirstOrThrow({ where: { action: 'refresh_token.reuse_detected', actor: `client:${app.clientId}` } }));
    expect(reuse.ip).toBe('198.51.100.4');
  });
});

describe('the Host header', () => {
  it.each([
    ['/.well-known/openid-configuration'],
    ['/.well-known/oauth-authorization-server'],
  ])('SEC-PX-05 %s advertises the issuer\'s endpoints whatever Host and X-Forwarded-Host say, and may be cached', async (path) => {
    for (const server of [oneProxy, listed]) {
      const res = await raw(`${server.issuer}${path}`, FORGED);
      expect(res.status).toBe(200);
      expect(res.body).not.toContain('evil.example');
      const doc = JSON.parse(res.body) as Record<string, unknown>;
      const urls = Object.entries(doc).filter(([k, v]) => typeof v === 'string' && (k.endsWith('_endpoint') || k === 'jwks_uri'));
      expect(urls.length).toBeGreaterThan(5);
      for (const [, url] of urls) expect(String(url).startsWith(`${server.issuer}/`)).toBe(true);
      expect(res.headers['cache-control']).toMatch(/^public, max-age=\d+$/);
    }
  });

  it('SEC-PX-06 registration_client_uri and the authorization redirect are built from the issuer, not the Host header', async () => {
    const iat = (await idp(['clients', 'initial-access-token', 'create', '--json'], oneProxy.env)).json<{ initialAccessToken: string }>().initialAccessToken;
    const registered = await raw(
      `${oneProxy.issuer}/register`,
      { ...FORGED, authorization: `Bearer ${iat}`, 'content-type': 'application/json' },
      JSON.stringify({ client_name: 'dyn', redirect_uris: ['https://app.example.com/cb'] }),
    );
    expect(registered.status).toBe(201);
    expect((JSON.parse(registered.body) as { registration_client_uri: string }).registration_client_uri.startsWith(`${oneProxy.issuer}/register/`)).toBe(true);

    const app = await seed(oneProxy.env, { redirectUri: REDIRECT_URI });
    const url = new URL(`${oneProxy.issuer}/authorize`);
    const query = { client_id: app.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', state: 's', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' };
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const started = await raw(url.href, FORGED);
    expect(started.status).toBe(303);
    expect(String(started.headers.location)).not.toContain('evil.example');
  });
});
