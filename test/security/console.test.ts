// The admin console: ASVS V3.4.3 (CSP without inline script), V8.2.1 (authorization at the
// service, not the UI), V10.1.1 / V10.2 (tokens kept out of storage that outlives the page),
// RFC 9700 §4.7 (CSRF on the redirect: state and PKCE), OAuth 2.0 for Browser-Based Apps.
import type { Browser, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveBrowser, launchBrowser } from '../helpers/browser.ts';
import { createPerson } from '../helpers/cli.ts';
import { openConsole, signInToConsole } from '../helpers/console.ts';
import { authorize, discover } from '../helpers/flow.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';

const PASSWORD = 'a long enough password';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

describe('the console page', () => {
  it('SEC-AC-01 is served with a CSP that allows no inline script or style and no other origin, is never framed or cached, and holds no inline script', async () => {
    for (const path of ['/console/', '/console/users/some-id', '/console/callback']) {
      const res = await fetch(`${server.issuer}${path}`);
      expect(res.status).toBe(200);
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      const html = await res.text();
      for (const script of html.match(/<script\b[^>]*>[\s\S]*?<\/script>/g) ?? []) expect(script).toMatch(/^<script\b[^>]*\bsrc="\/console\/assets\/[\w.-]+\.js"[^>]*><\/script>$/);
      expect(html).not.toMatch(/\sstyle=|\son\w+=/);
    }
  });
});

describe.skipIf(!haveBrowser)('the console in a browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('SEC-AC-02 keeps the admin’s tokens in the page’s memory only: nothing in localStorage, sessionStorage or readable cookies after signing in', async () => {
    const admin = await createPerson(server.env, PASSWORD, ['idp-admin']);
    const tab = await openConsole(browser, server.issuer);
    await signInToConsole(tab, admin.email, PASSWORD);
    await tab.page.getByRole('heading', { name: 'Overview' }).waitFor();
    const stored = await tab.page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookies: document.cookie }));
    expect(stored).toEqual({ local: 0, session: 0, cookies: '' });
    expect(tab.cspViolations).toEqual([]);
    await tab.page.context().close();
  });

  it('SEC-AC-03 a person without an admin role gets "You are not an administrator" and the console asks the admin API for nothing', async () => {
    const person = await createPerson(server.env, PASSWORD);
    const tab = await openConsole(browser, server.issuer);
    const adminCalls: string[] = [];
    tab.page.on('request', (r: Request) => {
      if (new URL(r.url()).pathname.startsWith('/admin/')) adminCalls.push(r.url());
    });
    await signInToConsole(tab, person.email, PASSWORD);
    await tab.page.getByRole('heading', { name: 'You are not an administrator' }).waitFor();
    expect(await tab.page.getByRole('navigation', { name: 'Sections' }).count()).toBe(0);
    expect(adminCalls).toEqual([]);
    await tab.page.context().close();
  });

  it('SEC-AC-04 a viewer’s console shows no write control, and a write sent with the viewer’s own token is refused with 403', async () => {
    const viewer = await createPerson(server.env, PASSWORD, ['idp-viewer']);
    const tab = await openConsole(browser, server.issuer);
    const bearer = new Promise<string>((resolve) =>
      tab.page.on('request', (r: Request) => {
        const header = r.headers().authorization;
        if (new URL(r.url()).pathname.startsWith('/admin/v1/') && header) resolve(header);
      }),
    );
    await signInToConsole(tab, viewer.email, PASSWORD);
    await tab.page.getByRole('heading', { name: 'Overview' }).waitFor();
    await tab.page.getByText('Read only').waitFor();
    const forced = await fetch(`${server.issuer}/admin/v1/roles`, { method: 'POST', headers: { authorization: await bearer, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'viewer-made' }) });
    expect(forced.status).toBe(403);
    expect(((await forced.json()) as { error: string }).error).toBe('insufficient_scope');
    await tab.page.context().close();
  });

  it('SEC-AC-05 a callback the tab did not start (forged code and state) is refused before any token request', async () => {
    const tab = await openConsole(browser, server.issuer);
    await tab.page.getByLabel('Email').waitFor();
    const tokenRequests: string[] = [];
    tab.page.on('request', (r: Request) => {
      if (new URL(r.url()).pathname === '/token') tokenRequests.push(r.url());
    });
    await tab.page.goto(`${server.issuer}/console/callback?code=forged&state=forged&iss=${encodeURIComponent(server.issuer)}`);
    await tab.page.getByRole('heading', { name: 'Sign-in did not complete' }).waitFor();
    expect(tokenRequests).toEqual([]);
    await tab.page.context().close();
  });

  it('SEC-AC-06 signing out ends the session at the IdP (RP-initiated logout): the console then needs the password again', async () => {
    const admin = await createPerson(server.env, PASSWORD, ['idp-admin']);
    const tab = await openConsole(browser, server.issuer);
    await signInToConsole(tab, admin.email, PASSWORD);
    await tab.page.getByRole('button', { name: 'Sign out' }).click();
    await tab.page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await tab.page.getByRole('heading', { name: 'You have signed out' }).waitFor();
    await tab.page.getByRole('button', { name: 'Sign in' }).click();
    await tab.page.getByLabel('Password').waitFor();
    expect(new URL(tab.page.url()).pathname).not.toMatch(/^\/console/);
    await tab.page.context().close();
  });
});

