import type { Browser, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveBrowser, launchBrowser, screenshotPath } from './helpers/browser.ts';
import { createPerson } from './helpers/cli.ts';
import { expectAccessible, openConsole, signInToConsole } from './helpers/console.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const PASSWORD = 'a long enough password';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

describe('serving the console', () => {
  it('answers every path under /console/ with the app, in the language the request asks for, and /console with a redirect', async () => {
    const moved = await fetch(`${server.issuer}/console`, { redirect: 'manual' });
    expect(moved.status).toBe(308);
    expect(moved.headers.get('location')).toBe('/console/');
    const deep = await fetch(`${server.issuer}/console/applications/some-client`, { headers: { 'accept-language': 'ko-KR,ko;q=0.9' } });
    expect(deep.status).toBe(200);
    const html = await deep.text();
    expect(html).toContain('<html lang="ko">');
    expect(html).toContain(`<meta name="idp-issuer" content="${server.issuer}">`);
    expect(html).toContain('<meta name="idp-client-id" content="idp-console">');
  });

  it('caches the hashed assets for good and answers an unknown one with 404', async () => {
    const html = await (await fetch(`${server.issuer}/console/`)).text();
    const assets = [...html.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true);
    for (const asset of assets) {
      const res = await fetch(`${server.issuer}${asset}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('content-type')).toMatch(asset.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
    }
    expect((await fetch(`${server.issuer}/console/assets/index-missing.js`)).status).toBe(404);
  });

  it('serves the console’s words per language from the messages catalogue, and says which languages there are for an unknown one', async () => {
    const ko = (await (await fetch(`${server.issuer}/console/messages/ko.json`)).json()) as Record<string, string>;
    expect(ko['console.notAdmin.title']).toBe('관리자가 아닙니다');
    expect(Object.keys(ko).every((k) => k.startsWith('console.'))).toBe(true);
    const unknown = await fetch(`${server.issuer}/console/messages/xx.json`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error_description: string }).error_description).toContain('en, ko');
  });

  it('counts sign-ins and failures per day for the overview (GET /admin/v1/stats/sign-ins)', async () => {
    const { adminApi } = await import('./helpers/admin.ts');
    const admin = await adminApi(server);
    const person = await createPerson(server.env, PASSWORD);
    const before = await admin.call<{ days: { date: string; succeeded: number; failed: number }[] }>('GET', '/admin/v1/stats/sign-ins?days=3');
    expect(before.status).toBe(200);
    expect(before.body.days.map((d) => d.date)).toEqual([2, 1, 0].map((n) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10)));
    const { UserAgent } = await import('./helpers/user-agent.ts');
    const { authorize, discover } = await import('./helpers/flow.ts');
    const config = await discover(server.issuer, 'idp-console');
    const redirectUri = `${server.issuer}/console/callback`;
    await authorize(new UserAgent(), config, { scope: 'openid', login: { email: person.email, password: 'wrong password!' }, consent: false, redirectUri });
    await authorize(new UserAgent(), config, { scope: 'openid', login: { email: person.email, password: PASSWORD }, consent: false, redirectUri });
    const after = await admin.call<typeof before.body>('GET', '/admin/v1/stats/sign-ins?days=3');
    const [today, todayBefore] = [after.body.days.at(-1)!, before.body.days.at(-1)!];
    expect({ succeeded: today.succeeded - todayBefore.succeeded, failed: today.failed - todayBefore.failed }).toEqual({ succeeded: 1, failed: 1 });
    expect((await admin.call('GET', '/admin/v1/stats/sign-ins?days=0')).status).toBe(400);
    expect((await admin.call('GET', '/admin/v1/stats/sign-ins?days=abc')).status).toBe(400);
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

  it('an idp-admin signs in through the sign-in page, lands where they were going, and the overview passes axe in English and Korean, and at 390 px', async () => {
    const admin = await createPerson(server.env, PASSWORD, ['idp-admin']);
    const tab = await openConsole(browser, server.issuer);
    await tab.page.goto(`${server.issuer}/console/?from=bookmark`);
    await signInToConsole(tab, admin.email, PASSWORD);
    expect(new URL(tab.page.url()).search).toBe('?from=bookmark');
    await tab.page.getByRole('heading', { name: 'Overview' }).waitFor();
    await tab.page.getByRole('link', { name: /Users/ }).first().waitFor();
    await tab.page.getByText(admin.email).waitFor();
    await expectAccessible(tab.page, 'overview (en)');
    await tab.page.getByText('Show as a table').click();
    await expectAccessible(tab.page, 'overview with its table (en)');
    await tab.page.screenshot({ path: screenshotPath('console-overview'), fullPage: true });

    await tab.page.getByRole('button', { name: '한국어' }).click();
    await tab.page.getByRole('heading', { name: '개요' }).waitFor();
    expect(await tab.page.getAttribute('html', 'lang')).toBe('ko');
    await expectAccessible(tab.page, 'overview (ko)');
    await tab.page.setViewportSize({ width: 390, height: 844 });
    expect(await tab.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await expectAccessible(tab.page, 'overview (ko, 390 px)');
    await tab.page.screenshot({ path: screenshotPath('console-overview-ko-390'), fullPage: true });
    expect(tab.cspViolations).toEqual([]);
    expect(tab.errors).toEqual([]);
    await tab.page.context().close();
  });

  it('every screen, and every form and detail, passes axe-core in English and in Korean, with no CSP violation and no script error', async () => {
    const { adminApi } = await import('./helpers/admin.ts');
    const api = await adminApi(server);
    const admin = await createPerson(server.env, PASSWORD, ['idp-admin']);
    const resource = (await api.call<{ id: string }>('POST', '/admin/v1/resources', { identifier: 'https://sweep.example.com', name: 'Sweep', scopes: ['sweep:read'] })).body;
    const client = (await api.call<{ client: { clientId: string } }>('POST', '/admin/v1/clients', { name: 'Sweep app', redirectUris: ['https://sweep.example.com/cb'] })).body.client;
    await api.call('POST', '/admin/v1/providers', { id: 'sweep-google', preset: 'google', clientId: 'sweep.apps.googleusercontent.com', clientSecret: 'not a real secret' });
    const screens = [
      '',
      'applications',
      'applications/new',
      `applications/${client.clientId}`,
      'apis',
      'apis/new',
      `apis/${resource.id}`,
      'users',
      'users/new',
      `users/${admin.id}`,
      'roles',
      'roles/new',
      'roles/idp-admin',
      'sign-in-services',
      'sign-in-services/new',
      'sign-in-services/sweep-google',
      'keys',
      'audit',
      'settings',
    ];
    for (const locale of ['en-US', 'ko-KR']) {
      const tab = await openConsole(browser, server.issuer, { locale });
      await signInToConsole(tab, admin.email, PASSWORD);
      for (const screen of screens) {
        await tab.page.goto(`${server.issuer}/console/${screen}`);
        await tab.page.locator('#screen-title').waitFor();
        await expect.poll(() => tab.page.getByRole('status').filter({ hasText: /Loading|불러오는 중/ }).count()).toBe(0);
        expect(await tab.page.getAttribute('html', 'lang')).toBe(locale.slice(0, 2));
        await expectAccessible(tab.page, `/console/${screen} (${locale})`);
      }
      expect(tab.cspViolations).toEqual([]);
      expect(tab.errors).toEqual([]);
      await tab.page.context().close();
    }
  }, 180_000);

  it('refreshes the access token before it expires, with the rotating refresh token, and carries on', async () => {
    const admin = await createPerson(server.env, PASSWORD, ['idp-admin']);
    // A tab whose clock the test moves on: the console sees its token about to expire.
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    await page.clock.install();
    const grants: string[] = [];
    page.on('request', (r: Request) => {
      if (new URL(r.url()).pathname === '/token') grants.push(new URLSearchParams(r.postData() ?? '').get('grant_type') ?? '');
    });
    const lifetime = page.waitForResponse((r) => new URL(r.url()).pathname === '/token').then(async (r) => ((await r.json()) as { expires_in: number }).expires_in);
    await page.goto(`${server.issuer}/console/`);
    await signInToConsole({ page, cspViolations: [], errors: [] }, admin.email, PASSWORD);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    expect(grants).toEqual(['authorization_code']);
    // Within the console's margin of 30 s before the token expires.
    await page.clock.fastForward(((await lifetime) - 20) * 1000);
    const sections = page.getByRole('navigation', { name: 'Sections' });
    await sections.getByRole('link', { name: 'Roles' }).click();
    await page.getByRole('heading', { name: 'Roles' }).waitFor();
    await sections.getByRole('link', { name: 'Overview' }).click();
    await page.locator('.counts').waitFor();
    expect(grants).toEqual(['authorization_code', 'refresh_token']);
    await context.close();
  });
});
