// The account page (/account): forms (CSRF, origin), whose data a session may touch, where a sign-in
// may come back to, its own sign-in (login CSRF, replay), its cookie, its built-in client, and
// re-authentication before sensitive actions. ASVS V3.5 (CSRF), V8.2.2 (access to others' data),
// V7.5 (re-authentication), V3.3 (cookies); OWASP Unvalidated Redirects and Forwards.
import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/lib/crypto.ts';
import { actions, ageAccountSignIn, openAccount, postAccount, type AccountPage } from '../helpers/account.ts';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { seed } from '../helpers/seed.ts';
import { freePort, startServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { rowCounts, securityContext } from './setup.ts';

const ctx = securityContext();
let admin: AdminApi;
beforeAll(async () => {
  admin = await adminApi(ctx.server);
});

const pathOf = (url: string) => new URL(url).pathname;

/**
 * A person as the account page sees them: an app holding their consent (refresh token in hand),
 * a second browser signed in, a linked upstream account, and this browser on the account page.
 */
async function person() {
  const user = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
  const config = await discover(ctx.server.issuer, user.clientId, user.clientSecret);
  const elsewhere = new UserAgent();
  const { tokens } = await loginAndExchange(elsewhere, config, { login: user, scope: 'openid offline_access' });
  await openAccount(ctx.server, elsewhere);
  const identityId = randomUUID();
  await ctx.server.current.db.prisma.federatedIdentity.create({
    data: { id: identityId, providerId: 'google', issuer: 'https://accounts.google.com', subject: `g-${identityId}`, email: user.email, emailVerified: true, userId: user.userId },
  });
  const ua = new UserAgent();
  const page = await openAccount(ctx.server, ua, user);
  expect(pathOf(page.url)).toBe('/account');
  const grant = actions(page.html, /^\/account\/apps\/[^/]+\/revoke$/)[0]!;
  const session = actions(page.html, /^\/account\/sessions\/[^/]+\/sign-out$/)[0]!;
  return { user, config, refreshToken: tokens.refresh_token!, elsewhere, identityId, ua, page, forms: { grant, session, unlink: `/account/linked/${identityId}/unlink` } };
}

type Person = Awaited<ReturnType<typeof person>>;

/** Every form of the account page, with fields that would change something if accepted. */
const FORMS: [string, (p: Person) => [string, Record<string, string>]][] = [
  ['the profile form', () => ['/account/profile', { name: 'Changed By Someone Else' }]],
  ['the email change form', () => ['/account/email', { email: 'chosen-by-someone-else@example.com' }]],
  ['the password form', (p) => ['/account/password', { current: p.user.password, password: 'a password chosen by someone else' }]],
  ['signing out another session', (p) => [p.forms.session, {}]],
  ['signing out every other session', () => ['/account/sessions/sign-out-others', {}]],
  ['revoking an app', (p) => [p.forms.grant, {}]],
  ['unlinking a service', (p) => [p.forms.unlink, {}]],
  ['downloading the data', () => ['/account/data', {}]],
  ['deleting the account', (p) => ['/account/delete', { email: p.user.email }]],
  ['signing out', () => ['/account/sign-out', {}]],
];

/** What a refused form must leave as it was: every row count, the person's own row, and their sessions. */
async function snapshot(p: Person) {
  const prisma = ctx.server.current.db.prisma;
  return {
    rows: await rowCounts(ctx),
    user: await prisma.user.findUnique({ where: { id: p.user.userId } }),
    accountSessions: await prisma.oidcPayload.count({ where: { model: 'AccountSession' } }),
  };
}

const post = (p: Person, action: string, fields: Record<string, string>, headers: Record<string, string>) =>
  p.ua.request(`${ctx.server.issuer}${action}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields) });

describe('account page forms', () => {
  it.each(FORMS)('SEC-AP-01 %s without a CSRF token, with a forged one or with another person\'s: 403, nothing changes', async (_name, form) => {
    const p = await person();
    const other = await openAccount(ctx.server, new UserAgent(), await seed(ctx.server.env, { redirectUri: REDIRECT_URI }));
    const [action, fields] = form(p);
    const before = await snapshot(p);
    const same = { origin: ctx.server.issuer, 'sec-fetch-site': 'same-origin' };
    for (const token of [undefined, 'forged', /name="_csrf" value="([^"]+)"/.exec(other.html)![1]!]) {
      const res = await post(p, action, { ...fields, ...(token ? { _csrf: token } : {}) }, same);
      expect(res.status, `${action} ${token}`).toBe(403);
      expect(await res.text()).toContain('This form cannot be accepted');
    }
    expect(await snapshot(p)).toEqual(before);
    expect(pathOf((await openAccount(ctx.server, p.ua)).url)).toBe('/account');
  });

  it.each(FORMS)('SEC-AP-02 %s from another site, even with the right token: 403, nothing changes', async (_name, form) => {
    const p = await person();
    const [action, fields] = form(p);
    const before = await snapshot(p);
    const token = /name="_csrf" value="([^"]+)"/.exec(p.page.html)![1]!;
    const foreign: Record<string, string>[] = [{ origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }, { origin: 'null', 'sec-fetch-site': 'cross-site' }, { origin: 'https://evil.example' }];
    for (const headers of foreign) {
      const res = await post(p, action, { ...fields, _csrf: token }, headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
    }
    expect(await snapshot(p)).toEqual(before);
  });

  it('SEC-AP-03 the same form from the page itself is accepted (control)', async () => {
    const p = await person();
    const res = await postAccount(ctx.server, p.ua, p.page, '/account/profile', { name: 'Renamed' });
    expect(res.status).toBe(303);
    expect((await ctx.server.current.db.prisma.user.findUnique({ where: { id: p.user.userId } }))?.name).toBe('Renamed');
  });
});

describe("another person's data", () => {
  const CASES: [string, (victim: Person) => Promise<string>][] = [
    ['revoking their app', async (victim) => victim.forms.grant],
    ['signing out their session', async (victim) => victim.forms.session],
    ['unlinking their service', async (victim) => victim.forms.unlink],
  ];

  it.each(CASES)('SEC-AP-04 %s from my own account page: 404, nothing changes', async (_name, target) => {
    const victim = await person();
    const me = await person();
    const action = await target(victim);
    const before = await snapshot(victim);
    const res = await postAccount(ctx.server, me.ua, me.page, action);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('Not found');
    expect(await snapshot(victim)).toEqual(before);
    // The victim's app and other browser still work.
    expect((await oidc.refreshTokenGrant(victim.config, victim.refreshToken)).access_token).toBeTruthy();
    expect(pathOf((await openAccount(ctx.server, victim.elsewhere)).url)).toBe('/account');
  });

  it("SEC-AP-05 another person's linked service cannot even be shown for unlinking: 404", async () => {
    const victim = await person();
    const me = await person();
    const res = await me.ua.request(`${ctx.server.issuer}${victim.forms.unlink}`);
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain(victim.user.email);
  });
});

describe('where a sign-in comes back to', () => {
  const RETURNS = ['//evil.example', 'https://evil.example/account', '/\\evil.example', '/account/../admin', '/account//evil.example', '/account?next=https://evil.example', 'javascript:alert(1)', '/account/%2F%2Fevil.example', '/accounts', ' /account', '/account/a/b/c/d/e'];

  it.each(RETURNS)('SEC-AP-06 return=%s: the sign-in comes back to /account, never elsewhere', async (value) => {
    const user = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    await openAccount(ctx.server, ua, user);
    const landed = await ua.follow(`${ctx.server.issuer}/account/sign-in?${new URLSearchParams({ return: value })}`);
    expect(landed.url).toBe(`${ctx.server.issuer}/account`);
    expect(landed.res.status).toBe(200);
  });

  it('SEC-AP-07 one of its own pages is kept (control)', async () => {
    const user = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    await openAccount(ctx.server, ua, user);
    const landed = await ua.follow(`${ctx.server.issuer}/account/sign-in?return=${encodeURIComponent('/account/password')}`);
    expect(landed.url).toBe(`${ctx.server.issuer}/account/password`);
  });
});

describe("the account page's own sign-in", () => {
  /** A signed-in browser that starts an account page sign-in and stops at the callback (the code and state in hand). */
  async function callbackOf(ua: UserAgent, user: { email: string; password: string }) {
    await openAccount(ctx.server, ua, user);
    const stopped = await ua.follow(`${ctx.server.issuer}/account/sign-in`, `${ctx.server.issuer}/account/callback`);
    expect(pathOf(stopped.url)).toBe('/account/callback');
    return stopped.url;
  }

  it("SEC-AP-08 a callback this browser did not start (an attacker's code and state): 400, nobody signed in here", async () => {
    const attacker = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const url = await callbackOf(new UserAgent(), attacker);
    const victim = new UserAgent();
    const res = await victim.request(url);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('This sign-in cannot be completed');
    expect([...victim.cookies.keys()].filter((name) => name.startsWith('idp_account'))).toEqual([]);
  });

  it('SEC-AP-09 a callback used twice: the second is refused, and opens no session', async () => {
    const user = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    const url = await callbackOf(ua, user);
    const cookies = new Map(ua.cookies);
    const first = await ua.request(url);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/account');
    // The same browser state again (its pending-sign-in cookie put back): refused.
    for (const [name, value] of cookies) ua.cookies.set(name, value);
    const prisma = ctx.server.current.db.prisma;
    const before = await prisma.oidcPayload.count({ where: { model: 'AccountSession' } });
    const second = await ua.request(url);
    expect(second.status).toBe(400);
    expect(await prisma.oidcPayload.count({ where: { model: 'AccountSession' } })).toBe(before);
  });

  it("SEC-AP-10 a made-up code, or another app's, at the callback: refused, no session opened, the app's code still its own", async () => {
    const user = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(ctx.server.issuer, user.clientId, user.clientSecret);
    const ua = new UserAgent();
    const prisma = ctx.server.current.db.prisma;
    const made = new URL(await callbackOf(ua, user));
    made.searchParams.set('code', 'made-up-code');
    const app = await authorize(ua, config, { scope: 'openid' });
    const theirs = new URL(await callbackOf(ua, user));
    theirs.searchParams.set('code', app.callbackUrl.searchParams.get('code')!);
    for (const url of [made, theirs]) {
      const before = await prisma.oidcPayload.count({ where: { model: 'AccountSession' } });
      const res = await ua.request(url);
      expect(res.status).toBe(400);
      expect(await prisma.oidcPayload.count({ where: { model: 'AccountSession' } })).toBe(before);
    }
    const tokens = await oidc.authorizationCodeGrant(config, app.callbackUrl, { pkceCodeVerifier: app.codeVerifier, expectedState: app.state, expectedNonce: app.nonce });
    expect(tokens.access_token).toBeTruthy();
  });
});

describe('the account cookie and session', () => {
  it('SEC-AP-11 its cookie is HttpOnly, SameSite=Lax, signed, and holds a random id the database keeps only hashed', async () => {
    const user = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    await openAccount(ctx.server, ua, user);
    const line = ua.setCookieLines.filter((l) => l.startsWith('idp_account=')).at(-1)!;
    expect(line).toMatch(/;\s*httponly/i);
    expect(line).toMatch(/;\s*samesite=lax/i);
    expect(line).toMatch(/;\s*path=\/(;|$)/i);
    const value = decodeURIComponent(ua.cookies.get('idp_account')!);
    const id = value.slice(0, value.lastIndexOf('.'));
    expect(id.length).toBeGreaterThanOrEqual(43);
    const prisma = ctx.server.current.db.prisma;
    expect(await prisma.oidcPayload.count({ where: { model: 'AccountSession', id } })).toBe(0);
    expect(await prisma.oidcPayload.count({ where: { model: 'AccountSession', id: sha256(id) } })).toBe(1);
    // A changed signature is no session at all: the browser is sent to sign in.
    ua.cookies.set('idp_account', encodeURIComponent(`${id}.forged`));
    const forged = await ua.request(`${ctx.server.issuer}/account`);
    expect(forged.status).toBe(303);
    expect(forged.headers.get('location')).toBe('/account/sign-in?return=%2Faccount');
  });

  it('SEC-AP-12 over https: __Host- and Secure, and plain http is refused', async () => {
    const port = await freePort();
    const publicOrigin = `https://127.0.0.1:${port}`;
    const tls = await startServer({ ISSUER: publicOrigin, TRUST_PROXY: '1' }, { port });
    try {
      const user = await seed(tls.env, { redirectUri: REDIRECT_URI });
      const ua = new UserAgent({ headers: { 'x-forwarded-proto': 'https' }, proxy: { publicOrigin, serverOrigin: `http://127.0.0.1:${port}` } });
      // (The server's own address is plain http; the browser talks to its public https one.)
      const page = await openAccount({ ...tls, issuer: publicOrigin }, ua, user);
      expect(pathOf(page.url)).toBe('/account');
      const lines = ua.setCookieLines.filter((l) => /^__(Host|Secure)-idp_account/.test(l) && !/expires=Thu, 01 Jan 1970/i.test(l));
      expect(lines.map((l) => l.slice(0, l.indexOf('=')))).toEqual(expect.arrayContaining(['__Host-idp_account', '__Secure-idp_account_login']));
      for (const l of lines) expect(l).toMatch(/;\s*secure/i);
      const plain = await fetch(`http://127.0.0.1:${port}/account`, { redirect: 'manual' });
      expect(plain.status).toBe(400);
      expect(plain.headers.getSetCookie()).toEqual([]);
    } finally {
      await tls.close();
    }
  });

  it('SEC-AP-13 the account session ends with the browser session it came from (an admin signs the person out everywhere)', async () => {
    const p = await person();
    const res = await admin.call('DELETE', `/admin/v1/users/${p.user.userId}/sessions`);
    expect(res.status).toBe(200);
    const again = await p.ua.follow(`${ctx.server.issuer}/account`);
    expect(pathOf(again.url)).toMatch(/^\/interaction\//);
    const refused = await postAccount(ctx.server, p.ua, p.page, '/account/profile', { name: 'After Sign-out' });
    expect(refused.status).toBe(303);
    expect(refused.headers.get('location')).toMatch(/^\/account\/sign-in\?/);
    expect((await ctx.server.current.db.prisma.user.findUnique({ where: { id: p.user.userId } }))?.name).toBe('Test User');
  });
});