/** A person's admin API token, as the console gets it (code + PKCE as idp-console, from the issuer's origin). */
async function consoleToken(email: string): Promise<string> {
  const redirectUri = `${server.issuer}/console/callback`;
  const started = await authorize(new UserAgent(), await discover(server.issuer, 'idp-console'), { scope: 'openid admin admin:read', resource: 'urn:idp:admin', login: { email, password: PASSWORD }, consent: false, redirectUri });
  const res = await fetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { origin: server.issuer, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'idp-console', code: started.callbackUrl.searchParams.get('code')!, redirect_uri: redirectUri, code_verifier: started.codeVerifier, resource: 'urn:idp:admin' }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

describe('administrators in person', () => {
  it('SEC-AC-07 cannot disable or delete their own account, or take away their own idp-admin role, through the admin API (409, nothing changes); another administrator can', async () => {
    const [me, other] = [await createPerson(server.env, PASSWORD, ['idp-admin']), await createPerson(server.env, PASSWORD, ['idp-admin'])];
    const token = await consoleToken(me.email);
    const call = (method: string, path: string) => fetch(`${server.issuer}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    for (const [method, path] of [
      ['POST', `/users/${me.id}/disable`],
      ['DELETE', `/users/${me.id}`],
      ['DELETE', `/users/${me.id}/roles/idp-admin`],
    ] as const) {
      const refused = await call(method, path);
      expect(refused.status).toBe(409);
      expect(((await refused.json()) as { error_description: string }).error_description).toMatch(/you cannot .* your own/);
    }
    const mine = (await (await call('GET', `/users/${me.id}`)).json()) as { disabled: boolean };
    expect(mine.disabled).toBe(false);
    expect(((await (await call('GET', `/users/${me.id}/roles`)).json()) as { items: { name: string }[] }).items.map((r) => r.name)).toEqual(['idp-admin']);
    expect((await call('DELETE', `/users/${other.id}/roles/idp-admin`)).status).toBe(204);
    expect((await call('POST', `/users/${other.id}/disable`)).status).toBe(200);
    expect((await call('DELETE', `/users/${other.id}`)).status).toBe(204);
  });
});

describe('the console’s client at the token endpoint', () => {
  it("SEC-CO-03 the console's code is redeemed from the issuer's own origin; from another origin it is refused and stays usable", async () => {
    const person = await createPerson(server.env, PASSWORD, ['idp-admin']);
    const redirectUri = `${server.issuer}/console/callback`;
    const started = await authorize(new UserAgent(), await discover(server.issuer, 'idp-console'), {
      scope: 'openid admin',
      resource: 'urn:idp:admin',
      login: { email: person.email, password: PASSWORD },
      consent: false,
      redirectUri,
    });
    const code = started.callbackUrl.searchParams.get('code')!;
    const verifier = started.codeVerifier;
    const exchange = (origin: string) =>
      fetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'idp-console', code, redirect_uri: redirectUri, code_verifier: verifier, resource: 'urn:idp:admin' }),
      });
    const evil = await exchange('https://evil.example');
    expect(evil.status).toBe(400);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const own = await exchange(server.issuer);
    expect(own.status).toBe(200);
    expect(((await own.json()) as { scope: string }).scope).toContain('admin');
  });
});
