// RP-initiated logout (OIDC RP-Initiated Logout 1.0; conformance "oidcc-rp-initiated-logout-*"),
// injection (ASVS V5.3), Unicode identifiers (ASVS V2.1 / V6.2) and malformed input (ASVS V5.1).
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { idp } from '../helpers/cli.ts';
import { authorize, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { formAction, UserAgent } from '../helpers/user-agent.ts';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { post, rowCounts, securityContext, signOut } from './setup.ts';

const ctx = securityContext();
const POST_LOGOUT = 'http://127.0.0.1:8765/logged-out';
let adminClient: AdminApi | undefined;
const admin = async () => (adminClient ??= await adminApi(ctx.server));

async function logout(params: Record<string, string>) {
  const url = new URL(`${ctx.server.issuer}/session/end`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return fetch(url, { redirect: 'manual' });
}

describe('RP-initiated logout', () => {
  it.each([
    ['an unregistered post_logout_redirect_uri', 'https://evil.example/bye'],
    ['a registered one with an added query', `${POST_LOGOUT}?next=https://evil.example`],
    ['a registered one with another path', 'http://127.0.0.1:8765/logged-out/extra'],
  ])('SEC-LO-01 refuses %s: an error page, never a redirect', async (_name, target) => {
    const { tokens } = await loginAndExchange(new UserAgent(), ctx.config, { login: ctx.app });
    const res = await logout({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: target });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('post_logout_redirect_uri');
  });

  it('SEC-LO-02 never redirects to a post_logout_redirect_uri that no client vouches for (no id_token_hint, no client_id)', async () => {
    const ua = new UserAgent();
    const page = await ua.follow(`${ctx.server.issuer}/session/end?post_logout_redirect_uri=${encodeURIComponent('https://evil.example/bye')}`);
    // Nobody is signed in: the provider's self-submitting form, posting to our own endpoint, unframeable.
    expect(page.res.status).toBe(200);
    expect(page.res.headers.get('x-frame-options')).toBe('DENY');
    const html = await page.res.text();
    expect(html).toContain(`action="${ctx.server.issuer}/session/end/confirm"`);
    expect(html).not.toContain('evil.example');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
    const done = await ua.follow(`${ctx.server.issuer}/session/end/confirm`, undefined, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ctx.server.issuer },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    expect(done.url.startsWith(ctx.server.issuer)).toBe(true);
    expect(done.res.status).toBe(200);
    expect(await done.res.text()).toContain('Signed out');
  });

  it('SEC-LO-03 refuses a modified id_token_hint', async () => {
    const { tokens } = await loginAndExchange(new UserAgent(), ctx.config, { login: ctx.app });
    const [h, p, s] = tokens.id_token!.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${s}`;
    const res = await logout({ id_token_hint: forged, post_logout_redirect_uri: POST_LOGOUT });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('id_token_hint');
  });

  it('SEC-LO-04 refuses a garbage id_token_hint', async () => {
    const res = await logout({ id_token_hint: 'not-a-jwt' });
    expect(res.status).toBe(400);
  });

  it('SEC-LO-05 after logout, prompt=none answers login_required', async () => {
    const ua = new UserAgent();
    const { tokens } = await loginAndExchange(ua, ctx.config, { login: ctx.app });
    const done = await signOut(ctx, ua, tokens.id_token!);
    expect([200, 303]).toContain(done.status);
    const silent = await authorize(ua, ctx.config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(silent.callbackUrl.searchParams.get('error')).toBe('login_required');
  });

  it('SEC-LO-07 signing out ends what the session issued: a code not yet redeemed, and its access tokens', async () => {
    const ua = new UserAgent();
    const { tokens } = await loginAndExchange(ua, ctx.config, { login: ctx.app, scope: 'openid' });
    const pending = await authorize(ua, ctx.config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(pending.callbackUrl.searchParams.get('code')).toBeTruthy();
    await expect(oidc.fetchUserInfo(ctx.config, tokens.access_token, ctx.app.userId)).resolves.toMatchObject({ sub: ctx.app.userId });
    expect((await oidc.tokenIntrospection(ctx.config, tokens.access_token)).active).toBe(true);

    expect([200, 303]).toContain((await signOut(ctx, ua, tokens.id_token!)).status);
    await expect(oidc.fetchUserInfo(ctx.config, tokens.access_token, ctx.app.userId)).rejects.toBeDefined();
    expect(await oidc.tokenIntrospection(ctx.config, tokens.access_token)).toEqual({ active: false });
    await expect(
      oidc.authorizationCodeGrant(ctx.config, pending.callbackUrl, { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, expectedNonce: pending.nonce }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('SEC-LO-06 a logout confirmation with a wrong xsrf token does not sign out', async () => {
    const ua = new UserAgent();
    await loginAndExchange(ua, ctx.config, { login: ctx.app });
    const res = await ua.request(`${ctx.server.issuer}/session/end/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ctx.server.issuer },
      body: new URLSearchParams({ xsrf: 'forged', logout: 'yes' }),
    });
    expect(res.status).toBe(400);
    const still = await authorize(ua, ctx.config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(still.callbackUrl.searchParams.get('code')).toBeTruthy();
  });
});

