import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminApi, adminApi } from './helpers/admin.ts';
import { haveBrowser, launchBrowser } from './helpers/browser.ts';
import { createPerson } from './helpers/cli.ts';
import { type ConsoleTab, expectAccessible, openConsole, signInToConsole } from './helpers/console.ts';
import { discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

const PASSWORD = 'a long enough password';
const unique = () => Math.random().toString(36).slice(2, 10);

interface Client {
  clientId: string;
  name: string;
  public: boolean;
  applicationType: string;
  grantTypes: string[];
  redirectUris: string[];
  allowedOrigins: string[];
  apis: Record<string, string[]>;
  requireMfa: boolean;
  tokenEndpointAuthMethod: string;
  requirePkce: boolean;
  requirePushedAuthorizationRequests: boolean;
  dpopBoundAccessTokens: boolean;
  requireSignedRequestObject: boolean;
  refreshTokenReuseInterval: number;
  backchannelLogoutUri: string | null;
  backchannelLogoutSessionRequired: boolean;
  disabled: boolean;
  previousSecretExpiresAt: string | null;
}
interface Resource {
  id: string;
  identifier: string;
  name: string | null;
  scopes: string[];
  scopeDescriptions: Record<string, string>;
  accessTokenTtl: number;
  signingAlg: string;
  enforceRoles: boolean;
  rolesClaim: boolean;
}

describe.skipIf(!haveBrowser)('the console: applications and APIs', () => {
  let server: TestServer;
  let browser: Browser;
  let api: AdminApi;
  let adminTab: ConsoleTab;
  let adminId: string;

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

  const clientNamed = async (name: string) => (await api.call<{ items: Client[] }>('GET', `/admin/v1/clients?name=${encodeURIComponent(name)}`)).body.items.find((c) => c.name === name)!;
  const resourceAt = async (identifier: string) => (await api.call<{ items: Resource[] }>('GET', '/admin/v1/resources?limit=200')).body.items.find((r) => r.identifier === identifier);
  const newApi = async (identifier: string) =>
    (await api.call<Resource>('POST', '/admin/v1/resources', { identifier, name: 'Invoices', scopes: [{ name: 'invoices:read', description: 'Read your invoices' }, 'invoices:write'] })).body;
  const noHorizontalScroll = async (page: Page, what: string) => expect(await page.evaluate(() => document.documentElement.scrollWidth), what).toBeLessThanOrEqual(390);
  /** Answers the confirmation dialog that a ConfirmButton opened. */
  const confirm = async (page: Page, trigger: string, answer = trigger) => {
    await page.getByRole('button', { name: trigger, exact: true }).click();
    await page.getByRole('dialog').getByRole('button', { name: answer, exact: true }).click();
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
  };

  /** Runs the wizard to its last step; returns the client as the admin API shows it. */
  async function createApplication(page: Page, kind: string, fill: (page: Page) => Promise<void>, name: string) {
    await open(adminTab, 'applications/new', 'Create application');
    await page.getByRole('radio', { name: new RegExp(`^${kind}`) }).check();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { level: 2, name: 'Describe it' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill(name);
    await fill(page);
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.getByRole('heading', { level: 2, name: 'Credentials and quick start' }).waitFor();
    return clientNamed(name);
  }

  beforeAll(async () => {
    server = await startServer();
    browser = await launchBrowser();
    api = await adminApi(server);
    const admin = await createPerson(server.env, PASSWORD, ['idp-admin']);
    adminId = admin.id;
    adminTab = await signedIn(admin);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('an idp-admin registers an API and a web app for it; the secret copied from the page signs a person in for that API; a disabled app gets no more tokens', async () => {
    const { page } = adminTab;
    const API = `https://orders-${unique()}.example.com`;

    await open(adminTab, 'apis/new', 'Register API');
    await page.getByLabel('Name', { exact: true }).fill('Orders');
    await page.getByLabel('Identifier').fill(API);
    await page.getByLabel('Scope name').fill('orders:read');
    await page.getByLabel('What it lets an app do').fill('Read your orders');
    await page.getByRole('button', { name: 'Add scope' }).click();
    await page.getByLabel('Scope name').nth(1).fill('orders:write');
    await page.getByLabel('What it lets an app do').nth(1).fill('Change your orders');
    await page.getByLabel('Access token lifetime (seconds)').fill('900');
    await page.getByLabel('Signing algorithm').selectOption('ES256');
    await expectAccessible(page, 'API form');
    await page.screenshot({ path: 'test-artifacts/console-api-form.png', fullPage: true });
    await page.getByRole('button', { name: 'Register API' }).click();
    await page.getByRole('heading', { level: 1, name: 'Orders' }).waitFor();
    await page.getByRole('cell', { name: 'Change your orders' }).waitFor();
    await expectAccessible(page, 'API detail');
    await page.screenshot({ path: 'test-artifacts/console-api-detail.png', fullPage: true });
    expect(await resourceAt(API)).toMatchObject({
      name: 'Orders',
      scopes: ['orders:read', 'orders:write'],
      scopeDescriptions: { 'orders:read': 'Read your orders', 'orders:write': 'Change your orders' },
      accessTokenTtl: 900,
      signingAlg: 'ES256',
      enforceRoles: false,
    });

    await open(adminTab, 'apis', 'APIs');
    await page.getByRole('link', { name: API }).waitFor();
    await page.getByRole('link', { name: 'urn:idp:admin' }).waitFor();
    await expectAccessible(page, 'API list');
    await page.screenshot({ path: 'test-artifacts/console-apis.png' });

    // The wizard, step by step, checked as it goes.
    const name = `Shop ${unique()}`;
    await open(adminTab, 'applications/new', 'Create application');
    await expectAccessible(page, 'wizard: kind');
    await page.screenshot({ path: 'test-artifacts/console-app-wizard-1.png' });
    await page.getByRole('radio', { name: /^Web app/ }).check();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { level: 2, name: 'Describe it' }).waitFor();
    await page.getByText('https://app.example.com/callback').waitFor();
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Redirect URIs', { exact: true }).fill(REDIRECT_URI);
    await page.getByRole('checkbox', { name: /orders:read/ }).check();
    await page.getByRole('checkbox', { name: /orders:write/ }).check();
    await expectAccessible(page, 'wizard: details');
    await page.screenshot({ path: 'test-artifacts/console-app-wizard-2.png', fullPage: true });
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.getByRole('heading', { level: 2, name: 'Credentials and quick start' }).waitFor();

    const secret = (await page.locator('.secret code').textContent())!;
    expect(secret).toMatch(/^[\w-]{40,}$/);
    await page.getByRole('button', { name: 'Copy secret' }).click();
    await page.locator('.secret').getByText('Copied').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    await page.getByText('it will not be shown again').waitFor();
    const app = await clientNamed(name);
    expect(app).toMatchObject({ public: false, grantTypes: ['authorization_code', 'refresh_token'], redirectUris: [REDIRECT_URI], apis: { [API]: ['orders:read', 'orders:write'] }, disabled: false });
    const snippet = (await page.locator('.quick-start pre').textContent())!;
    for (const part of [app.clientId, server.issuer, REDIRECT_URI, API, 'client.discovery(', 'client.buildAuthorizationUrl(', 'client.authorizationCodeGrant(']) expect(snippet).toContain(part);
    expect(snippet).not.toContain(secret);
    await expectAccessible(page, 'wizard: the secret');
    await page.screenshot({ path: 'test-artifacts/console-app-secret.png', fullPage: true });

    // The app signs a person in with what the page gave, and gets a token for the API.
    const config = await discover(server.issuer, app.clientId, secret);
    const person = await createPerson(server.env, PASSWORD);
    const { tokens } = await loginAndExchange(new UserAgent(), config, { scope: 'openid offline_access orders:read', resource: API, login: { email: person.email, password: PASSWORD } });
    const claims = decodeJwt(tokens.access_token);
    expect(claims.aud).toBe(API);
    expect(String(claims.scope).split(' ')).toContain('orders:read');

    // The detail screen, then disabling.
    await page.getByRole('link', { name: 'Go to the application' }).click();
    await page.getByRole('heading', { level: 1, name }).waitFor();
    await page.getByText('Enabled', { exact: true }).waitFor();
    await expectAccessible(page, 'application detail');
    await page.screenshot({ path: 'test-artifacts/console-app-detail.png', fullPage: true });
    await page.getByRole('button', { name: 'Disable', exact: true }).click();
    await expectAccessible(page, 'disable dialog');
    await page.getByRole('dialog').getByRole('button', { name: 'Disable', exact: true }).click();
    await page.getByText('Disabled', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Enable' }).waitFor();
    expect((await clientNamed(name)).disabled).toBe(true);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_client' });

    // The audit trail shows those changes, by the admin in person.
    await open(adminTab, `audit?actor=${encodeURIComponent(`user:${adminId}`)}`, 'Audit trail');
    const rows = page.getByRole('row');
    for (const [action, target] of [
      ['resource.created', API],
      ['client.created', app.clientId],
      ['client.disabled', app.clientId],
    ]) {
      await rows.filter({ hasText: action }).filter({ hasText: target! }).first().waitFor();
    }
    expect(await rows.filter({ hasText: 'client.disabled' }).getByRole('link', { name: `user:${adminId}` }).count()).toBeGreaterThan(0);
    expect(adminTab.cspViolations).toEqual([]);
    expect(adminTab.errors).toEqual([]);
  }, 60_000);

  it('the single-page app preset registers a public client with its origins: no secret, an oidc-client-ts quick start', async () => {
    const { page } = adminTab;
    const app = await createApplication(
      page,
      'Single-page app',
      async (p) => {
        await p.getByLabel('Redirect URIs', { exact: true }).fill('https://spa.example.com/callback\nhttp://localhost:5173/callback');
        await p.getByLabel('Allowed origins').fill('https://admin.example.com');
      },
      `Storefront ${unique()}`,
    );
    expect(app).toMatchObject({ public: true, applicationType: 'web', grantTypes: ['authorization_code', 'refresh_token'], redirectUris: ['https://spa.example.com/callback', 'http://localhost:5173/callback'], allowedOrigins: ['https://admin.example.com'] });
    await page.getByText('This is a public application: it has no secret.').waitFor();
    expect(await page.locator('.secret').count()).toBe(0);
    const snippet = (await page.locator('.quick-start pre').textContent())!;
    for (const part of ["from 'oidc-client-ts'", `client_id: '${app.clientId}'`, `authority: '${server.issuer}'`, "redirect_uri: 'https://spa.example.com/callback'"]) expect(snippet).toContain(part);
  });

  it('an app is made to require two-step verification on its page, and no longer; a machine-to-machine app has no such choice', async () => {
    const { page } = adminTab;
    const name = `Payroll ${unique()}`;
    const created = await api.call<{ client: Client }>('POST', '/admin/v1/clients', { name, redirectUris: [REDIRECT_URI] });
    const { clientId } = created.body.client;
    await open(adminTab, `applications/${clientId}`, name);
    const facts = page.locator('dl.facts');
    await facts.getByText('Not required by this application').waitFor();
    const checkbox = page.getByRole('checkbox', { name: 'Require two-step verification' });
    expect(await checkbox.isChecked()).toBe(false);
    await checkbox.check();
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved.').waitFor();
    expect((await api.call<Client>('GET', `/admin/v1/clients/${clientId}`)).body).toMatchObject({ name, requireMfa: true });
    await facts.getByText('Required for everyone who signs in').waitFor();
    expect(await checkbox.isChecked()).toBe(true);
    await expectAccessible(page, 'application requiring two-step verification');

    await checkbox.uncheck();
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await facts.getByText('Not required by this application').waitFor();
    expect((await api.call<Client>('GET', `/admin/v1/clients/${clientId}`)).body.requireMfa).toBe(false);

    const machine = await api.call<{ client: Client }>('POST', '/admin/v1/clients', { name: `Batch ${unique()}`, grantTypes: ['client_credentials'], scope: '' });
    await open(adminTab, `applications/${machine.body.client.clientId}`, machine.body.client.name);
    await page.getByRole('button', { name: 'Save', exact: true }).waitFor();
    expect(await page.getByRole('checkbox', { name: 'Require two-step verification' }).count()).toBe(0);
    expect(adminTab.errors).toEqual([]);
  });

  it('an idp-admin changes an app’s security settings: PAR, DPoP, a reuse interval, back-channel logout, PKCE made optional with a warning; the API’s errors are shown; a viewer reads them', async () => {
    const { page } = adminTab;
    const name = `Legacy portal ${unique()}`;
    const { clientId } = (await api.call<{ client: Client }>('POST', '/admin/v1/clients', { name, redirectUris: [REDIRECT_URI] })).body.client;
    const fromApi = async () => (await api.call<Client>('GET', `/admin/v1/clients/${clientId}`)).body;
    await open(adminTab, `applications/${clientId}`, name);
    const security = page.getByRole('region', { name: 'Security' });
    await security.getByText('client_secret_basic').waitFor();
    await security.getByText('Its secret, in the Authorization header').waitFor();
    const saveSecurity = security.getByRole('button', { name: 'Save security settings' });
    const warning = page.locator('.notice.warning').filter({ hasText: 'may sign people in without PKCE' });
    expect(await warning.count()).toBe(0);
    // Signed request objects need registered keys: this client has none.
    expect(await security.getByRole('checkbox', { name: 'Require signed request objects (JAR)' }).isDisabled()).toBe(true);
    await security.getByText('Only an application with registered public keys').waitFor();
    await expectAccessible(page, 'application security section');

    // Nothing changed: nothing is sent.
    await saveSecurity.click();
    await security.getByText('Nothing to save').waitFor();

    await security.getByRole('checkbox', { name: 'Require pushed authorization requests (PAR)' }).check();
    await security.getByRole('checkbox', { name: 'Require DPoP-bound access tokens' }).check();
    await security.getByLabel('Refresh token reuse interval (seconds)').fill('30');
    await security.getByLabel('Back-channel logout URI').fill('https://portal.example.com/backchannel-logout');
    await security.getByRole('checkbox', { name: 'The application needs the session ID (sid) in logout tokens' }).check();
    await saveSecurity.click();
    await security.getByText('Saved.').waitFor();
    expect(await fromApi()).toMatchObject({
      requirePkce: true,
      requirePushedAuthorizationRequests: true,
      dpopBoundAccessTokens: true,
      refreshTokenReuseInterval: 30,
      backchannelLogoutUri: 'https://portal.example.com/backchannel-logout',
      backchannelLogoutSessionRequired: true,
      requireSignedRequestObject: false,
      requireMfa: false,
    });
    expect(await warning.count()).toBe(0);

    // PKCE made optional: the warning says so, and what the app must do instead.
    await security.getByRole('checkbox', { name: 'Allow sign-in without PKCE (legacy apps only)' }).check();
    await saveSecurity.click();
    await warning.waitFor();
    await warning.getByText('The nonce is then required', { exact: false }).waitFor();
    expect((await fromApi()).requirePkce).toBe(false);
    await expectAccessible(page, 'application security section, PKCE optional');
    await page.screenshot({ path: 'test-artifacts/console-app-security.png', fullPage: true });

    // The API's own errors, and nothing changes.
    await security.getByLabel('Refresh token reuse interval (seconds)').fill('61');
    await saveSecurity.click();
    await security.getByRole('alert').filter({ hasText: 'refreshTokenReuseInterval' }).waitFor();
    await security.getByLabel('Refresh token reuse interval (seconds)').fill('30');
    await security.getByLabel('Back-channel logout URI').fill('http://portal.example.com/logout');
    await saveSecurity.click();
    await security.getByRole('alert').filter({ hasText: 'must use https' }).waitFor();
    await expectAccessible(page, 'application security section, an error');
    expect(await fromApi()).toMatchObject({ refreshTokenReuseInterval: 30, backchannelLogoutUri: 'https://portal.example.com/backchannel-logout' });

    // A viewer sees the warning and the values, and nothing to change them with.
    const viewer = await signedIn(await createPerson(server.env, PASSWORD, ['idp-viewer']));
    await open(viewer, `applications/${clientId}`, name);
    const seen = viewer.page.getByRole('region', { name: 'Security' });
    await viewer.page.locator('.notice.warning').filter({ hasText: 'may sign people in without PKCE' }).waitFor();
    for (const text of ['Optional (a legacy application)', '30 seconds', 'https://portal.example.com/backchannel-logout', 'Needed', 'client_secret_basic']) await seen.getByText(text, { exact: true }).waitFor();
    expect(await seen.getByText('Required', { exact: true }).count()).toBe(2); // PAR and DPoP
    expect(await seen.getByRole('checkbox').count()).toBe(0);
    expect(await seen.getByRole('textbox').count()).toBe(0);
    expect(await seen.getByRole('spinbutton').count()).toBe(0);
    expect(await seen.getByRole('button').count()).toBe(0);
    await expectAccessible(viewer.page, 'application security section, read only');

    // Back to PKCE, strict rotation and no back-channel logout: an empty URI removes it.
    await open(adminTab, `applications/${clientId}`, name);
    await security.getByRole('checkbox', { name: 'Allow sign-in without PKCE (legacy apps only)' }).uncheck();
    await security.getByLabel('Refresh token reuse interval (seconds)').fill('0');
    await security.getByLabel('Back-channel logout URI').fill('');
    await saveSecurity.click();
    await security.getByText('Saved.').waitFor();
    await warning.waitFor({ state: 'detached' });
    expect(await fromApi()).toMatchObject({ requirePkce: true, refreshTokenReuseInterval: 0, backchannelLogoutUri: null, requirePushedAuthorizationRequests: true, dpopBoundAccessTokens: true });
    expect(adminTab.errors).toEqual([]);
    expect(viewer.errors).toEqual([]);
  }, 60_000);

  it('an app that signs with its own keys shows them, and may require signed request objects; a public app has no PKCE choice; a machine-to-machine app has no sign-in settings', async () => {
    const { page } = adminTab;
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'portal-key-1', use: 'sig' };
    const name = `Keyed app ${unique()}`;
    const created = await api.call<{ client: Client }>('POST', '/admin/v1/clients', { name, redirectUris: [REDIRECT_URI], jwks: { keys: [jwk] } });
    expect(created.status).toBe(201);
    const { clientId } = created.body.client;
    await open(adminTab, `applications/${clientId}`, name);
    const security = page.getByRole('region', { name: 'Security' });
    await security.getByText('private_key_jwt').waitFor();
    await security.getByText('1 key registered here').waitFor();
    await security.getByText('portal-key-1').waitFor();
    const jar = security.getByRole('checkbox', { name: 'Require signed request objects (JAR)' });
    expect(await jar.isDisabled()).toBe(false);
    await jar.check();
    await security.getByRole('button', { name: 'Save security settings' }).click();
    await security.getByText('Saved.').waitFor();
    expect((await api.call<Client>('GET', `/admin/v1/clients/${clientId}`)).body).toMatchObject({ tokenEndpointAuthMethod: 'private_key_jwt', requireSignedRequestObject: true });
    await expectAccessible(page, 'application security section, private_key_jwt');

    const spa = (await api.call<{ client: Client }>('POST', '/admin/v1/clients', { name: `Public ${unique()}`, public: true, redirectUris: ['https://spa.example.com/callback'] })).body.client;
    await open(adminTab, `applications/${spa.clientId}`, spa.name);
    await security.getByText('None: a public application, protected by PKCE').waitFor();
    await security.getByRole('checkbox', { name: 'Require DPoP-bound access tokens' }).waitFor();
    expect(await security.getByRole('checkbox', { name: /without PKCE/ }).count()).toBe(0);

    const machine = (await api.call<{ client: Client }>('POST', '/admin/v1/clients', { name: `Cron ${unique()}`, grantTypes: ['client_credentials'], scope: '' })).body.client;
    await open(adminTab, `applications/${machine.clientId}`, machine.name);
    await security.getByRole('checkbox', { name: 'Require DPoP-bound access tokens' }).waitFor();
    for (const control of [/without PKCE/, /PAR/, /JAR/, /session ID/]) expect(await security.getByRole('checkbox', { name: control }).count()).toBe(0);
    expect(await security.getByRole('textbox').count()).toBe(0);
    expect(await security.getByRole('spinbutton').count()).toBe(0);
    expect(adminTab.errors).toEqual([]);
  });

  it('a machine-to-machine app is given a role in the console: an API that enforces roles then gives its tokens what the role grants, and no more once it is removed', async () => {
    const { page } = adminTab;
    const API = `https://ledger-${unique()}.example.com`;
    await api.call('POST', '/admin/v1/resources', { identifier: API, name: 'Ledger', scopes: ['ledger:read', 'ledger:write'], enforceRoles: true, rolesClaim: true });
    const role = `ledger-reader-${unique()}`;
    expect((await api.call('POST', '/admin/v1/roles', { name: role, permissions: { [API]: ['ledger:read'] } })).status).toBe(201);
    const name = `Ledger job ${unique()}`;
    const app = await createApplication(
      page,
      'Machine-to-machine',
      async (p) => {
        await p.getByRole('checkbox', { name: /ledger:read/ }).check();
        await p.getByRole('checkbox', { name: /ledger:write/ }).check();
      },
      name,
    );
    const secret = (await page.locator('.secret code').textContent())!;
    const token = async () => decodeJwt((await oidc.clientCredentialsGrant(await discover(server.issuer, app.clientId, secret), { resource: API, scope: 'ledger:read ledger:write' })).access_token);
    expect(await token()).toMatchObject({ aud: API, roles: [] });
    expect(String((await token()).scope ?? '')).not.toContain('ledger:read');

    await open(adminTab, `applications/${app.clientId}`, name);
    await page.getByText('This application has no roles.').waitFor();
    await page.getByLabel('Role to add').selectOption(role);
    await page.getByRole('button', { name: 'Add role' }).click();
    await page.getByRole('link', { name: role }).waitFor();
    await expectAccessible(page, 'application with a role');
    expect((await api.call<{ items: { name: string }[] }>('GET', `/admin/v1/clients/${app.clientId}/roles`)).body.items.map((r) => r.name)).toEqual([role]);
    expect(await token()).toMatchObject({ scope: 'ledger:read', roles: [role] });

    await page.getByRole('button', { name: `Remove ${role}` }).click();
    await page.getByText('This application has no roles.').waitFor();
    expect(String((await token()).scope ?? '')).not.toContain('ledger:read');
  }, 60_000);

  it('a machine-to-machine app gets tokens for its API; its secret is rotated in the console with an overlap; its name is edited; it is deleted', async () => {
    const { page } = adminTab;
    const API = `https://billing-${unique()}.example.com`;
    await newApi(API);
    const name = `Billing job ${unique()}`;
    const app = await createApplication(page, 'Machine-to-machine', (p) => p.getByRole('checkbox', { name: /invoices:read/ }).check(), name);
    expect(app).toMatchObject({ public: false, grantTypes: ['client_credentials'], redirectUris: [], apis: { [API]: ['invoices:read'] } });
    const first = (await page.locator('.secret code').textContent())!;
    const snippets = await page.locator('.quick-start pre').allTextContents();
    expect(snippets[0]).toContain('grant_type=client_credentials');
    expect(snippets[1]).toContain('client.clientCredentialsGrant(');
    const tokenFor = async (secret: string) => decodeJwt((await oidc.clientCredentialsGrant(await discover(server.issuer, app.clientId, secret), { resource: API, scope: 'invoices:read' })).access_token);
    expect(await tokenFor(first)).toMatchObject({ aud: API, scope: 'invoices:read' });

    await open(adminTab, `applications/${app.clientId}`, name);
    await page.getByLabel('Keep the old secret working for (hours)').fill('2');
    await confirm(page, 'Rotate secret');
    const second = (await page.locator('.secret code').textContent())!;
    expect(second).not.toBe(first);
    await page.getByText('Still accepted until').waitFor();
    await expectAccessible(page, 'rotated secret');
    expect(await tokenFor(second)).toMatchObject({ aud: API });
    expect(await tokenFor(first)).toMatchObject({ aud: API });
    expect((await clientNamed(name)).previousSecretExpiresAt).not.toBeNull();

    await page.getByLabel('Keep the old secret working for (hours)').fill('0');
    await confirm(page, 'Rotate secret');
    await page.getByText('Still accepted until').waitFor({ state: 'detached' });
    const third = (await page.locator('.secret code').textContent())!;
    expect(await tokenFor(third)).toMatchObject({ aud: API });
    await expect(tokenFor(second)).rejects.toMatchObject({ error: 'invalid_client' });

    await page.getByLabel('Name', { exact: true }).fill(`${name} v2`);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved.').waitFor();
    expect((await api.call<Client>('GET', `/admin/v1/clients/${app.clientId}`)).body.name).toBe(`${name} v2`);

    await confirm(page, 'Delete application');
    await page.getByRole('heading', { level: 1, name: 'Applications' }).waitFor();
    expect((await api.call('GET', `/admin/v1/clients/${app.clientId}`)).status).toBe(404);
  });

  it('searches applications by name; the built-in clients are listed, with no controls to change them', async () => {
    const { page } = adminTab;
    const tag = unique();
    await api.call('POST', '/admin/v1/clients', { name: `Findable ${tag}`, redirectUris: ['https://find.example.com/cb'] });
    await open(adminTab, 'applications', 'Applications');
    await page.locator('#main').getByRole('link', { name: 'Admin console' }).waitFor();
    await expectAccessible(page, 'application list');
    await page.screenshot({ path: 'test-artifacts/console-apps.png', fullPage: true });
    await page.getByLabel('Search by name').fill(tag);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForURL((u) => u.searchParams.get('name') === tag);
    // The unfiltered list stays on screen until the results arrive.
    await page.locator('#main').getByRole('link', { name: 'Admin console' }).waitFor({ state: 'detached' });
    await page.getByRole('link', { name: `Findable ${tag}` }).waitFor();
    expect(await page.locator('tbody tr').count()).toBe(1);

    await open(adminTab, 'applications/idp-console', 'Admin console');
    await page.getByText('it cannot be changed, disabled or deleted').waitFor();
    expect(await page.getByRole('button').filter({ hasText: /^(Save|Rotate secret|Disable|Delete application)$/ }).count()).toBe(0);
    expect(await page.getByRole('heading', { name: 'Security' }).count()).toBe(0);

    const adminApiId = (await resourceAt('urn:idp:admin'))!.id;
    await open(adminTab, `apis/${adminApiId}`, 'Admin API');
    await page.getByText('it cannot be changed or deleted').waitFor();
    expect(await page.getByRole('button').filter({ hasText: /^(Save|Delete API)$/ }).count()).toBe(0);
  });

  it('an idp-viewer reads applications and APIs with no control to change them', async () => {
    const API = `https://viewer-${unique()}.example.com`;
    const resource = await newApi(API);
    const created = (await api.call<{ client: Client }>('POST', '/admin/v1/clients', { name: `Viewed ${unique()}`, redirectUris: ['https://viewed.example.com/cb'], apis: { [API]: ['invoices:read'] } })).body.client;
    const viewer = await signedIn(await createPerson(server.env, PASSWORD, ['idp-viewer']));
    const { page } = viewer;

    await open(viewer, 'applications', 'Applications');
    await page.getByRole('link', { name: created.name }).waitFor();
    expect(await page.getByRole('link', { name: 'Create application' }).count()).toBe(0);
    await open(viewer, `applications/${created.clientId}`, created.name);
    await page.getByText('invoices:read').first().waitFor();
    await page.getByRole('heading', { name: 'Quick start' }).waitFor();
    expect(await page.getByRole('button').filter({ hasText: /^(Save|Rotate secret|Disable|Enable|Delete application)$/ }).count()).toBe(0);
    expect(await page.getByRole('textbox').count()).toBe(0);
    await expectAccessible(page, 'application detail, read only');

    await open(viewer, 'apis', 'APIs');
    await page.getByRole('link', { name: API }).waitFor();
    expect(await page.getByRole('link', { name: 'Register API' }).count()).toBe(0);
    await open(viewer, `apis/${resource.id}`, 'Invoices');
    await page.getByRole('cell', { name: 'Read your invoices' }).waitFor();
    expect(await page.getByRole('button').filter({ hasText: /^(Save|Delete API|Add scope)$/ }).count()).toBe(0);
    expect(await page.getByRole('textbox').count()).toBe(0);
  }, 60_000);

  it('the lists read well in Korean, and the lists and the wizard fit a 390 px screen', async () => {
    const person = await createPerson(server.env, PASSWORD, ['idp-admin']);
    const korean = await signedIn(person, { locale: 'ko-KR' });
    await open(korean, 'applications', '애플리케이션');
    await korean.page.locator('tbody tr').first().waitFor();
    await expectAccessible(korean.page, 'application list (ko)');
    await korean.page.screenshot({ path: 'test-artifacts/console-apps-ko.png', fullPage: true });
    await open(korean, 'apis', 'API');
    await korean.page.locator('tbody tr').first().waitFor();
    await expectAccessible(korean.page, 'API list (ko)');
    const legacy = (await api.call<{ client: Client }>('POST', '/admin/v1/clients', { name: `Legacy ${unique()}`, redirectUris: [REDIRECT_URI], requirePkce: false, refreshTokenReuseInterval: 5 })).body.client;
    await open(korean, `applications/${legacy.clientId}`, legacy.name);
    await korean.page.locator('.notice.warning').getByText('경고:').waitFor();
    const security = korean.page.getByRole('region', { name: '보안' });
    expect(await security.getByRole('checkbox', { name: 'PKCE 없이 로그인 허용(레거시 앱 전용)' }).isChecked()).toBe(true);
    expect(await security.getByLabel('리프레시 토큰 재사용 허용 시간(초)').inputValue()).toBe('5');
    await expectAccessible(korean.page, 'application security section (ko)');
    await korean.page.screenshot({ path: 'test-artifacts/console-app-security-ko.png', fullPage: true });

    const phone = await signedIn(person, { width: 390 });
    const { page } = phone;
    await open(phone, 'applications', 'Applications');
    await page.locator('tbody tr').first().waitFor();
    await noHorizontalScroll(page, 'application list');
    await open(phone, 'apis', 'APIs');
    await page.locator('tbody tr').first().waitFor();
    await noHorizontalScroll(page, 'API list');
    await open(phone, 'applications/new', 'Create application');
    await noHorizontalScroll(page, 'wizard: kind');
    await page.getByRole('radio', { name: /^Native app/ }).check();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { level: 2, name: 'Describe it' }).waitFor();
    await page.getByRole('checkbox').first().waitFor();
    await noHorizontalScroll(page, 'wizard: details');
    await page.screenshot({ path: 'test-artifacts/console-app-wizard-390.png', fullPage: true });
    await page.getByLabel('Name', { exact: true }).fill(`Phone app ${unique()}`);
    await page.getByLabel('Redirect URIs', { exact: true }).fill('com.example.app:/callback\nhttp://127.0.0.1/callback');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.getByRole('heading', { level: 2, name: 'Credentials and quick start' }).waitFor();
    await noHorizontalScroll(page, 'wizard: quick start');
    await expectAccessible(page, 'native quick start');
    await page.screenshot({ path: 'test-artifacts/console-app-native-390.png', fullPage: true });
    expect(await page.locator('.quick-start pre').textContent()).toContain("createServer().listen(0, '127.0.0.1')");
    await open(phone, 'apis/new', 'Register API');
    await noHorizontalScroll(page, 'API form');
    await page.screenshot({ path: 'test-artifacts/console-api-form-390.png', fullPage: true });
  }, 60_000);
});
