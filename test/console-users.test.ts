import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminApi, adminApi } from './helpers/admin.ts';
import { haveBrowser, launchBrowser } from './helpers/browser.ts';
import { createPerson } from './helpers/cli.ts';
import { type ConsoleTab, expectAccessible, openConsole, signInToConsole } from './helpers/console.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const PASSWORD = 'a long enough password';
const unique = () => Math.random().toString(36).slice(2, 10);

interface User {
  id: string;
  email: string;
  name: string | null;
  disabled: boolean;
}
interface Role {
  name: string;
  description: string | null;
  permissions: Record<string, string[]>;
  requireMfa?: boolean;
}

describe.skipIf(!haveBrowser)('the console: users and roles', () => {
  let server: TestServer;
  let browser: Browser;
  let api: AdminApi;
  let admin: { id: string; email: string };
  let adminTab: ConsoleTab;

  /** A console tab, signed in as `who`. */
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

  const newUser = async (body: Record<string, unknown> = {}) => (await api.call<User>('POST', '/admin/v1/users', { email: `someone-${unique()}@example.com`, ...body })).body;
  const newRole = async (body: Record<string, unknown> = {}) => (await api.call<Role>('POST', '/admin/v1/roles', { name: `support-${unique()}`, description: 'Answers the phone', ...body })).body;
  const rolesOf = async (id: string) => (await api.call<{ items: Role[] }>('GET', `/admin/v1/users/${id}/roles`)).body.items.map((r) => r.name);
  const audited = async (action: string, target: string) => (await api.call<{ total: number }>('GET', `/admin/v1/audit?action=${action}&target=${target}`)).body.total;
  const noHorizontalScroll = async (tab: ConsoleTab) => expect(await tab.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

  beforeAll(async () => {
    server = await startServer();
    browser = await launchBrowser();
    api = await adminApi(server);
    admin = await createPerson(server.env, PASSWORD, ['idp-admin']);
    adminTab = await signedIn(admin);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('an idp-admin searches users, invites someone, and creates a user with a role', async () => {
    const { page } = adminTab;
    const tag = unique();
    const findable = await newUser({ email: `findme-${tag}@example.com`, name: 'Findable Person' });
    const role = await newRole();

    await open(adminTab, 'users', 'Users');
    await page.getByRole('link', { name: admin.email }).waitFor();
    await expectAccessible(page, 'users list');
    await page.screenshot({ path: 'test-artifacts/console-users.png' });

    await page.getByLabel('Search').fill(`findme-${tag}`);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.waitForURL((u) => u.searchParams.get('q') === `findme-${tag}`);
    // The unfiltered list stays on screen until the results arrive.
    await page.getByRole('link', { name: admin.email }).waitFor({ state: 'detached' });
    await page.getByRole('link', { name: findable.email }).waitFor();
    expect(await page.locator('tbody tr').count()).toBe(1);
    await page.getByLabel('Search').fill(`nobody-${tag}`);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByText(`No user’s email or name contains “nobody-${tag}”.`).waitFor();

    // An invitation: its email waits in the outbox.
    const invited = `invited-${tag}@example.com`;
    await page.getByRole('button', { name: 'Invite someone' }).click();
    await page.getByLabel('Email', { exact: true }).fill(invited);
    await page.getByLabel('Name (optional)').fill('Invited Person');
    await expectAccessible(page, 'invitation form');
    await page.screenshot({ path: 'test-artifacts/console-users-invite.png' });
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await page.getByRole('status').getByText(`An invitation was sent to ${invited}.`).waitFor();
    const outbox = await api.call<{ items: { kind: string; recipient: string }[] }>('GET', '/admin/v1/mail');
    expect(outbox.body.items).toContainEqual(expect.objectContaining({ kind: 'invitation', recipient: invited }));

    // A new user with a role.
    await page.getByRole('link', { name: 'Create user' }).click();
    await page.getByRole('heading', { level: 1, name: 'Create a user' }).waitFor();
    const email = `created-${tag}@example.com`;
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Name (optional)').fill('Created Person');
    await page.getByLabel('Password (optional)').fill(PASSWORD);
    await page.getByRole('checkbox', { name: new RegExp(`^${role.name}`) }).check();
    await expectAccessible(page, 'create user form');
    await page.screenshot({ path: 'test-artifacts/console-users-new.png', fullPage: true });
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('heading', { level: 1, name: email }).waitFor();
    const [created] = (await api.call<{ items: User[] }>('GET', `/admin/v1/users?q=${encodeURIComponent(email)}`)).body.items;
    expect(created).toMatchObject({ email, name: 'Created Person', hasPassword: true });
    expect(await rolesOf(created!.id)).toEqual([role.name]);
    await page.getByRole('link', { name: role.name }).waitFor();

    // A second user with the same address: the API's words, and what was typed stays.
    await open(adminTab, 'users/new', 'Create a user');
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('alert').getByText(`a user with email ${email} already exists`).waitFor();
    expect(await page.getByLabel('Email', { exact: true }).inputValue()).toBe(email);
    expect(adminTab.cspViolations).toEqual([]);
    expect(adminTab.errors).toEqual([]);
  });

  it('an idp-admin manages a user on its page: edit, disable, emails, sessions, roles, delete', async () => {
    const { page } = adminTab;
    const user = await newUser({ name: 'Managed Person', password: PASSWORD });
    const role = await newRole();
    await open(adminTab, `users/${user.id}`, user.email);
    await page.getByRole('heading', { level: 2, name: 'Linked accounts' }).waitFor();
    await page.getByText('This user has no roles.').waitFor();
    await expectAccessible(page, 'user detail');
    await page.screenshot({ path: 'test-artifacts/console-user.png', fullPage: true });

    // Edit.
    await page.getByLabel('Name', { exact: true }).fill('Renamed Person');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByRole('status').getByText('Saved.').waitFor();
    expect((await api.call<User>('GET', `/admin/v1/users/${user.id}`)).body.name).toBe('Renamed Person');

    // Attributes: JSON, checked here (an object) and by the API (its size).
    const attributes = page.getByLabel('Attributes (JSON)');
    expect(JSON.parse(await attributes.inputValue())).toEqual({});
    await attributes.fill('["not", "an object"]');
    await page.getByRole('button', { name: 'Save attributes' }).click();
    await page.getByText('Enter a JSON object, such as {"department": "Sales"}.').waitFor();
    expect(await attributes.getAttribute('aria-invalid')).toBe('true');
    await expectAccessible(page, 'attributes refused');
    await attributes.fill(JSON.stringify({ blob: 'x'.repeat(5000) }));
    await page.getByRole('button', { name: 'Save attributes' }).click();
    await page.getByRole('alert').getByText(/4096/).waitFor();
    await attributes.fill('{"department": "Sales", "employee": {"number": 4711}}');
    await page.getByRole('button', { name: 'Save attributes' }).click();
    await expect.poll(async () => (await api.call<User & { attributes: unknown }>('GET', `/admin/v1/users/${user.id}`)).body.attributes).toEqual({ department: 'Sales', employee: { number: 4711 } });
    expect(await audited('user.updated', user.id)).toBeGreaterThan(0);

    // Disable (asked first), then enable.
    await page.getByRole('button', { name: 'Disable', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText(`Disable ${user.email}?`).waitFor();
    await expectAccessible(page, 'disable dialog');
    await dialog.getByRole('button', { name: 'Disable user' }).click();
    await page.getByRole('button', { name: 'Enable' }).waitFor();
    expect((await api.call<User>('GET', `/admin/v1/users/${user.id}`)).body.disabled).toBe(true);
    await page.getByText('The account is disabled').waitFor();
    expect(await page.getByRole('button', { name: 'Send password reset email' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.getByRole('button', { name: 'Disable', exact: true }).waitFor();
    expect((await api.call<User>('GET', `/admin/v1/users/${user.id}`)).body.disabled).toBe(false);

    // Emails and sessions.
    await page.getByRole('button', { name: 'Send password reset email' }).click();
    await page.getByText(`A password reset email was sent to ${user.email}.`).waitFor();
    expect(await audited('user.password_reset_requested', user.id)).toBe(1);
    await page.getByRole('button', { name: 'Send verification email' }).click();
    await page.getByText(`A verification email was sent to ${user.email}.`).waitFor();
    expect(await audited('user.verification_sent', user.id)).toBe(1);
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await dialog.getByRole('button', { name: 'Sign out everywhere' }).click();
    await page.getByText('Signed out of 0 sessions.').waitFor();
    expect(await audited('session.revoked', user.id)).toBe(1);

    // Roles: add one, remove it.
    await page.getByLabel('Role to add').selectOption(role.name);
    await page.getByRole('button', { name: 'Add role' }).click();
    await page.getByRole('button', { name: `Remove ${role.name}` }).waitFor();
    expect(await rolesOf(user.id)).toEqual([role.name]);
    await page.getByRole('button', { name: `Remove ${role.name}` }).click();
    await page.getByText('This user has no roles.').waitFor();
    expect(await rolesOf(user.id)).toEqual([]);

    // Delete (asked first), back to the list.
    await page.getByRole('button', { name: 'Delete user' }).click();
    await dialog.getByText(`Delete ${user.email}?`).waitFor();
    await dialog.getByRole('button', { name: 'Delete user' }).click();
    await page.waitForURL((u) => u.pathname === '/console/users');
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    expect((await api.call('GET', `/admin/v1/users/${user.id}`)).status).toBe(404);
    expect(adminTab.errors).toEqual([]);
  });

  it('an idp-admin creates a role with a permission on an API, edits it and deletes it; built-in roles keep their permissions and may require two-step verification', async () => {
    const { page } = adminTab;
    const identifier = `https://docs-${unique()}.example.com`;
    const registered = await api.call('POST', '/admin/v1/resources', { identifier, name: 'Documents', scopes: ['read', 'write'] });
    expect(registered.status).toBe(201);

    await open(adminTab, 'roles', 'Roles');
    await page.getByRole('link', { name: 'idp-admin' }).waitFor();
    await expectAccessible(page, 'roles list');
    await page.screenshot({ path: 'test-artifacts/console-roles.png' });

    await page.getByRole('link', { name: 'Create role' }).click();
    await page.getByRole('heading', { level: 1, name: 'Create a role' }).waitFor();
    const name = `editors-${unique()}`;
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Description (optional)').fill('Edit the documents');
    const documents = page.getByRole('group', { name: 'Documents' });
    await documents.getByRole('checkbox', { name: 'read' }).check();
    await page.getByRole('checkbox', { name: 'Require two-step verification' }).check();
    await expectAccessible(page, 'create role form');
    await page.getByRole('button', { name: 'Create role' }).click();
    await page.getByRole('heading', { level: 1, name }).waitFor();
    expect((await api.call<Role>('GET', `/admin/v1/roles/${name}`)).body).toMatchObject({ name, description: 'Edit the documents', permissions: { [identifier]: ['read'] }, requireMfa: true });
    await page.locator('dl.facts').getByText('Required for people with this role').waitFor();
    await expectAccessible(page, 'role detail');
    await page.screenshot({ path: 'test-artifacts/console-role.png', fullPage: true });

    await page.getByLabel('Description').fill('Edit and read the documents');
    await documents.getByRole('checkbox', { name: 'write' }).check();
    await documents.getByRole('checkbox', { name: 'read' }).uncheck();
    await page.getByRole('checkbox', { name: 'Require two-step verification' }).uncheck();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').getByText('Saved.').waitFor();
    expect((await api.call<Role>('GET', `/admin/v1/roles/${name}`)).body).toMatchObject({ description: 'Edit and read the documents', permissions: { [identifier]: ['write'] }, requireMfa: false });
    await page.locator('dl.facts').getByText('Not required by this role').waitFor();

    await page.getByRole('button', { name: 'Delete role' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete role' }).click();
    await page.waitForURL((u) => u.pathname === '/console/roles');
    expect((await api.call('GET', `/admin/v1/roles/${name}`)).status).toBe(404);

    await page.getByRole('link', { name: 'idp-admin' }).click();
    await page.getByRole('heading', { level: 1, name: 'idp-admin' }).waitFor();
    await page.getByText('This role is built in').waitFor();
    await page.getByRole('cell', { name: 'admin admin:read' }).waitFor();
    expect(await page.getByRole('button', { name: /Delete/ }).count()).toBe(0);
    expect(await page.locator('main').getByRole('textbox').count()).toBe(0);
    expect(await page.locator('main').getByRole('group', { name: 'Permissions' }).count()).toBe(0);
    await expectAccessible(page, 'built-in role');

    // Its second-factor requirement is the admin's to choose (idp-viewer here, put back after: the suite signs viewers in).
    await open(adminTab, 'roles/idp-viewer', 'idp-viewer');
    const mfa = page.getByRole('checkbox', { name: 'Require two-step verification' });
    await mfa.check();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').getByText('Saved.').waitFor();
    expect((await api.call<Role>('GET', '/admin/v1/roles/idp-viewer')).body).toMatchObject({ builtIn: true, requireMfa: true, permissions: { 'urn:idp:admin': ['admin:read'] } });
    await page.locator('dl.facts').getByText('Required for people with this role').waitFor();
    await mfa.uncheck();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('dl.facts').getByText('Not required by this role').waitFor();
    expect((await api.call<Role>('GET', '/admin/v1/roles/idp-viewer')).body.requireMfa).toBe(false);
    expect(adminTab.errors).toEqual([]);
  });

  it('an idp-viewer sees users and roles without any way to change them', async () => {
    const viewer = await createPerson(server.env, PASSWORD, ['idp-viewer']);
    const role = await newRole();
    const user = await newUser({ name: 'Viewed Person' });
    await api.call('PUT', `/admin/v1/users/${user.id}/roles/${role.name}`);
    await api.call('PATCH', `/admin/v1/users/${user.id}`, { attributes: { team: 'Blue' } });
    const tab = await signedIn(viewer);
    const { page } = tab;
    const writeControls = () => page.locator('main').getByRole('button').filter({ hasNotText: /^Copy ID$/ });

    await open(tab, 'users', 'Users');
    await page.getByRole('link', { name: user.email }).waitFor();
    expect(await page.getByRole('link', { name: 'Create user' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Invite someone' }).count()).toBe(0);

    await page.getByRole('link', { name: user.email }).click();
    await page.getByRole('heading', { level: 1, name: user.email }).waitFor();
    await page.getByRole('link', { name: role.name }).waitFor();
    await page.getByText('No accounts of other sign-in services are linked.').waitFor();
    await page.getByText('This user has authorized no applications.').waitFor();
    await page.getByRole('heading', { level: 2, name: 'Attributes' }).waitFor();
    expect(await page.locator('main pre').textContent()).toContain('"team": "Blue"');
    // Only the search of the list and the copy button are buttons here: nothing that changes anything.
    expect(await writeControls().allTextContents()).toEqual([]);
    expect(await page.locator('main').getByRole('textbox').count()).toBe(0);
    await expectAccessible(page, 'user detail (viewer)');

    await open(tab, 'roles', 'Roles');
    expect(await page.getByRole('link', { name: 'Create role' }).count()).toBe(0);
    await page.getByRole('link', { name: role.name }).click();
    await page.getByRole('heading', { level: 1, name: role.name }).waitFor();
    await page.getByRole('heading', { level: 2, name: 'Permissions' }).waitFor();
    expect(await writeControls().allTextContents()).toEqual([]);
    expect(await page.locator('main').getByRole('textbox').count()).toBe(0);

    await open(tab, 'users/new', 'User');
    expect(await page.getByRole('button', { name: 'Create user' }).count()).toBe(0);
    expect(tab.errors).toEqual([]);
  });

  it('reads in Korean, and fits a phone held upright', async () => {
    const korean = await signedIn(admin, { locale: 'ko-KR' });
    await open(korean, 'users', '사용자');
    await korean.page.getByRole('link', { name: admin.email }).waitFor();
    await expectAccessible(korean.page, 'users list (ko)');
    await korean.page.screenshot({ path: 'test-artifacts/console-users-ko.png' });
    await open(korean, 'roles', '역할');
    await korean.page.getByRole('link', { name: 'idp-admin' }).waitFor();
    await korean.page.getByText('이 ID 공급자 관리(관리 API와 콘솔)').waitFor();
    await expectAccessible(korean.page, 'roles list (ko)');

    const narrow = await signedIn(admin, { width: 390 });
    await open(narrow, 'users', 'Users');
    await narrow.page.getByRole('link', { name: admin.email }).waitFor();
    await noHorizontalScroll(narrow);
    await narrow.page.screenshot({ path: 'test-artifacts/console-users-390.png', fullPage: true });
    await open(narrow, `users/${admin.id}`, admin.email);
    await narrow.page.getByRole('link', { name: 'idp-admin' }).waitFor();
    await noHorizontalScroll(narrow);
    await narrow.page.screenshot({ path: 'test-artifacts/console-user-390.png', fullPage: true });
    await open(narrow, 'roles', 'Roles');
    await narrow.page.getByRole('link', { name: 'idp-admin' }).waitFor();
    await noHorizontalScroll(narrow);
  });
});