describe('injection', () => {
  const payloads = ["' OR '1'='1", '"; DROP TABLE "User"; --', '\\\' OR 1=1 --', '{"$ne": null}', '%', '_'];

  it.each(payloads)('SEC-IN-01 a login with email %j is just a failed login, and nothing changes', async (payload) => {
    const before = await ctx.server.current.db.prisma.user.count();
    const ua = new UserAgent();
    const started = await authorize(ua, ctx.config, { consent: false });
    const html = await started.last.res.text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
    const action = new URL(/action="([^"]*\/login)"/.exec(html)![1]!, started.last.url);
    const res = await ua.request(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ctx.server.issuer }, body: new URLSearchParams({ _csrf: csrf, email: payload, password: payload }) });
    expect(res.status).toBe(401);
    expect(await ctx.server.current.db.prisma.user.count()).toBe(before);
  });

  it.each(payloads)('SEC-IN-02 a user search for %j matches literally', async (payload) => {
    const created = await idp(['users', 'list', '--q', payload, '--json'], ctx.server.env);
    expect(created.code).toBe(0);
    const { total } = created.json<{ total: number }>();
    // Only "%" and "_" could match everything if they were wildcards; they must match literally.
    expect(total).toBe(0);
  });

  it.each([
    ['POST /admin/v1/users', 'email', { email: { $ne: null }, password: 'x y z w v u' }],
    ['POST /admin/v1/users', 'password', { email: 'op@example.com', password: { $gt: '' } }],
    ['POST /admin/v1/clients', 'name', { name: { $ne: null }, redirectUris: [REDIRECT_URI] }],
    ['POST /admin/v1/clients', 'redirectUris', { name: 'x', redirectUris: [{ $regex: '.*' }] }],
    ['POST /admin/v1/resources', 'identifier', { identifier: { $ne: null }, scopes: ['read'] }],
  ])('SEC-IN-03 %s with a JSON operator object as %s: 400 naming the field, nothing stored', async (route, field, body) => {
    const [method, path] = route.split(' ') as [string, string];
    const api = await admin();
    await api.token();
    const before = await rowCounts(ctx);
    const res = await api.call<{ error: string; error_description: string }>(method, path, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(res.body.error_description).toContain(field);
    expect(await rowCounts(ctx)).toEqual(before);
  });

  it.each(payloads)('SEC-IN-04 SQL metacharacters in a client name (%j) are stored and found literally', async (payload) => {
    const api = await admin();
    const created = await api.call<{ client: { clientId: string; name: string } }>('POST', '/admin/v1/clients', { name: `app ${payload}`, redirectUris: [REDIRECT_URI] });
    expect(created.status).toBe(201);
    expect(created.body.client.name).toBe(`app ${payload}`);
    const found = await api.call<{ items: { clientId: string }[] }>('GET', `/admin/v1/clients?${new URLSearchParams({ name: `app ${payload}` })}`);
    expect(found.body.items.map((c) => c.clientId)).toEqual([created.body.client.clientId]);
  });

  it.each(payloads)('SEC-IN-05 an admin user search for %j over REST matches literally', async (payload) => {
    const found = await (await admin()).call<{ total: number }>('GET', `/admin/v1/users?${new URLSearchParams({ q: payload })}`);
    expect(found.status).toBe(200);
    expect(found.body.total).toBe(0);
  });
});

