// Forms, sessions, cookies, page headers and CORS: ASVS V3.3–V3.4 (cookies, session fixation),
// V50.2 (framing), V50.3 (CORS), V50.4 (CSRF); RFC 9700 §4.4 (login CSRF), §4.16 (clickjacking).
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { seed } from '../helpers/seed.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { freePort, startServer } from '../helpers/server.ts';
import { csrfToken, formAction, UserAgent } from '../helpers/user-agent.ts';
import { rowCounts, securityContext } from './setup.ts';
import { stored } from '../helpers/stored.ts';

const ctx = securityContext();

/** A browser at our login page for a fresh authorization request, and the form it shows. */
async function atLoginPage(ua = new UserAgent()) {
  const started = await authorize(ua, ctx.config, { consent: false });
  const html = await started.last.res.text();
  return { ua, url: started.last.url, html, action: new URL(formAction(html, '/login'), started.last.url) };
}

/** A form post as another site (or a forger) would send it. */
const postForm = (ua: UserAgent, action: URL, fields: Record<string, string>, origin: string, site: string) =>
  ua.request(action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': site },
    body: new URLSearchParams(fields),
  });

describe('login CSRF', () => {
  it.each([
    ['without a CSRF token', {}],
    ['with a forged CSRF token', { _csrf: 'forged' }],
  ])('SEC-CS-01 a login form posted %s: 403, nobody signed in', async (_name, fields) => {
    const { ua, action } = await atLoginPage();
    const before = await rowCounts(ctx);
    const res = await postForm(ua, action, { email: ctx.app.email, password: ctx.app.password, ...fields }, ctx.server.issuer, 'same-origin');
    expect(res.status).toBe(403);
    expect(ua.cookies.has('_session')).toBe(false);
    expect(await rowCounts(ctx)).toEqual(before);
  });

  it('SEC-CS-02 a login form posted from another origin, even with the right token: 403 with an explanation', async () => {
    const { ua, html, action } = await atLoginPage();
    const res = await postForm(ua, action, { _csrf: csrfToken(html), email: ctx.app.email, password: ctx.app.password }, 'https://evil.example', 'cross-site');
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('This form cannot be accepted');
    expect(ua.cookies.has('_session')).toBe(false);
  });

  it('SEC-CS-03 a cross-site login post whose Origin a no-referrer policy hid ("null"): 403', async () => {
    const { ua, html, action } = await atLoginPage();
    const res = await postForm(ua, action, { _csrf: csrfToken(html), email: ctx.app.email, password: ctx.app.password }, 'null', 'cross-site');
    expect(res.status).toBe(403);
    expect(ua.cookies.has('_session')).toBe(false);
  });

  it("SEC-CS-04 another browser's CSRF token does not work in this one", async () => {
    const mine = await atLoginPage();
    const theirs = await atLoginPage();
    const res = await postForm(mine.ua, mine.action, { _csrf: csrfToken(theirs.html), email: ctx.app.email, password: ctx.app.password }, ctx.server.issuer, 'same-origin');
    expect(res.status).toBe(403);
    expect(mine.ua.cookies.has('_session')).toBe(false);
  });
});

describe('consent CSRF', () => {
  /** A signed-in browser at the consent page. */
  async function atConsentPage() {
    const ua = new UserAgent();
    const started = await authorize(ua, ctx.config, { login: ctx.app, consent: false, scope: 'openid email' });
    const html = await started.last.res.text();
    expect(html).toContain('Allow access');
    return { ua, html, action: new URL(formAction(html, '/confirm'), started.last.url) };
  }

  it.each([
    ['without a CSRF token', {}, ''],
    ['with a forged CSRF token', { _csrf: 'forged' }, ''],
    ['from another origin, with the right token', null, 'https://evil.example'],
  ])('SEC-CS-05 a consent posted %s: 403, no grant, no code', async (_name, fields, origin) => {
    const { ua, html, action } = await atConsentPage();
    const before = await rowCounts(ctx);
    const res = await postForm(ua, action, fields ?? { _csrf: csrfToken(html) }, origin || ctx.server.issuer, origin ? 'cross-site' : 'same-origin');
    expect(res.status).toBe(403);
    expect(res.headers.get('location')).toBeNull();
    expect(await rowCounts(ctx)).toEqual(before);
  });
});

