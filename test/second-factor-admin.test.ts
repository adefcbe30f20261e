import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminApi, adminApi } from './helpers/admin.ts';
import { haveBrowser, launchBrowser, screenshotPath } from './helpers/browser.ts';
import { createPerson, idp } from './helpers/cli.ts';
import { expectAccessible, openConsole, signInToConsole } from './helpers/console.ts';
import { authorize, discover, REDIRECT_URI } from './helpers/flow.ts';
import { addAuthenticator } from './helpers/mfa.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { startMailbox, type Mailbox } from './helpers/smtp.ts';
import { UserAgent } from './helpers/user-agent.ts';

const PASSWORD = 'a long enough password';

interface Factors {
  items: { id: string; type: string; name: string; createdAt: string; lastUsedAt: string | null }[];
  total: number;
  recoveryCodesLeft: number;
}

let server: TestServer;
let mailbox: Mailbox;
let api: AdminApi;
beforeAll(async () => {
  mailbox = await startMailbox();
  server = await startServer({ SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2', PRODUCT_NAME: 'Acme' });
  api = await adminApi(server);
});
afterAll(async () => {
  await server?.close();
  await mailbox?.close();
});

const audits = (userId: string, action: string) => server.current.db.prisma.auditEvent.findMany({ where: { target: userId, action } });

describe('an administrator and a person’s second factors', () => {
  it('lists them (API and CLI, no secret), turns them off (API): the password alone signs in, the person is emailed, mfa.reset is audited; a read-only token cannot', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const { secret, recoveryCodes } = await addAuthenticator(server.env, app);
    const path = `/admin/v1/users/${app.userId}/factors`;

    const listed = await api.call<Factors>('GET', path, undefined, await api.token('admin:read'));
    expect(listed.status).toBe(200);
    expect(listed.body).toMatchObject({ total: 1, recoveryCodesLeft: 10, items: [{ type: 'totp', name: 'Phone', lastUsedAt: null }] });
    expect(Object.keys(listed.body.items[0]!).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name', 'type']);

    const cli = await idp(['users', 'factors', 'list', app.email, '--json'], server.env);
    expect(cli.code).toBe(0);
    expect(cli.json<Factors>()).toMatchObject({ total: 1, recoveryCodesLeft: 10, items: [{ type: 'totp', name: 'Phone' }] });
    const text = await idp(['users', 'factors', 'list', app.email], server.env);
    expect(text.stdout).toContain('Recovery codes left: 10');
    for (const out of [JSON.stringify(listed.body), cli.stdout, text.stdout]) {
      expect(out).not.toContain(secret);
      for (const code of recoveryCodes) expect(out).not.toContain(code);
    }

    const readOnly = await api.call('DELETE', path, undefined, await api.token('admin:read'));
    expect(readOnly.status).toBe(403);
    expect(await server.current.db.prisma.mfaFactor.count({ where: { userId: app.userId } })).toBe(1);

    expect((await api.call('DELETE', path)).status).toBe(204);
    expect(await server.current.db.prisma.mfaFactor.count({ where: { userId: app.userId } })).toBe(0);
    expect(await server.current.db.prisma.recoveryCode.count({ where: { userId: app.userId } })).toBe(0);
    expect((await api.call<Factors>('GET', path)).body).toEqual({ items: [], total: 0, recoveryCodesLeft: 0 });
    // Nothing left to turn off.
    const again = await api.call<{ error: string }>('DELETE', path);
    expect(again.status).toBe(409);
    expect(JSON.stringify(again.body)).toContain('has no second factor');
    expect((await api.call('DELETE', '/admin/v1/users/no-such-user/factors')).status).toBe(404);
    expect((await api.call('GET', '/admin/v1/users/no-such-user/factors')).status).toBe(404);

    const mail = await mailbox.next(app.email);
    expect(mail.subject).toBe('Two-step verification was turned off for your Acme account');
    expect(mail.text).toContain('An administrator turned off two-step verification');
    expect(mail.text).toContain('If you did not ask for this, contact support.');

    const reset = await audits(app.userId, 'mfa.reset');
    expect(reset).toHaveLength(1);
    expect(reset[0]!.actor).toBe(`client:${api.clientId}`);
    expect(reset[0]!.details).not.toContain(secret);

    // The password alone signs in: no code page.
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const plain = await authorize(new UserAgent(), config, { login: { email: app.email, password: app.password }, consent: false });
    const html = await plain.last.res.text();
    expect(html).not.toContain('Two-step verification');
    expect(html).toContain('Allow access');
  });

  it('the CLI turns them off too, and says when there is nothing to turn off', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    await addAuthenticator(server.env, app);
    const reset = await idp(['users', 'factors', 'reset', app.email, '--json'], server.env);
    expect(reset.code).toBe(0);
    expect(reset.json()).toEqual({ id: app.userId, removed: 1 });
    expect((await audits(app.userId, 'mfa.reset'))[0]!.actor).toMatch(/^cli:/);
    expect((await mailbox.next(app.email)).subject).toBe('Two-step verification was turned off for your Acme account');
    const again = await idp(['users', 'factors', 'reset', app.email], server.env);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('has no second factor');
    expect((await idp(['users', 'factors', 'list', app.email], server.env)).stdout).toContain('No second factor');
  });
});

describe.skipIf(!haveBrowser)('the console: a person’s two-step verification', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('an admin sees the authenticator app on the user’s page and turns it off through the dialog; a viewer (in Korean) sees no button', async () => {
    const admin = await createPerson(server.env, PASSWORD, ['idp-admin']);
    const person = await createPerson(server.env, PASSWORD);
    await addAuthenticator(server.env, { userId: person.id, email: person.email });

    const tab = await openConsole(browser, server.issuer);
    await signInToConsole(tab, admin.email, PASSWORD);
    const { page } = tab;
    await page.goto(`${server.issuer}/console/users/${person.id}`);
    await page.getByRole('heading', { level: 1, name: person.email }).waitFor();
    const section = page.locator('section', { has: page.getByRole('heading', { level: 2, name: 'Two-step verification' }) });
    await section.getByRole('cell', { name: 'Phone' }).waitFor();
    await section.getByText('Recovery codes left: 10').waitFor();
    await expectAccessible(page, 'user page with two-step verification');
    await page.screenshot({ path: screenshotPath('console-user-two-step'), fullPage: true });

    await section.getByRole('button', { name: 'Turn off two-step verification' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('they can then sign in with their password alone, and they are emailed about it').waitFor();
    await expectAccessible(page, 'turn off two-step verification dialog');
    await dialog.getByRole('button', { name: 'Turn off two-step verification' }).click();
    await section.getByText('Off: this person signs in with their password alone.').waitFor();
    await section.getByText(`Two-step verification is off for ${person.email}; they were emailed about it.`).waitFor();
    expect(await server.current.db.prisma.mfaFactor.count({ where: { userId: person.id } })).toBe(0);
    expect((await audits(person.id, 'mfa.reset'))[0]!.actor).toBe(`user:${admin.id}`);
    expect(tab.cspViolations).toEqual([]);
    expect(tab.errors).toEqual([]);

    const viewer = await createPerson(server.env, PASSWORD, ['idp-viewer']);
    const other = await createPerson(server.env, PASSWORD);
    await addAuthenticator(server.env, { userId: other.id, email: other.email });
    const viewerTab = await openConsole(browser, server.issuer, { locale: 'ko-KR' });
    await signInToConsole(viewerTab, viewer.email, PASSWORD);
    await viewerTab.page.goto(`${server.issuer}/console/users/${other.id}`);
    await viewerTab.page.getByRole('heading', { level: 2, name: '2단계 인증' }).waitFor();
    await viewerTab.page.getByRole('cell', { name: 'Phone' }).waitFor();
    await expectAccessible(viewerTab.page, 'user page with two-step verification (ko, viewer)');
    expect(await viewerTab.page.getByRole('button', { name: /2단계 인증 해제|Turn off two-step verification/ }).count()).toBe(0);
  });
});
