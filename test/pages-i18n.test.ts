import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { discover, REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { formAction, UserAgent } from './helpers/user-agent.ts';
import { stored } from './helpers/stored.ts';

const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

async function authorizeUrl(server: TestServer, extra: Record<string, string> = {}) {
  const app = await seed(server.env, { redirectUri: REDIRECT_URI });
  const config = await discover(server.issuer, app.clientId, app.clientSecret);
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    state: oidc.randomState(),
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
    ...extra,
  });
  return { url, app };
}

/** The login page a browser with these headers (and cookies) lands on. */
async function loginPage(server: TestServer, ua: UserAgent, extra: Record<string, string> = {}) {
  const { url } = await authorizeUrl(server, extra);
  const step = await ua.follow(url, REDIRECT_URI);
  expect(step.res.status).toBe(200);
  return { url: step.url, html: await step.res.text() };
}

const lang = (html: string) => /<html lang="([^"]+)">/.exec(html)?.[1];

describe('pages in English and Korean', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ PRODUCT_NAME: 'Acme' });
  });
  afterAll(() => server?.close());

  it('discovery lists the languages the pages speak', async () => {
    const metadata = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as { ui_locales_supported?: string[] };
    expect(metadata.ui_locales_supported).toEqual(['en', 'ko']);
  });

  it('answers in the language of Accept-Language, with <html lang> to match', async () => {
    const english = await loginPage(server, new UserAgent({ headers: { 'accept-language': 'en-US,en;q=0.9' } }));
    expect(lang(english.html)).toBe('en');
    expect(english.html).toContain('<h1>Sign in to Acme</h1>');
    const korean = await loginPage(server, new UserAgent({ headers: { 'accept-language': 'ko-KR,ko;q=0.9,en;q=0.5' } }));
    expect(lang(korean.html)).toBe('ko');
    expect(korean.html).toContain('<h1>Acme에 로그인</h1>');
    expect(korean.html).toContain('비밀번호');
  });

  it('ui_locales from the app wins over everything; the switcher’s cookie wins over Accept-Language', async () => {
    const ua = new UserAgent({ headers: { 'accept-language': 'en' } });
    const fromApp = await loginPage(server, ua, { ui_locales: 'ko' });
    expect(lang(fromApp.html)).toBe('ko');

    // The switcher: a link per language that remembers the choice and comes back to the page.
    const korean = await loginPage(server, ua);
    expect(lang(korean.html)).toBe('en');
    const link = /href="(\/locale\/ko\?return=[^"]+)"/.exec(korean.html)![1]!.replaceAll('&amp;', '&');
    const switched = await ua.request(new URL(link, server.issuer));
    expect(switched.status).toBe(303);
    expect(switched.headers.get('location')).toBe(new URL(korean.url).pathname);
    expect(switched.headers.get('set-cookie')).toMatch(/^idp_locale=ko; Max-Age=31536000; Path=\/; HttpOnly; SameSite=Lax/);
    const back = await ua.request(korean.url);
    expect(lang(await back.text())).toBe('ko');

    // ... and ui_locales still wins over the cookie.
    expect(lang((await loginPage(server, ua, { ui_locales: 'en' })).html)).toBe('en');
  });

  it('the switcher only goes back to a page of this site', async () => {
    for (const back of ['https://evil.example.com/', '//evil.example.com/', '/\\evil.example.com', 'javascript:alert(1)']) {
      const res = await fetch(`${server.issuer}/locale/ko?return=${encodeURIComponent(back)}`, { redirect: 'manual' });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/');
    }
    // An unknown language changes nothing.
    const res = await fetch(`${server.issuer}/locale/xx?return=/`, { redirect: 'manual' });
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('GET / is a landing page with the discovery address; an unknown path is a page for browsers and JSON for programs', async () => {
    const landing = await fetch(`${server.issuer}/`, { headers: { ...HTML, 'accept-language': 'ko' } });
    expect(landing.status).toBe(200);
    const html = await landing.text();
    expect(html).toContain('<h1>Acme</h1>');
    expect(html).toContain(`${server.issuer}/.well-known/openid-configuration`);
    expect(lang(html)).toBe('ko');

    const page = await fetch(`${server.issuer}/no/such/page`, { headers: HTML });
    expect(page.status).toBe(404);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await page.text()).toContain('Page not found');

    const api = await fetch(`${server.issuer}/no/such/page`, { headers: { accept: 'application/json' } });
    expect(api.status).toBe(404);
    expect(await api.json()).toEqual({ error: 'not_found', error_description: 'No such endpoint.' });
  });

  it('an interaction address this browser never opened is "not valid here", not "expired"; one it opened and lost is "expired"', async () => {
    const stranger = await new UserAgent().request(`${server.issuer}/interaction/made-up-id`, { headers: HTML });
    expect(stranger.status).toBe(400);
    const unknownHtml = await stranger.text();
    expect(unknownHtml).toContain('This sign-in page is not valid here');
    expect(unknownHtml).not.toContain('expired');

    const ua = new UserAgent();
    const started = await loginPage(server, ua);
    // Another browser with the same address: not its sign-in.
    expect(await (await new UserAgent().request(started.url)).text()).toContain('This sign-in page is not valid here');
    // The sign-in outlives its time (its stored interaction is gone): the browser that started it is told so.
    const uid = new URL(started.url).pathname.split('/').pop()!;
    await stored(server).destroy('Interaction', uid);
    const expired = await ua.request(started.url);
    expect(expired.status).toBe(400);
    expect(await expired.text()).toContain('This sign-in has expired');
  });

  it('the provider’s refusals read in words, with the code for support and the detail for developers', async () => {
    const res = await fetch(`${server.issuer}/authorize?client_id=no-such-app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`, { headers: { ...HTML, 'accept-language': 'ko' } });
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).toContain('등록되지 않은 애플리케이션입니다');
    expect(html).toContain('<code>invalid_client</code>');
    expect(html).toMatch(/<details class="small"><summary>애플리케이션 개발자를 위한 세부 정보<\/summary><p><code>client is invalid/);
    const { url } = await authorizeUrl(server, { redirect_uri: 'https://elsewhere.example.com/cb' });
    const wrongRedirect = await (await fetch(url, { headers: HTML })).text();
    expect(wrongRedirect).toContain('The application asked to send you back to an address it has not registered');
    expect(wrongRedirect).toContain('<code>invalid_redirect_uri</code>');
  });
});

