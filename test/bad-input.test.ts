import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idp, seed } from './helpers/cli.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
let seeded: Awaited<ReturnType<typeof seed>>;
let config: oidc.Configuration;

beforeAll(async () => {
  server = await startServer();
  seeded = await seed(server.env, { redirectUri: REDIRECT_URI });
  config = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
});
afterAll(() => server?.close());

/** The authorization URL a well-behaved client would build, with some parameters overridden. */
function authorizationUrl(overrides: Record<string, string | null> = {}) {
  const url = new URL('/authorize', server.issuer);
  const params: Record<string, string | null> = {
    client_id: seeded.clientId,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    state: 'st',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
    ...overrides,
  };
  for (const [k, v] of Object.entries(params)) if (v !== null) url.searchParams.set(k, v);
  return url;
}

async function tokenRequest(body: Record<string, string>, auth: 'good' | 'bad' | 'none' = 'good') {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth !== 'none') {
    const secret = auth === 'good' ? seeded.clientSecret! : `${seeded.clientSecret}x`;
    headers.authorization = `Basic ${Buffer.from(`${seeded.clientId}:${secret}`).toString('base64')}`;
  }
  const res = await fetch(new URL('/token', server.issuer), { method: 'POST', headers, body: new URLSearchParams(body) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, string> };
}

describe('login form', () => {
  /** The login page after a failed attempt, with the per-request CSRF token blanked out. */
  async function failedLogin(email: string, password: string) {
    const ua = new UserAgent();
    const start = await ua.follow(authorizationUrl(), REDIRECT_URI);
    const html = await start.res.text();
    const { res } = await ua.submit(start.url, html, formAction(html, '/login'), { email, password });
    const page = (await res.text()).replace(/name="_csrf" value="[^"]+"/g, '').replace(/\/interaction\/[^/"]+/g, '/interaction/UID');
    return { status: res.status, page, cookies: [...ua.cookies.keys()] };
  }

  it('answers a wrong password exactly as it answers an unknown email', async () => {
    const wrongPassword = await failedLogin('someone@example.com', 'not the password');
    await idp(['users', 'create', '--email', 'someone@example.com', '--password', 'the right password', '--json'], server.env);
    const wrongPasswordKnown = await failedLogin('someone@example.com', 'not the password');
    const unknown = await failedLogin('someone@example.com', 'not the password');
    expect(wrongPasswordKnown.status).toBe(401);
    expect(wrongPasswordKnown.page).toContain('Incorrect email or password.');
    expect(unknown.status).toBe(wrongPasswordKnown.status);
    expect(unknown.page).toBe(wrongPasswordKnown.page);
    expect(wrongPassword.page).toBe(wrongPasswordKnown.page);
    // No session was established.
    expect(wrongPasswordKnown.cookies).not.toContain('_session');
  });

  it('refuses a form post without a valid CSRF token or from another origin, and nothing is signed in', async () => {
    const ua = new UserAgent();
    const start = await ua.follow(authorizationUrl(), REDIRECT_URI);
    const html = await start.res.text();
    const action = new URL(formAction(html, '/login'), start.url);
    const post = (fields: Record<string, string>, origin = server.issuer, site = 'same-origin') =>
      ua.request(action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': site },
        body: new URLSearchParams({ email: seeded.email, password: seeded.password, ...fields }),
      });
    expect((await post({})).status).toBe(403);
    expect((await post({ _csrf: 'forged' })).status).toBe(403);
    const token = /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
    const fromElsewhere = await post({ _csrf: token }, 'https://evil.example');
    expect(fromElsewhere.status).toBe(403);
    expect(await fromElsewhere.text()).toContain('This form cannot be accepted');
    // A cross-site post whose Origin was hidden by a no-referrer policy is still recognised.
    expect((await post({ _csrf: token }, 'null', 'cross-site')).status).toBe(403);
    expect(ua.cookies.has('_session')).toBe(false);
  });

  it('shows a friendly page for an unknown or expired interaction', async () => {
    const res = await fetch(new URL('/interaction/does-not-exist', server.issuer));
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('This sign-in has expired');
    expect(html).not.toMatch(/at .*\.ts:\d+/);
  });

  it('treats an oversized login form as a bad request, never a 500', async () => {
    const ua = new UserAgent();
    const start = await ua.follow(authorizationUrl(), REDIRECT_URI);
    const html = await start.res.text();
    const big = await ua.submit(start.url, html, formAction(html, '/login'), { email: seeded.email, password: 'x'.repeat(200_000) });
    expect(big.res.status).toBe(413);
    const long = await ua.submit(start.url, html, formAction(html, '/login'), { email: seeded.email, password: 'x'.repeat(5000) });
    expect(long.res.status).toBe(401);
  });
});