describe('Unicode identifiers', () => {
  it('SEC-UN-01 full-width and upper-case variants of an email are the same account', async () => {
    const res = await idp(['users', 'create', '--email', 'ＡＬＩＣＥ２@EXAMPLE.COM', '--password', 'plum jacket orbit 7', '--json'], ctx.server.env);
    expect(res.json()).toMatchObject({ email: 'alice2@example.com' });
    const dup = await idp(['users', 'create', '--email', 'Alice2@example.com', '--password', 'plum jacket orbit 7'], ctx.server.env);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('already exists');
  });

  it('SEC-UN-02 a password typed composed or decomposed is the same password (NFC)', async () => {
    const composed = 'caf\u00e9 au lait 42';
    const decomposed = 'cafe\u0301 au lait 42';
    const created = await idp(['users', 'create', '--email', 'nfc@example.com', '--password', composed, '--json'], ctx.server.env);
    expect(created.code).toBe(0);
    expect(await ctx.server.current.services.users.authenticate('nfc@example.com', decomposed)).not.toBeNull();
    expect(await ctx.server.current.services.users.authenticate('nfc@example.com', 'CAF\u00c9 AU LAIT 42')).toBeNull();
  });

  it('SEC-UN-03 a password is not truncated', async () => {
    const long = `${'x'.repeat(100)}-the-rest-matters`;
    await idp(['users', 'create', '--email', 'long@example.com', '--password', long], ctx.server.env);
    expect(await ctx.server.current.services.users.authenticate('long@example.com', `${'x'.repeat(100)}-the-rest-differs`)).toBeNull();
    expect(await ctx.server.current.services.users.authenticate('long@example.com', long)).not.toBeNull();
  });

  it('SEC-UN-04 a password over 1,024 characters is refused before hashing', async () => {
    const res = await idp(['users', 'create', '--email', 'huge@example.com', '--password', 'x'.repeat(1025)], ctx.server.env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('at most 1024 characters');
  });
});

describe('NUL characters', () => {
  it('SEC-MI-03 in the login form: 400, no lookup', async () => {
    const ua = new UserAgent();
    const started = await authorize(ua, ctx.config, { consent: false });
    const html = await started.last.res.text();
    const action = new URL(/action="([^"]*\/login)"/.exec(html)![1]!, started.last.url);
    const res = await ua.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ctx.server.issuer },
      body: new URLSearchParams({ _csrf: /name="_csrf" value="([^"]+)"/.exec(html)![1]!, email: `a\u0000@example.com`, password: 'whatever12' }),
    });
    expect(res.status).toBe(400);
  });

  it('SEC-MI-04 in a client_id at the token endpoint: 401 invalid_client', async () => {
    const res = await post(ctx, '/token', { grant_type: 'client_credentials', client_id: 'abc\u0000def', client_secret: 'x' });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('SEC-MI-05 in a code: 400 invalid_grant', async () => {
    const res = await post(ctx, '/token', { grant_type: 'authorization_code', code: 'abc\u0000', redirect_uri: REDIRECT_URI, code_verifier: 'x'.repeat(43) }, { authorization: `Basic ${Buffer.from(`${ctx.app.clientId}:${ctx.app.clientSecret}`).toString('base64')}` });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });
});

