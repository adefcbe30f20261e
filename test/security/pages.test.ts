// The pages a person sees: RFC 9700 §4.11 (open redirectors), OWASP XSS prevention (output
// encoding), RFC 6749 §10.12 (CSRF) for the forms a theme may restyle.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { authorize, REDIRECT_URI } from '../helpers/flow.ts';
import { csrfToken, formAction, UserAgent } from '../helpers/user-agent.ts';
import { securityContext } from './setup.ts';
import { stored } from '../helpers/stored.ts';

const ctx = securityContext();
const HTML = { accept: 'text/html' };

describe('pages', () => {
  it.each([
    ['another origin', 'https://evil.example.com/'],
    ['a scheme-relative address', '//evil.example.com/x'],
    ['a backslash', '/\\evil.example.com'],
    ['a header break', '/\r\nSet-Cookie:x=y'],
    ['javascript:', 'javascript:alert(1)'],
    ['a scheme without slashes', 'http:/evil.example.com'],
  ])(
    'SEC-PG-01 the language switcher is no open redirector: a return address with %s goes to / of this site',
    async (_name, back) => {
      const res = await fetch(`${ctx.server.issuer}/locale/ko?return=${encodeURIComponent(back)}`, { redirect: 'manual' });
      expect(res.status).toBe(303);
      const location = res.headers.get('location')!;
      expect(new URL(location, ctx.server.issuer).origin).toBe(ctx.server.issuer);
      expect(location).toBe('/');
      expect(res.headers.getSetCookie().every((c) => c.startsWith('idp_locale='))).toBe(true);
    },
  );

  it('SEC-PG-02 what an app puts in an authorization request is escaped on every error page', async () => {
    const script = '<script>alert(1)</script>';
    const res = await fetch(`${ctx.server.issuer}/authorize?client_id=${encodeURIComponent(script)}&response_type=code&redirect_uri=${encodeURIComponent(`${REDIRECT_URI}?"${script}`)}`, { headers: HTML });
    const html = await res.text();
    expect(res.status).toBe(400);
    expect(html).not.toContain(script);
    expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self'(;| 'sha256)/);
  });

  it('SEC-PG-03 a theme cannot print data unescaped: a template with raw output is refused at start', async () => {
    const theme = mkdtempSync(join(tmpdir(), 'idp-theme-'));
    try {
      writeFileSync(join(theme, 'login.eta'), readFileSync(new URL('../../views/login.eta', import.meta.url), 'utf8').replace("<%= it.t('login.continueTo'", "<%~ it.t('login.continueTo'"));
      await expect(buildApp(loadConfig({ ...ctx.server.env, THEME_DIR: theme }))).rejects.toThrow(/THEME_DIR: login\.eta prints "it\.t\('login\.continueTo', \{ app: it\.clientName \}\)" unescaped/);
    } finally {
      rmSync(theme, { recursive: true, force: true });
    }
  });

  it('SEC-PG-04 "Not you?" ends the session only through its own page’s form: without its CSRF token, or from another site, it is refused and the person stays signed in', async () => {
    const ua = new UserAgent();
    const pending = await authorize(ua, ctx.config, { login: { email: ctx.app.email, password: ctx.app.password }, scope: 'openid phone', prompt: 'consent', consent: false });
    const html = await pending.last.res.text();
    const action = new URL(formAction(html, '/switch'), pending.last.url).href;
    const withoutToken = await ua.request(action, { method: 'POST', body: new URLSearchParams({}), headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ctx.server.issuer } });
    expect(withoutToken.status).toBe(403);
    const crossSite = await ua.request(action, { method: 'POST', body: new URLSearchParams({ _csrf: csrfToken(html) }), headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example.com' } });
    expect(crossSite.status).toBe(403);
    expect(await stored(ctx.server).count('Session', { accountId: ctx.app.userId })).toBeGreaterThan(0);
  });
});