describe('authorization request', () => {
  it.each([
    ['a trailing slash', `${REDIRECT_URI}/`],
    ['an added query', `${REDIRECT_URI}?next=/`],
    ['another path', 'http://127.0.0.1:8765/callback2'],
    ['another port', 'http://127.0.0.1:8766/callback'],
    ['another scheme', 'https://127.0.0.1:8765/callback'],
    ['another host case', 'http://LOCALHOST:8765/callback'],
    ['a fragment', `${REDIRECT_URI}#x`],
    ['userinfo', 'http://user@127.0.0.1:8765/callback'],
    ['percent-encoding', 'http://127.0.0.1:8765/%63allback'],
  ])('shows an error page, never a redirect, for a redirect_uri with %s', async (_name, redirectUri) => {
    const res = await fetch(authorizationUrl({ redirect_uri: redirectUri }), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('redirect_uri');
  });

  it.each([
    ['missing', { code_challenge: null, code_challenge_method: null }],
    ['plain', { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }],
    ['malformed', { code_challenge: 'short' }],
  ])('refuses PKCE %s', async (_name, overrides) => {
    const res = await fetch(authorizationUrl(overrides), { redirect: 'manual' });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('state')).toBe('st');
  });

  it.each([['token'], ['id_token'], ['code id_token'], ['code token']])('refuses response_type=%s (no implicit or hybrid)', async (responseType) => {
    const res = await fetch(authorizationUrl({ response_type: responseType }), { redirect: 'manual' });
    expect([303, 400]).toContain(res.status);
    const location = res.headers.get('location');
    if (location) expect(new URL(location).searchParams.get('error') ?? new URLSearchParams(new URL(location).hash.slice(1)).get('error')).toBe('unsupported_response_type');
    expect(location ?? '').not.toContain('access_token=');
  });

  it('refuses an unregistered resource', async () => {
    const res = await fetch(authorizationUrl({ resource: 'https://unknown.example.com' }), { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!).searchParams.get('error')).toBe('invalid_target');
  });

  it('refuses repeated and oversized parameters with a 4xx', async () => {
    const repeated = authorizationUrl();
    repeated.searchParams.append('scope', 'email');
    const r1 = await fetch(repeated, { redirect: 'manual' });
    expect(r1.status).toBeGreaterThanOrEqual(300);
    expect(r1.status).toBeLessThan(500);
    if (r1.status === 303) expect(new URL(r1.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');

    const huge = await fetch(authorizationUrl({ state: 'x'.repeat(100_000) }), { redirect: 'manual' });
    expect(huge.status).toBeGreaterThanOrEqual(400);
    expect(huge.status).toBeLessThan(500);
  });
});

describe('token endpoint', () => {
  it('answers a wrong client secret with 401 invalid_client', async () => {
    const res = await tokenRequest({ grant_type: 'client_credentials' }, 'bad');
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('refuses a wrong PKCE verifier', async () => {
    const { callbackUrl } = await authorize(new UserAgent(), config, { login: seeded, scope: 'openid' });
    const res = await tokenRequest({
      grant_type: 'authorization_code',
      code: callbackUrl.searchParams.get('code')!,
      redirect_uri: REDIRECT_URI,
      code_verifier: oidc.randomPKCECodeVerifier(),
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('refuses a replayed code and revokes what the first exchange issued', async () => {
    const ua = new UserAgent();
    const { callbackUrl, codeVerifier, tokens } = await loginAndExchange(ua, config, { login: seeded });
    const replay = await tokenRequest({ grant_type: 'authorization_code', code: callbackUrl.searchParams.get('code')!, redirect_uri: REDIRECT_URI, code_verifier: codeVerifier });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(config, tokens.access_token, seeded.userId)).rejects.toBeDefined();
  });

  it('lets exactly one of many parallel redemptions of a code succeed', async () => {
    const { callbackUrl, codeVerifier } = await authorize(new UserAgent(), config, { login: seeded, scope: 'openid offline_access' });
    const body = { grant_type: 'authorization_code', code: callbackUrl.searchParams.get('code')!, redirect_uri: REDIRECT_URI, code_verifier: codeVerifier };
    const results = await Promise.all(Array.from({ length: 8 }, () => tokenRequest(body)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 200)) expect(r.body.error).toBe('invalid_grant');
  });

  it('refuses an expired code', async () => {
    const { callbackUrl, codeVerifier } = await authorize(new UserAgent(), config, { login: seeded, scope: 'openid' });
    // Age the stored code past its lifetime instead of waiting for it.
    await server.current.db.prisma.oidcPayload.updateMany({ where: { model: 'AuthorizationCode' }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const res = await tokenRequest({ grant_type: 'authorization_code', code: callbackUrl.searchParams.get('code')!, redirect_uri: REDIRECT_URI, code_verifier: codeVerifier });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('refuses an unregistered resource for client_credentials', async () => {
    const created = await idp(['clients', 'create', '--name', 'm2m', '--grant-type', 'client_credentials', '--scope', 'read', '--json'], server.env);
    const { client_id, client_secret } = created.json<{ client_id: string; client_secret: string }>();
    const m2m = await discover(server.issuer, client_id, client_secret);
    await expect(oidc.clientCredentialsGrant(m2m, { resource: 'https://unknown.example.com' })).rejects.toMatchObject({ error: 'invalid_target' });
  });

  it.each([
    ['password', { grant_type: 'password', username: 'a', password: 'b' }, 'unsupported_grant_type'],
    ['implicit', { grant_type: 'implicit' }, 'unsupported_grant_type'],
    ['no grant_type', {}, 'invalid_request'],
    ['a garbage code', { grant_type: 'authorization_code', code: 'nope', redirect_uri: REDIRECT_URI, code_verifier: 'x'.repeat(43) }, 'invalid_grant'],
    ['a garbage refresh token', { grant_type: 'refresh_token', refresh_token: 'nope' }, 'invalid_grant'],
  ])('refuses %s with 400', async (_name, body, error) => {
    const res = await tokenRequest(body as Record<string, string>);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe(error);
  });

  it('refuses an oversized or malformed body with a 4xx, never a 500', async () => {
    const huge = await fetch(new URL('/token', server.issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&pad=${'x'.repeat(2_000_000)}`,
    });
    expect(huge.status).toBe(413);
    const json = await fetch(new URL('/token', server.issuer), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' });
    expect(json.status).toBeGreaterThanOrEqual(400);
    expect(json.status).toBeLessThan(500);
  });
});

describe('CORS for browser apps', () => {
  const SPA = 'http://127.0.0.1:8765';

  const preflight = (path: string, origin: string) =>
    fetch(new URL(path, server.issuer), {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });

  it('answers preflights from a registered origin and ignores every other origin', async () => {
    for (const path of ['/token', '/userinfo', '/token/revocation']) {
      const ok = await preflight(path, SPA);
      expect(ok.headers.get('access-control-allow-origin'), path).toBe(SPA);
      const evil = await preflight(path, 'https://evil.example');
      expect(evil.headers.get('access-control-allow-origin'), path).toBeNull();
    }
  });

  it('lets a public SPA client redeem its code from its own origin, and no one else', async () => {
    const spa = await seed(server.env, { redirectUri: `${SPA}/spa-callback`, public: true });
    const spaConfig = await discover(server.issuer, spa.clientId);
    const ua = new UserAgent();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(spaConfig, {
      redirect_uri: `${SPA}/spa-callback`,
      scope: 'openid offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    let step = await ua.follow(url, SPA);
    let html = await step.res.text();
    step = await ua.submit(step.url, html, formAction(html, '/login'), { email: spa.email, password: spa.password }, SPA);
    html = await step.res.text();
    step = await ua.submit(step.url, html, formAction(html, '/confirm'), {}, SPA);
    const code = new URL(step.url).searchParams.get('code')!;

    const exchange = (origin: string) =>
      fetch(new URL('/token', server.issuer), {
        method: 'POST',
        headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', client_id: spa.clientId, code, redirect_uri: `${SPA}/spa-callback`, code_verifier: codeVerifier }),
      });
    const evil = await exchange('https://evil.example');
    expect(evil.status).toBe(400);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();

    const ok = await exchange(SPA);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(SPA);
    const tokens = (await ok.json()) as { refresh_token: string; access_token: string };
    expect(tokens.refresh_token).toBeTruthy();

    const revoke = await fetch(new URL('/token/revocation', server.issuer), {
      method: 'POST',
      headers: { origin: SPA, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: spa.clientId, token: tokens.refresh_token }),
    });
    expect(revoke.status).toBe(200);
    expect(revoke.headers.get('access-control-allow-origin')).toBe(SPA);
  });
});