describe('malformed input', () => {
  it.each([
    ['a nul byte in client_id', `/authorize?client_id=a%00b&response_type=code&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`],
    ['invalid percent-encoding', '/authorize?client_id=%E0%A4%A&response_type=code'],
    ['a 10 kB client_id', `/authorize?client_id=${'a'.repeat(10_000)}&response_type=code`],
    ['an array-shaped parameter', '/authorize?client_id[]=x&response_type=code'],
  ])('SEC-MI-01 %s at the authorization endpoint: 4xx, never 5xx', async (_name, path) => {
    const res = await fetch(`${ctx.server.issuer}${path}`, { redirect: 'manual' });
    expect(res.status).toBe(400);
  });

  it.each([
    ['a JSON body', '{"grant_type":"client_credentials"}', 'application/json'],
    ['a multipart body', '--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--x--', 'multipart/form-data; boundary=x'],
    ['a body with a nul byte', 'grant_type=client_credentials%00', 'application/x-www-form-urlencoded'],
    ['a truncated JSON body', '{"grant_type":', 'application/json'],
    ['a text/plain body', 'grant_type=client_credentials', 'text/plain'],
  ])('SEC-MI-02 %s at the token endpoint: 400 invalid_request, never 5xx', async (_name, body, type) => {
    const res = await fetch(`${ctx.server.issuer}/token`, { method: 'POST', headers: { 'content-type': type }, body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('SEC-MI-09 an unknown or expired interaction: a friendly 400 page, no stack trace', async () => {
    const res = await fetch(`${ctx.server.issuer}/interaction/does-not-exist`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('This sign-in page is not valid here');
    expect(html).not.toMatch(/at .*\.ts:\d+/);
  });

  it('SEC-MI-06 a 100 kB query string: 431, never 5xx', async () => {
    const res = await fetch(`${ctx.server.issuer}/authorize?client_id=${ctx.app.clientId}&state=${'x'.repeat(100_000)}`, { redirect: 'manual' });
    expect(res.status).toBe(431);
  });

  it.each([
    ['the token endpoint (2 MB form)', '/token', 'application/x-www-form-urlencoded', `grant_type=client_credentials&pad=${'x'.repeat(2_000_000)}`],
    ['the admin API (2 MB JSON)', '/admin/v1/users', 'application/json', JSON.stringify({ email: 'big@example.com', password: 'x'.repeat(2_000_000) })],
  ])('SEC-MI-07 an oversized body at %s: 413, nothing stored', async (_name, path, type, body) => {
    const headers: Record<string, string> = { 'content-type': type };
    if (path.startsWith('/admin')) headers.authorization = `Bearer ${await (await admin()).token()}`;
    const before = await rowCounts(ctx);
    const res = await fetch(`${ctx.server.issuer}${path}`, { method: 'POST', headers, body });
    expect(res.status).toBe(413);
    expect(await rowCounts(ctx)).toEqual(before);
  });

  it('SEC-MI-08 an oversized login form (200 kB password) is 413, a 5,000-character one just a failed login (401)', async () => {
    const ua = new UserAgent();
    const started = await authorize(ua, ctx.config, { consent: false });
    const html = await started.last.res.text();
    const action = formAction(html, '/login');
    expect((await ua.submit(started.last.url, html, action, { email: ctx.app.email, password: 'x'.repeat(200_000) })).res.status).toBe(413);
    expect((await ua.submit(started.last.url, html, action, { email: ctx.app.email, password: 'x'.repeat(5000) })).res.status).toBe(401);
    expect(ua.cookies.has('_session')).toBe(false);
  });

  it.each([
    ['repeated email fields', 'application/x-www-form-urlencoded', (csrf: string, email: string) => `_csrf=${encodeURIComponent(csrf)}&email=${encodeURIComponent(email)}&email=${encodeURIComponent(email)}&password=a+long+enough+password`],
    ['a JSON body with an object as email', 'application/json', (csrf: string, email: string) => JSON.stringify({ _csrf: csrf, email: { $ne: email }, password: 'a long enough password' })],
    ['a JSON body with a number as password', 'application/json', (csrf: string, email: string) => JSON.stringify({ _csrf: csrf, email, password: 12345678 })],
  ])('SEC-MI-10 a login form with %s: the ordinary failed-login page (401), never a sign-in or a 5xx', async (_name, type, body) => {
    const ua = new UserAgent();
    const started = await authorize(ua, ctx.config, { consent: false });
    const html = await started.last.res.text();
    const action = new URL(formAction(html, '/login'), started.last.url);
    const res = await ua.request(action, { method: 'POST', headers: { 'content-type': type, origin: ctx.server.issuer }, body: body(/name="_csrf" value="([^"]+)"/.exec(html)![1]!, ctx.app.email) });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('Incorrect email or password.');
    expect(ua.cookies.has('_session')).toBe(false);
  });
});