describe('sessions and cookies', () => {
  it('SEC-SF-01 a session id planted before the login is never authenticated (session fixation)', async () => {
    const victim = new UserAgent();
    victim.cookies.set('_session', 'attacker-chosen-session-id');
    await loginAndExchange(victim, ctx.config, { login: ctx.app });
    expect(victim.cookies.get('_session')).toBeTruthy();
    expect(victim.cookies.get('_session')).not.toBe('attacker-chosen-session-id');

    const attacker = new UserAgent();
    attacker.cookies.set('_session', 'attacker-chosen-session-id');
    const silent = await authorize(attacker, ctx.config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(silent.callbackUrl.searchParams.get('error')).toBe('login_required');
  });

  it("SEC-SF-02 signing in as another account ends the previous session and starts one under a new id", async () => {
    const ua = new UserAgent();
    await loginAndExchange(ua, ctx.config, { login: ctx.app });
    const first = ua.cookies.get('_session')!;
    const other = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const started = await authorize(ua, ctx.config, { prompt: 'login', consent: false });
    let html = await started.last.res.text();
    let step = await ua.submit(started.last.url, html, formAction(html, '/login'), { email: other.email, password: other.password }, REDIRECT_URI);
    // The provider first ends the previous session with a form that submits itself (as a browser would).
    html = await step.res.text();
    const action = /<form method="post" action="([^"]+)"/.exec(html)![1]!;
    const fields = Object.fromEntries([...html.matchAll(/name="(\w+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const ended = await postForm(ua, new URL(action), fields, ctx.server.issuer, 'same-origin');
    step = await ua.follow(new URL(ended.headers.get('location')!, action), REDIRECT_URI);
    html = await step.res.text();
    step = await ua.submit(step.url, html, formAction(html, '/confirm'), {}, REDIRECT_URI);
    expect(new URL(step.url).searchParams.get('code')).toBeTruthy();

    expect(ua.cookies.get('_session')).not.toBe(first);
    expect(await stored(ctx.server).find('Session', first)).toBeNull();
    const session = await stored(ctx.server).find('Session', ua.cookies.get('_session')!);
    expect(session?.accountId).toBe(other.userId);
  });

  it('SEC-CK-01 cookies hold only ids, all HttpOnly and SameSite=Lax; the state is in the database', async () => {
    const ua = new UserAgent();
    await loginAndExchange(ua, ctx.config, { login: ctx.app });
    const set = ua.setCookieLines.filter((l) => !/expires=Thu, 01 Jan 1970/i.test(l));
    expect(set.length).toBeGreaterThan(2);
    for (const line of set) {
      expect(line, line).toMatch(/;\s*httponly/i);
      expect(line, line).toMatch(/;\s*samesite=lax/i);
      expect(line).not.toContain(ctx.app.email);
    }
    const session = await stored(ctx.server).find('Session', ua.cookies.get('_session')!);
    expect(session?.accountId).toBe(ctx.app.userId);
  });

  it('SEC-CK-03 the interaction cookies are scoped to their own interaction\'s paths', async () => {
    const ua = new UserAgent();
    const done = await authorize(ua, ctx.config, { login: ctx.app, scope: 'openid' });
    expect(done.callbackUrl.searchParams.get('code')).toBeTruthy();
    const lines = ua.setCookieLines.filter((l) => /^_interaction(_resume)?=/.test(l) && !/expires=Thu, 01 Jan 1970/i.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) {
      const uid = /^_interaction(?:_resume)?=([^;]+)/.exec(line)![1];
      expect(line, line).toMatch(new RegExp(`;\\s*path=/(interaction|authorize)/${uid}(;|$)`, 'i'));
    }
  });

  it('SEC-CK-02 over https: every cookie is Secure, and prefixed __Host- (path /) or __Secure- (interaction paths)', async () => {
    const port = await freePort();
    const publicOrigin = `https://127.0.0.1:${port}`;
    const tls = await startServer({ ISSUER: publicOrigin, TRUST_PROXY: '1' }, { port });
    try {
      const app = await seed(tls.env, { redirectUri: REDIRECT_URI });
      const config = new oidc.Configuration({ issuer: publicOrigin, authorization_endpoint: `${publicOrigin}/authorize` }, app.clientId, app.clientSecret);
      const ua = new UserAgent({ headers: { 'x-forwarded-proto': 'https' }, proxy: { publicOrigin, serverOrigin: `http://127.0.0.1:${port}` } });
      const done = await authorize(ua, config, { login: app, scope: 'openid' });
      expect(done.callbackUrl.searchParams.get('code')).toBeTruthy();
      const set = ua.setCookieLines.filter((l) => !/expires=Thu, 01 Jan 1970/i.test(l));
      const names = new Set(set.map((l) => l.slice(0, l.indexOf('=')).replace(/\.sig$/, '')));
      expect(names).toEqual(new Set(['__Secure-interaction', '__Secure-interaction_resume', '__Host-csrf', '__Host-session', '__Host-idp_device']));
      for (const line of set) {
        expect(line, line).toMatch(/;\s*secure/i);
        expect(line, line).toMatch(/;\s*httponly/i);
        if (line.startsWith('__Host-')) {
          expect(line, line).toMatch(/;\s*path=\/(;|$)/i);
          expect(line, line).not.toMatch(/;\s*domain=/i);
        }
      }
    } finally {
      await tls.close();
    }
  });

  it('SEC-CS-06 a logout confirmation posted from another site, even with the right token: 403, still signed in', async () => {
    const ua = new UserAgent();
    const { tokens } = await loginAndExchange(ua, ctx.config, { login: ctx.app });
    const page = await ua.follow(`${ctx.server.issuer}/session/end?${new URLSearchParams({ id_token_hint: tokens.id_token!, client_id: ctx.app.clientId })}`);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.res.text())![1]!;
    const forged = await postForm(ua, new URL(`${ctx.server.issuer}/session/end/confirm`), { xsrf, logout: 'yes' }, 'https://evil.example', 'cross-site');
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('You are still signed in');
    const still = await authorize(ua, ctx.config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(still.callbackUrl.searchParams.get('code')).toBeTruthy();
  });
});

describe('headers on every HTML page', () => {
  const EXPECTED = { 'x-frame-options': 'DENY', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' };
  const headersOf = (res: Response) => Object.fromEntries(Object.keys(EXPECTED).map((k) => [k, res.headers.get(k)]));

  /** default-src, base-uri and frame-ancestors 'none'; scripts only from our own files, and inline only by the hash of each inline script the page has. */
  async function expectStrictCsp(res: Response) {
    const html = await res.text();
    const directives = new Map(res.headers.get('content-security-policy')!.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name!, values]));
    for (const name of ['default-src', 'base-uri', 'frame-ancestors']) expect(directives.get(name), name).toEqual(["'none'"]);
    const hashes = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`);
    expect(directives.get('script-src')?.[0]).toBe("'self'");
    expect(directives.get('script-src')!.slice(1)).toEqual(hashes);
    expect(res.headers.get('content-security-policy')).not.toContain('unsafe');
  }

  it.each([
    ['the login page', async () => (await authorize(new UserAgent(), ctx.config, { consent: false })).last.res],
    ['the consent page', async () => (await authorize(new UserAgent(), ctx.config, { login: ctx.app, consent: false })).last.res],
    ['an error page the provider renders', () => fetch(`${ctx.server.issuer}/authorize?client_id=nope&response_type=code`)],
    ['the expired-interaction page', () => fetch(`${ctx.server.issuer}/interaction/nope`)],
    ['the auto-submitting logout form (no session)', () => fetch(`${ctx.server.issuer}/session/end`)],
    ['the form_post response', async () => (await authorize(new UserAgent(), ctx.config, { login: ctx.app, scope: 'openid', extra: { response_mode: 'form_post' } })).last.res],
  ])('SEC-HD-01 %s: strict CSP (inline script only by hash), not frameable, not sniffed, no referrer, not cached; no HSTS over http', async (_name, load) => {
    const res = await load();
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(headersOf(res)).toEqual(EXPECTED);
    expect(res.headers.get('strict-transport-security')).toBeNull();
    await expectStrictCsp(res);
  });

  it.each([['/admin/docs'], ['/admin/docs/static/index.html'], ['/admin/docs/static/swagger-initializer.js']])(
    'SEC-HD-04 the admin API docs (%s) run only their own scripts, and are not framed, sniffed or cached',
    async (path) => {
      const res = await fetch(`${ctx.server.issuer}${path}`, { redirect: 'manual' });
      expect(res.status).toBeLessThan(400);
      expect(headersOf(res)).toEqual(EXPECTED);
      const directives = new Map(res.headers.get('content-security-policy')!.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name!, values]));
      expect(directives.get('default-src')).toEqual(["'none'"]);
      expect(directives.get('script-src')).toEqual(["'self'"]);
      expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    },
  );

  it('SEC-HD-02 HSTS when the issuer is https, on our pages and the provider\'s', async () => {
    const port = await freePort();
    const tls = await startServer({ ISSUER: `https://127.0.0.1:${port}`, TRUST_PROXY: '1' }, { port });
    try {
      for (const path of ['/interaction/nope', '/session/end', '/.well-known/openid-configuration', '/admin/docs/static/index.html']) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { 'x-forwarded-proto': 'https' } });
        expect(res.status, path).toBeLessThan(500);
        expect(res.headers.get('strict-transport-security'), path).toBe('max-age=31536000; includeSubDomains');
        expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      }
    } finally {
      await tls.close();
    }
  });

  it('SEC-HD-03 an https issuer reached over plain http: a 400 page that says to use https, no cookie', async () => {
    const port = await freePort();
    const tls = await startServer({ ISSUER: `https://127.0.0.1:${port}` }, { port });
    try {
      for (const path of ['/session/end', '/authorize?client_id=x&response_type=code']) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { redirect: 'manual' });
        expect(res.status, path).toBe(400);
        expect(await res.text()).toContain('This page is only served over https');
        expect(res.headers.getSetCookie()).toEqual([]);
      }
    } finally {
      await tls.close();
    }
  });
});