describe('re-authentication', () => {
  const SENSITIVE: [string, (p: Person) => [string, Record<string, string>]][] = [
    ['changing the password', (p) => ['/account/password', { current: p.user.password, password: 'a new password after too long' }]],
    ['unlinking a service', (p) => [p.forms.unlink, {}]],
    ['deleting the account', (p) => ['/account/delete', { email: p.user.email }]],
  ];

  it.each(SENSITIVE)('SEC-AP-14 %s with a sign-in older than RECENT_AUTH_SECONDS: sent to sign in again, nothing changes', async (_name, form) => {
    const p = await person();
    await ageAccountSignIn(ctx.server, p.user.userId, 301);
    const [action, fields] = form(p);
    const before = await snapshot(p);
    const res = await postAccount(ctx.server, p.ua, p.page, action, fields);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/account/sign-in?${new URLSearchParams({ return: action, reauth: '1' })}`);
    expect(await snapshot(p)).toEqual(before);
    // The sign-in it is sent to asks for the password, whatever the browser session.
    const again = await p.ua.follow(new URL(res.headers.get('location')!, ctx.server.issuer));
    expect(pathOf(again.url)).toMatch(/^\/interaction\//);
    expect(await again.res.text()).toContain('id="password"');
  });
});

describe("the account page's built-in client", () => {
  const CHANGES: [string, string, unknown][] = [
    ['changed', 'PATCH /admin/v1/clients/idp-account', { redirectUris: ['https://evil.example/callback'] }],
    ['disabled', 'POST /admin/v1/clients/idp-account/disable', undefined],
    ['given a secret', 'POST /admin/v1/clients/idp-account/rotate-secret', {}],
    ['deleted', 'DELETE /admin/v1/clients/idp-account', undefined],
  ];

  it.each(CHANGES)('SEC-AP-15 cannot be %s through the admin API: 400, unchanged', async (_name, call, body) => {
    const before = await admin.call('GET', '/admin/v1/clients/idp-account');
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ clientId: 'idp-account', public: true, firstParty: true, redirectUris: [`${ctx.server.issuer}/account/callback`] });
    const [method, path] = call.split(' ') as [string, string];
    const res = await admin.call(method, path, body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining("the account page's built-in client") });
    expect((await admin.call('GET', '/admin/v1/clients/idp-account')).body).toEqual(before.body);
  });
});

describe('starting sign-ins', () => {
  it('SEC-AP-17 past INTERACTIONS_PER_MINUTE from one address: 429 with Retry-After, nothing more stored', async () => {
    const limited = await startServer({ INTERACTIONS_PER_MINUTE: '3' });
    try {
      const prisma = limited.current.db.prisma;
      for (let i = 0; i < 3; i++) expect((await fetch(`${limited.issuer}/account/sign-in`, { redirect: 'manual' })).status).toBe(303);
      const stored = await prisma.oidcPayload.count({ where: { model: 'AccountLogin' } });
      expect(stored).toBe(3);
      const refused = await fetch(`${limited.issuer}/account/sign-in`, { redirect: 'manual' });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('60');
      expect(await refused.text()).toContain('Too many sign-ins');
      expect(await prisma.oidcPayload.count({ where: { model: 'AccountLogin' } })).toBe(stored);
    } finally {
      await limited.close();
    }
  });
});

describe('account pages', () => {
  it('SEC-AP-16 are sent with the strict page headers (CSP, no framing, no caching)', async () => {
    const user = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const ua = new UserAgent();
    const page: AccountPage = await openAccount(ctx.server, ua, user);
    expect(page.status).toBe(200);
    const res = await ua.request(`${ctx.server.issuer}/account`);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  });
});
