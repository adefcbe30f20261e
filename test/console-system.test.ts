import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminApi, adminApi } from './helpers/admin.ts';
import { haveBrowser, launchBrowser } from './helpers/browser.ts';
import { createPerson } from './helpers/cli.ts';
import { type ConsoleTab, expectAccessible, openConsole, signInToConsole } from './helpers/console.ts';
import { account, callback, type FederationContext, finishAtApp, pressButton } from './helpers/federation.ts';
import { discover, REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { startGoogleStandIn, type Upstream } from './helpers/upstream.ts';
import { UserAgent } from './helpers/user-agent.ts';

const PASSWORD = 'a long enough password';

/** What the server's environment says, beyond the defaults, for the settings route to show. */
const ENV = { PRODUCT_NAME: 'Acme Sign-in', SUPPORT_URL: 'https://help.acme.example/', SIGNUP: 'invite', ACCESS_TOKEN_TTL: '300', KEY_PREPUBLICATION_SECONDS: '1200' };

interface Provider {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  buttonLabel: string;
  hostedDomains: string[];
  enabled: boolean;
}
interface SigningKey {
  kid: string;
  state: string;
}

describe('GET /admin/v1/settings', () => {
  let server: TestServer;
  let api: AdminApi;

  beforeAll(async () => {
    server = await startServer(ENV);
    api = await adminApi(server);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('shows what the environment sets, and never a secret, to an admin:read token', async () => {
    const read = await api.call('GET', '/admin/v1/settings', undefined, await api.token('admin:read'));
    expect(read.status).toBe(200);
    expect(read.body).toEqual({
      issuer: server.issuer,
      brand: { productName: 'Acme Sign-in', colour: '#2563eb', logoUrl: null, faviconUrl: null, supportUrl: 'https://help.acme.example/', termsUrl: null, privacyUrl: null },
      signup: { mode: 'invite', emailDomains: [], requireVerifiedEmail: false, verificationTtl: 86_400, passwordMinLength: 8 },
      mfa: 'optional',
      tokens: { accessToken: 300, idToken: 600, refreshToken: 1_209_600, refreshTokenIdle: 604_800, authorizationCode: 60, session: 1_209_600 },
      languages: { default: 'en', available: expect.arrayContaining(['en', 'ko']) },
      keys: { prepublicationSeconds: 1200, rotationDays: 0 },
      google: { configured: false, hostedDomains: [] },
      auditRetentionDays: 90,
    });
    expect(read.headers.get('cache-control')).toBe('no-store');
  });

  it('refuses a request without a token', async () => {
    const anonymous = await api.call('GET', '/admin/v1/settings', undefined, null);
    expect(anonymous.status).toBe(401);
  });

  it('is documented in the OpenAPI document, readable with admin:read', async () => {
    const doc = (await api.call<{ paths: Record<string, { get?: { security: unknown[] } }> }>('GET', '/admin/openapi.json')).body;
    expect(doc.paths['/admin/v1/settings']?.get?.security).toEqual([{ oauth2: ['admin:read'] }, { oauth2: ['admin'] }, { bearer: [] }]);
  });
});

describe.skipIf(!haveBrowser)('the console: sign-in services, signing keys, audit trail, settings', () => {
  let server: TestServer;
  let browser: Browser;
  let api: AdminApi;
  let admin: { id: string; email: string };
  let adminTab: ConsoleTab;
  let standIn: Upstream | undefined;

  async function signedIn(who: { email: string }, opts: { width?: number; locale?: string } = {}) {
    const tab = await openConsole(browser, server.issuer, opts);
    await signInToConsole(tab, who.email, PASSWORD);
    return tab;
  }

  /** Opens a console address (the page signs in again silently with the IdP session). */
  async function open(tab: ConsoleTab, path: string, heading: string | RegExp) {
    await tab.page.goto(`${server.issuer}/console/${path}`);
    await tab.page.getByRole('heading', { level: 1, name: heading }).waitFor();
  }

  const noHorizontalScroll = async (tab: ConsoleTab, what: string) => expect(await tab.page.evaluate(() => document.documentElement.scrollWidth), what).toBeLessThanOrEqual(390);
  const keysNow = async () => (await api.call<{ items: SigningKey[] }>('GET', '/admin/v1/keys')).body.items;

  beforeAll(async () => {
    server = await startServer(ENV);
    browser = await launchBrowser();
    api = await adminApi(server);
    admin = await createPerson(server.env, PASSWORD, ['idp-admin']);
    adminTab = await signedIn(admin);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await standIn?.close();
  });

  it('an idp-admin adds Google with the preset, sees the exact redirect URI the server uses, changes and deletes it', async () => {
    const { page } = adminTab;
    await open(adminTab, 'sign-in-services', 'Sign-in services');
    await page.getByText('No sign-in services yet').waitFor();
    await expectAccessible(page, 'sign-in services, empty');

    await page.getByRole('link', { name: 'Add a sign-in service' }).click();
    await page.getByRole('heading', { level: 1, name: 'Add a sign-in service' }).waitFor();
    expect(await page.getByLabel('Google', { exact: true }).isChecked()).toBe(true);
    await page.getByText('https://accounts.google.com').waitFor();
    const shown = await page.locator('.redirect-uri code').textContent();
    expect(shown).toBe(callback(server.issuer, 'google'));
    await page.getByRole('button', { name: 'Copy the redirect URI' }).click();
    await page.getByText('Copied').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(shown);
    await expectAccessible(page, 'sign-in service form, Google');
    await page.screenshot({ path: 'test-artifacts/console-sign-in-service-google.png', fullPage: true });

    // Refused without a client id: what was typed stays.
    await page.getByLabel('Client secret').fill('the secret Google gave');
    await page.getByRole('button', { name: 'Add a sign-in service' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByLabel('Client secret').inputValue()).toBe('the secret Google gave');

    await page.getByLabel('Client ID').fill('1234-abc.apps.googleusercontent.com');
    await page.getByLabel('Allowed domains').fill('example.com');
    await page.getByRole('button', { name: 'Add a sign-in service' }).click();
    await page.getByRole('heading', { level: 1, name: 'Google' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/console/sign-in-services/google');
    const created = await api.call<Provider>('GET', '/admin/v1/providers/google');
    expect(created.body).toMatchObject({ name: 'Google', issuer: 'https://accounts.google.com', clientId: '1234-abc.apps.googleusercontent.com', hostedDomains: ['example.com'], enabled: true });
    expect(created.body).not.toHaveProperty('clientSecret');
    expect(await page.content()).not.toContain('the secret Google gave');
    expect(await page.locator('.redirect-uri code').textContent()).toBe(shown);
    await expectAccessible(page, 'sign-in service detail');

    // The redirect URI shown is the one the server sends: an upstream that accepts only it signs someone in.
    standIn = await startGoogleStandIn([shown!]);
    await api.call('PATCH', '/admin/v1/providers/google', { issuer: standIn.issuer, clientId: standIn.clientId, clientSecret: standIn.clientSecret, hostedDomains: [] });
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const ctx = { server, google: standIn, admin: api, app, config: await discover(server.issuer, app.clientId, app.clientSecret) } satisfies FederationContext;
    standIn.signInAs(account());
    const ua = new UserAgent();
    const { step, pending } = await pressButton(ctx, ua, 'google');
    const tokens = await finishAtApp(ctx, ua, step, pending);
    expect(tokens.claims()?.amr).toEqual(['fed']);

    // Changed in the console: the new values through the API, the secret field empty again.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Google' }).waitFor();
    await page.getByLabel('Button label').fill('Sign in with Google');
    await page.getByLabel('Enabled: show its button on the sign-in page').uncheck();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    expect((await api.call<Provider>('GET', '/admin/v1/providers/google')).body).toMatchObject({ buttonLabel: 'Sign in with Google', enabled: false, issuer: standIn.issuer });
    expect(await page.getByLabel('Client secret').inputValue()).toBe('');

    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').waitFor();
    await expectAccessible(page, 'sign-in service, delete dialog');
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign-in services' }).waitFor();
    expect((await api.call('GET', '/admin/v1/providers/google')).status).toBe(404);
  });

  it('an idp-admin adds another OpenID Connect provider with the generic form', async () => {
    const { page } = adminTab;
    await open(adminTab, 'sign-in-services/new', 'Add a sign-in service');
    await page.getByLabel('OpenID Connect', { exact: true }).check();
    expect(await page.getByLabel('Id', { exact: true }).inputValue()).toBe('');
    await page.getByLabel('Id', { exact: true }).fill('acme');
    expect(await page.locator('.redirect-uri code').textContent()).toBe(callback(server.issuer, 'acme'));
    await page.getByLabel('Name').fill('Acme SSO');
    await page.getByLabel('Issuer').fill('https://sso.acme.example');
    await page.getByLabel('Client ID').fill('our-client');
    await page.getByLabel('Client secret').fill('acme secret');
    expect(await page.getByLabel('Scopes').inputValue()).toBe('openid email profile');
    await expectAccessible(page, 'sign-in service form, OpenID Connect');
    await page.getByRole('button', { name: 'Add a sign-in service' }).click();
    await page.getByRole('heading', { level: 1, name: 'Acme SSO' }).waitFor();
    expect((await api.call<Provider>('GET', '/admin/v1/providers/acme')).body).toMatchObject({ name: 'Acme SSO', issuer: 'https://sso.acme.example', clientId: 'our-client', buttonLabel: 'Continue with Acme SSO' });

    await open(adminTab, 'sign-in-services', 'Sign-in services');
    const row = page.getByRole('row', { name: /Acme SSO/ });
    await row.getByText('OpenID Connect').waitFor();
    await row.getByText('Enabled').waitFor();
    await row.getByText('https://sso.acme.example').waitFor();
    await expectAccessible(page, 'sign-in services list');
    await page.screenshot({ path: 'test-artifacts/console-sign-in-services.png' });
  });

  it('an idp-admin rotates the signing keys and sees the new ones; a second rotation is refused clearly', async () => {
    const { page } = adminTab;
    const before = await keysNow();
    await open(adminTab, 'keys', 'Signing keys');
    for (const key of before) await page.getByText(key.kid).waitFor();
    await expectAccessible(page, 'signing keys');

    await page.getByRole('button', { name: 'Rotate keys' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('after the pre-publication period (20 minutes)').waitFor();
    await expectAccessible(page, 'signing keys, rotate dialog');
    await dialog.getByRole('button', { name: 'Start the rotation' }).click();
    await page.getByText('Rotation started: the new keys are published and sign from').waitFor();

    const fresh = (await keysNow()).filter((k) => !before.some((b) => b.kid === k.kid));
    expect(fresh.length).toBeGreaterThanOrEqual(3);
    expect(fresh.every((k) => k.state === 'next')).toBe(true);
    for (const key of fresh) await page.getByRole('row', { name: new RegExp(key.kid) }).getByText('Published, signs soon').waitFor();
    await page.screenshot({ path: 'test-artifacts/console-keys.png', fullPage: true });

    await page.getByRole('button', { name: 'Rotate keys' }).click();
    await dialog.getByRole('button', { name: 'Start the rotation' }).click();
    await dialog.getByRole('alert').getByText('A rotation is already under way').waitFor();
    await expectAccessible(page, 'signing keys, rotation refused');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect((await keysNow()).length).toBe(before.length + fresh.length);
  });

  it('the audit trail shows the admin’s own changes, filters through the address, and pages', async () => {
    const { page } = adminTab;
    await open(adminTab, 'audit', 'Audit trail');
    const mine = page.getByRole('row', { name: /identity_provider\.deleted/ });
    const actor = mine.getByRole('link', { name: `user:${admin.id}` });
    expect(await actor.getAttribute('href')).toBe(`/console/users/${admin.id}`);
    expect(await mine.getByRole('link', { name: 'google' }).getAttribute('href')).toBe('/console/sign-in-services/google');
    await page.getByRole('row', { name: /keys\.rotated/ }).first().getByRole('link', { name: `user:${admin.id}` }).waitFor();
    await expectAccessible(page, 'audit trail');

    for (let i = 0; i < 30; i++) {
      const created = await api.call('POST', '/admin/v1/roles', { name: `audited-${i}`, description: 'For paging' });
      expect(created.status).toBe(201);
    }

    await page.getByLabel('Action', { exact: true }).fill('role.created');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL((u) => u.searchParams.get('action') === 'role.created');
    await page.getByText('30 events').waitFor();
    expect(await page.locator('tbody tr').count()).toBe(25);
    const clientActor = page.getByRole('link', { name: `client:${api.clientId}` }).first();
    expect(await clientActor.getAttribute('href')).toBe(`/console/applications/${api.clientId}`);
    await page.screenshot({ path: 'test-artifacts/console-audit.png' });

    await page.reload();
    await page.getByText('30 events').waitFor();
    expect(await page.getByLabel('Action', { exact: true }).inputValue()).toBe('role.created');

    await page.getByRole('button', { name: 'Next' }).click();
    await page.waitForURL((u) => u.searchParams.get('offset') === '25' && u.searchParams.get('action') === 'role.created');
    await page.getByText('26–30 of 30').waitFor();
    expect(await page.locator('tbody tr').count()).toBe(5);
    await page.getByRole('row', { name: /audited-0/ }).waitFor();

    // A time range: the local time typed is sent in UTC.
    await page.getByLabel('From', { exact: true }).fill('2000-01-01T00:00');
    await page.getByRole('button', { name: 'Apply' }).click();
    const since = await page.evaluate(() => new Date('2000-01-01T00:00').toISOString());
    await page.waitForURL((u) => u.searchParams.get('since') === since && u.searchParams.get('action') === 'role.created' && !u.searchParams.has('offset'));
    await page.getByText('30 events').waitFor();
    await page.getByLabel('To', { exact: true }).fill('2000-01-02T00:00');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText('0 events').waitFor();

    await page.getByRole('button', { name: 'Clear' }).click();
    await page.waitForURL((u) => u.pathname === '/console/audit' && u.search === '');
    expect(await page.getByLabel('Action', { exact: true }).inputValue()).toBe('');
    await page.getByRole('row', { name: /audited-29/ }).waitFor();
  });

  it('the settings screen shows the issuer and what the environment sets', async () => {
    const { page } = adminTab;
    await open(adminTab, 'settings', 'Settings');
    await page.getByText('apply when the server restarts').waitFor();
    const issuer = page.getByRole('row', { name: /^Issuer/ });
    await issuer.getByText(server.issuer, { exact: true }).waitFor();
    await issuer.getByText('ISSUER', { exact: true }).waitFor();
    await page.getByRole('row', { name: /Product name/ }).getByText('Acme Sign-in').waitFor();
    await page.getByRole('row', { name: /Product name/ }).getByText('PRODUCT_NAME').waitFor();
    await page.getByRole('row', { name: /Who may create an account/ }).getByText('By invitation').waitFor();
    await page.getByRole('row', { name: /Two-step verification/ }).getByText('Optional: for people who set it up').waitFor();
    await page.getByRole('row', { name: /Two-step verification/ }).getByText('MFA', { exact: true }).waitFor();
    await page.getByRole('row', { name: /Access tokens/ }).getByText('5 minutes').waitFor();
    await expectAccessible(page, 'settings');
    await page.screenshot({ path: 'test-artifacts/console-settings.png', fullPage: true });
  });

  it('a viewer sees everything and no write control', async () => {
    const viewer = await createPerson(server.env, PASSWORD, ['idp-viewer']);
    const tab = await signedIn(viewer);
    const { page } = tab;
    await open(tab, 'sign-in-services', 'Sign-in services');
    await page.getByRole('link', { name: 'Acme SSO' }).waitFor();
    expect(await page.getByRole('link', { name: 'Add a sign-in service' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Acme SSO' }).click();
    await page.getByRole('heading', { level: 1, name: 'Acme SSO' }).waitFor();
    await page.locator('.redirect-uri code').waitFor();
    expect(await page.getByRole('button', { name: 'Delete' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Save' }).count()).toBe(0);
    expect(await page.getByRole('textbox').count()).toBe(0);
    await expectAccessible(page, 'sign-in service, read only');
    await open(tab, 'sign-in-services/new', 'Add a sign-in service');
    await page.getByText('Your role does not allow this change.').waitFor();
    expect(await page.getByRole('textbox').count()).toBe(0);

    await open(tab, 'keys', 'Signing keys');
    await page.getByRole('table').waitFor();
    expect(await page.getByRole('button', { name: 'Rotate keys' }).count()).toBe(0);
    await open(tab, `audit?actor=user:${admin.id}`, 'Audit trail');
    await page.getByRole('row', { name: /keys\.rotated/ }).first().waitFor();
    expect(await page.getByLabel('Actor').inputValue()).toBe(`user:${admin.id}`);
    await open(tab, 'settings', 'Settings');
    await page.getByText(server.issuer, { exact: true }).waitFor();
    expect(tab.errors).toEqual([]);
  });

  it('reads in Korean', async () => {
    const tab = await signedIn(admin, { locale: 'ko-KR' });
    const { page } = tab;
    for (const [path, heading] of [
      ['sign-in-services', '로그인 서비스'],
      ['keys', '서명 키'],
      ['audit', '감사 기록'],
      ['settings', '설정'],
    ] as const) {
      await open(tab, path, heading);
      await page.locator('table').first().waitFor();
      await expectAccessible(page, `${path} in Korean`);
    }
    await page.screenshot({ path: 'test-artifacts/console-settings-ko.png', fullPage: true });
  });

  it('fits a 390 px wide screen', async () => {
    const tab = await signedIn(admin, { width: 390 });
    const { page } = tab;
    for (const [path, heading] of [
      ['sign-in-services', 'Sign-in services'],
      ['sign-in-services/new', 'Add a sign-in service'],
      ['sign-in-services/acme', 'Acme SSO'],
      ['keys', 'Signing keys'],
      ['audit', 'Audit trail'],
      ['settings', 'Settings'],
    ] as const) {
      await open(tab, path, heading);
      await page.locator('main form, main table').first().waitFor();
      await noHorizontalScroll(tab, path);
      await page.screenshot({ path: `test-artifacts/console-${path.replaceAll('/', '-')}-390.png`, fullPage: true });
    }
    expect(tab.cspViolations).toEqual([]);
    expect(tab.errors).toEqual([]);
  });
});