describe('CORS for browser apps', () => {
  const SPA = 'http://127.0.0.1:8765';
  const preflight = (path: string, origin: string) =>
    fetch(`${ctx.server.issuer}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });

  it.each([['/token'], ['/userinfo'], ['/token/revocation']])('SEC-CO-01 a preflight to %s is answered for a registered origin only', async (path) => {
    await seed(ctx.server.env, { redirectUri: `${SPA}/spa-callback`, public: true });
    expect((await preflight(path, SPA)).headers.get('access-control-allow-origin')).toBe(SPA);
    expect((await preflight(path, 'https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
  });

  it("SEC-CO-02 a public client's code redeemed from another origin is refused, and the code still works from the app's own", async () => {
    const spa = await seed(ctx.server.env, { redirectUri: `${SPA}/spa-callback`, public: true });
    const spaConfig = await discover(ctx.server.issuer, spa.clientId);
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
      fetch(`${ctx.server.issuer}/token`, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', client_id: spa.clientId, code, redirect_uri: `${SPA}/spa-callback`, code_verifier: codeVerifier }),
      });
    const evil = await exchange('https://evil.example');
    expect(evil.status).toBe(400);
    expect(((await evil.json()) as { error: string }).error).toBe('invalid_request');
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();

    const ok = await exchange(SPA);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(SPA);
    const tokens = (await ok.json()) as { refresh_token: string };
    const revoke = await fetch(`${ctx.server.issuer}/token/revocation`, {
      method: 'POST',
      headers: { origin: SPA, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: spa.clientId, token: tokens.refresh_token }),
    });
    expect(revoke.status).toBe(200);
    expect(revoke.headers.get('access-control-allow-origin')).toBe(SPA);
  });
});