describe('a theme folder', () => {
  let server: TestServer;
  let theme: string;
  beforeAll(async () => {
    theme = mkdtempSync(join(tmpdir(), 'idp-theme-'));
    mkdirSync(join(theme, 'assets'));
    mkdirSync(join(theme, 'locales'));
    // An operator's login page that forgot the CSRF field, and their stylesheet, logo and wording.
    const login = readFileSync(new URL('../views/login.eta', import.meta.url), 'utf8')
      .replace('<input type="hidden" name="_csrf" value="<%= it.csrfToken %>">', '')
      .replace('<h1><%= title %></h1>', '<h1 class="themed"><%= title %></h1>');
    writeFileSync(join(theme, 'login.eta'), login);
    writeFileSync(join(theme, 'assets', 'style.css'), '.themed { color: rebeccapurple; }\n');
    writeFileSync(join(theme, 'assets', 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"/>');
    writeFileSync(join(theme, 'locales', 'en.json'), JSON.stringify({ 'login.submit': 'Continue' }));
    server = await startServer({ THEME_DIR: theme, PRODUCT_NAME: 'Acme', BRAND_LOGO_URL: '/assets/logo.svg', BRAND_COLOR: '#ffcc00' });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(theme, { recursive: true, force: true });
  });

  it('replaces templates, stylesheet, assets and wording file by file; the rest stays built in', async () => {
    const ua = new UserAgent();
    const page = await loginPage(server, ua);
    expect(page.html).toContain('<h1 class="themed">Sign in to Acme</h1>');
    expect(page.html).toContain('>Continue</button>');
    expect(page.html).toContain('<img src="/assets/logo.svg" alt="Acme" class="logo">');
    expect(await (await fetch(`${server.issuer}/assets/style.css`)).text()).toContain('rebeccapurple');
    expect((await fetch(`${server.issuer}/assets/logo.svg`)).headers.get('content-type')).toBe('image/svg+xml');
    expect((await fetch(`${server.issuer}/assets/pages.js`)).status).toBe(200);
    // A light brand colour is darkened until links on white read at 4.5:1 (test/unit/brand.test.ts).
    const brand = await (await fetch(`${server.issuer}/assets/brand.css`)).text();
    expect(brand).toMatch(/^:root \{ --accent: #[0-9a-f]{6}; --on-accent: #(000000|ffffff); \}/);
    expect(brand.split('\n')[0]).not.toContain('#ffcc00;');
    // Built-in pages are still there.
    const notFound = await fetch(`${server.issuer}/nothing`, { headers: HTML });
    expect(await notFound.text()).toContain('Page not found');
  });

  it('cannot switch off the CSRF check, the CSP or escaping', async () => {
    const ua = new UserAgent();
    const page = await loginPage(server, ua);
    const loginForm = page.html.slice(page.html.indexOf('/login"'), page.html.indexOf('</form>'));
    expect(loginForm).toContain('name="password"');
    expect(loginForm).not.toContain('name="_csrf"');
    const res = await ua.request(new URL(formAction(page.html, '/login'), page.url), {
      method: 'POST',
      body: new URLSearchParams({ email: 'a@example.com', password: 'whatever' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.issuer },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await res.text()).toContain('This form cannot be accepted');
  });

  it('a theme template that prints data unescaped, or replaces no page, is refused at start with one clear line', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'idp-theme-bad-'));
    try {
      writeFileSync(join(bad, 'consent.eta'), '<p><%~ it.clientName %></p>');
      await expect(buildApp(loadConfig({ ...server.env, THEME_DIR: bad }))).rejects.toThrow('THEME_DIR: consent.eta prints "it.clientName" unescaped; use <%= %>, which escapes');
      rmSync(join(bad, 'consent.eta'));
      writeFileSync(join(bad, 'signin.eta'), '<p></p>');
      await expect(buildApp(loadConfig({ ...server.env, THEME_DIR: bad }))).rejects.toThrow(/THEME_DIR: signin\.eta does not replace a page/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
    expect(() => loadConfig({ ...server.env, THEME_DIR: '/no/such/folder' })).toThrow(/THEME_DIR: must be an existing folder/);
    expect(() => loadConfig({ ...server.env, BRAND_LOGO_URL: 'http://example.com/logo.png' })).toThrow(/BRAND_LOGO_URL: must be an https URL or a path on this server/);
  });
});
