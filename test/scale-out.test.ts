import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createdClient, idp } from './helpers/cli.ts';
import { seed } from './helpers/seed.ts';
import { discover, REDIRECT_URI } from './helpers/flow.ts';
import { startInstance, startServer, type Instance, type TestServer } from './helpers/server.ts';
import { csrfToken, formAction, UserAgent } from './helpers/user-agent.ts';

let a: TestServer;
let b: Instance;
let app: Awaited<ReturnType<typeof seed>>;

beforeAll(async () => {
  a = await startServer();
  b = await startInstance(a.env);
  app = await seed(a.env, { redirectUri: REDIRECT_URI });
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

describe('several instances on one database', () => {
  it('completes a login that alternates between two instances at every step, and refreshes on either', async () => {
    const origins = [a.issuer, b.url];
    let hop = 0;
    /** The same URL, on the next instance in turn (a load balancer without affinity). */
    const next = (url: string) => {
      const u = new URL(url);
      const target = new URL(origins[hop++ % 2]!);
      if (u.origin === new URL(a.issuer).origin || u.origin === target.origin || u.origin === new URL(b.url).origin) {
        u.protocol = target.protocol;
        u.host = target.host;
      }
      return u.href;
    };

    const config = await discover(a.issuer, app.clientId, app.clientSecret);
    const verifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const ua = new UserAgent();
    let url = next(
      oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid offline_access',
        prompt: 'consent',
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }).href,
    );
    const seen = new Set<string>();
    let code: string | null = null;
    for (let i = 0; i < 20 && !code; i++) {
      seen.add(new URL(url).origin);
      const res = await ua.request(url);
      if (res.status === 303 || res.status === 302) {
        const location = new URL(res.headers.get('location')!, url).href;
        if (location.startsWith(REDIRECT_URI)) code = new URL(location).searchParams.get('code');
        else url = next(location);
        continue;
      }
      expect(res.status).toBe(200);
      const html = await res.text();
      const fields: Record<string, string> = html.includes('/login"') ? { email: app.email, password: app.password } : {};
      const action = next(new URL(formAction(html, html.includes('/login"') ? '/login' : '/confirm'), url).href);
      const posted = await ua.request(action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(a.issuer).origin },
        body: new URLSearchParams({ _csrf: csrfToken(html), ...fields }),
      });
      expect(posted.status).toBe(303);
      url = next(new URL(posted.headers.get('location')!, action).href);
    }
    expect(code).toBeTruthy();
    expect(seen).toEqual(new Set([new URL(a.issuer).origin, b.url]));

    // The code is redeemed on B, the refresh happens on A, the replay is caught on B.
    const token = async (origin: string, body: Record<string, string>) => {
      const res = await fetch(`${origin}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    const exchanged = await token(b.url, { grant_type: 'authorization_code', code: code!, redirect_uri: REDIRECT_URI, code_verifier: verifier });
    expect(exchanged.status).toBe(200);
    const { payload } = await jwtVerify(exchanged.body.id_token!, createRemoteJWKSet(new URL(`${b.url}/jwks`)), { issuer: a.issuer, audience: app.clientId });
    expect(payload).toMatchObject({ sub: app.userId, nonce });
    const refreshed = await token(a.issuer, { grant_type: 'refresh_token', refresh_token: exchanged.body.refresh_token! });
    expect(refreshed.status).toBe(200);
    const replay = await token(b.url, { grant_type: 'refresh_token', refresh_token: exchanged.body.refresh_token! });
    expect(replay.body.error).toBe('invalid_grant');
    expect((await token(a.issuer, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token! })).body.error).toBe('invalid_grant');
  });

  it('shares signing keys and cookie secrets, and enforces an admin change made through one instance on the other within CONFIG_REFRESH_SECONDS', async () => {
    const [jwksA, jwksB] = await Promise.all([fetch(`${a.issuer}/jwks`).then((r) => r.json()), fetch(`${b.url}/jwks`).then((r) => r.json())]);
    expect(jwksB).toEqual(jwksA);

    const m2m = await idp(['clients', 'create', '--name', 'svc', '--grant-type', 'client_credentials', '--scope', '', '--json'], a.env);
    const { clientId: client_id, clientSecret: client_secret } = createdClient(m2m);
    const onB = async () => {
      const res = await fetch(`${b.url}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${client_id}:${client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, string> };
    };
    expect((await onB()).status).toBe(200);

    // Disabled through the admin API of instance A...
    const ops = await idp(['clients', 'create', '--name', 'ops', '--admin', '--json'], a.env);
    const opsCreds = createdClient(ops);
    const adminToken = (await oidc.clientCredentialsGrant(await discover(a.issuer, opsCreds.clientId, opsCreds.clientSecret), { scope: 'admin' })).access_token;
    const disabled = await fetch(`${a.issuer}/admin/v1/clients/${client_id}/disable`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } });
    expect(disabled.status).toBe(200);
    // ...and refused by instance B, which had the client cached, once it polls the change (1 s by default).
    await expect.poll(async () => (await onB()).status, { timeout: 5000 }).toBe(401);
    expect(await onB()).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    // B accepts A's admin token too: same keys, same database.
    expect((await fetch(`${b.url}/admin/v1/clients/${client_id}`, { headers: { authorization: `Bearer ${adminToken}` } })).status).toBe(200);
  });
});
