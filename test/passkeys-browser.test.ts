import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPhonePage, haveBrowser, launchBrowser, phonePage } from './helpers/browser.ts';
import { REDIRECT_URI } from './helpers/flow.ts';
import { virtualAuthenticator } from './helpers/passkeys.ts';
import { seed, withServices } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';

/**
 * A person adds a passkey on the account page, signs out, signs in with the passkey alone, then
 * with their password and the passkey as second step, and removes it: in Chromium with its
 * virtual authenticator (a platform authenticator that verifies the person), on a phone-sized
 * screen. The issuer is on `localhost`: browsers refuse WebAuthn on an IP address.
 */
describe.skipIf(!haveBrowser)('passkeys in a real browser', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    // Remembering a browser offered: its checkbox is on the second-factor page checked here.
    server = await startServer({ MFA_REMEMBER_DAYS: '30' }, { issuerHost: 'localhost' });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const check = checkPhonePage;

  /** From the next page on, a browser whose passkeys are not offered in autofill (conditional mediation). */
  const withoutAutofill = (page: Page) =>
    page.addInitScript(() => {
      PublicKeyCredential.isConditionalMediationAvailable = async () => false;
    });

  async function signOut(page: Page) {
    await page.locator('form[action="/account/sign-out"] button').click();
    await page.waitForURL(`${server.issuer}/account/signed-out`);
    await page.locator('a[href^="/session/end"]').click();
    await page.locator('button[name="logout"]').click();
    await page.waitForURL((u) => u.pathname === '/account/signed-out' && u.searchParams.has('state'));
  }

  it.each([
    ['en', true],
    ['ko', false],
  ])('%s: adds a passkey, signs in with it alone (autofill: %s, else the button) and as the second step, and removes it', async (locale, autofill) => {
    const user = await seed(server.env, { redirectUri: REDIRECT_URI });
    const { context, page, problems } = await phonePage(browser, locale);
    const { cdp, authenticatorId } = await virtualAuthenticator(page);
    try {
      await page.goto(`${server.issuer}/account`);
      await page.locator('form.passkey button').waitFor();
      await check(page, 'login-passkey', locale, problems);
      await page.locator('#email').fill(user.email);
      await page.locator('#password').fill(user.password);
      await page.locator('form[action$="/login"] button[type="submit"]').click();
      await page.waitForURL(`${server.issuer}/account`);

      await page.locator('a[href="/account/passkeys/add"]').click();
      await page.waitForURL(`${server.issuer}/account/passkeys/add`);
      await page.locator('#name').waitFor();
      expect(await page.locator('[data-passkey-unsupported]').isHidden()).toBe(true);
      await check(page, 'account-passkey-add', locale, problems);
      await page.locator('#name').fill('Laptop');
      await page.locator('form[action="/account/passkeys/add"] button[type="submit"]').click();
      // A first second factor: the recovery codes, once.
      await page.locator('.recovery-codes').waitFor();
      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      expect(credentials).toHaveLength(1);
      expect(credentials[0]!.isResidentCredential).toBe(true);

      await page.goto(`${server.issuer}/account`);
      await page.locator('#passkeys-heading').waitFor();
      expect(await page.textContent('body')).toContain('Laptop');
      await check(page, 'account-passkeys', locale, problems);

      // The passkey alone, no password typed: offered in the email field's autofill (the virtual
      // authenticator picks it at once), or, where a browser has no such autofill, by the button.
      await signOut(page);
      if (!autofill) await withoutAutofill(page);
      await page.goto(`${server.issuer}/account`);
      if (!autofill) await page.locator('form.passkey button').click();
      await page.waitForURL(`${server.issuer}/account`);
      expect(await page.textContent('body')).toContain('Laptop');

      // The password, then the passkey as the second step (with no autofill to sign in first).
      await signOut(page);
      if (autofill) await withoutAutofill(page);
      await page.goto(`${server.issuer}/account`);
      await page.locator('#email').fill(user.email);
      await page.locator('#password').fill(user.password);
      await page.locator('form[action$="/login"] button[type="submit"]').click();
      await page.locator('form[action$="/two-step/passkey"] button').waitFor();
      expect(await page.locator('#remember').isVisible()).toBe(true);
      await check(page, 'second-factor-passkey', locale, problems);
      await page.locator('form[action$="/two-step/passkey"] button').click();
      await page.waitForURL(`${server.issuer}/account`);

      await page.locator('form[action^="/account/passkeys/"][action$="/remove"] button').click();
      await page.waitForURL((u) => u.searchParams.get('done') === 'passkey_removed');
      expect(await page.locator('form[action^="/account/passkeys/"][action$="/remove"]').count()).toBe(0);
      await check(page, 'account-passkey-removed', locale, problems);
    } finally {
      await context.close();
    }
  });

  it.each(['en', 'ko'])('%s: a person whose role requires a second factor and who has none adds a passkey inside the sign-in', async (locale) => {
    const user = await seed(server.env, { redirectUri: REDIRECT_URI });
    await withServices(server.env, async ({ roles }) => {
      const role = await roles.create({ name: `strict-${Math.random().toString(36).slice(2)}`, requireMfa: true }, { actor: 'cli' });
      await roles.assign(user.userId, role.id, { actor: 'cli' });
    });
    const { context, page, problems } = await phonePage(browser, locale);
    await virtualAuthenticator(page);
    await withoutAutofill(page);
    try {
      await page.goto(`${server.issuer}/account`);
      await page.locator('#email').fill(user.email);
      await page.locator('#password').fill(user.password);
      await page.locator('form[action$="/login"] button[type="submit"]').click();
      await page.locator('form[action$="/two-step/setup/passkey"] button').waitFor();
      expect(await page.locator('.qr img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
      await check(page, 'second-factor-setup', locale, problems);
      await page.locator('#passkey-name').fill('Phone');
      await page.locator('form[action$="/two-step/setup/passkey"] button').click();
      await page.locator('.recovery-codes').waitFor();
      expect(await page.locator('.recovery-codes li').count()).toBe(10);
      await check(page, 'second-factor-setup-codes', locale, problems);
      await page.locator('form[action$="/two-step/setup/continue"] button').click();
      await page.waitForURL(`${server.issuer}/account`);
      expect(await page.textContent('body')).toContain('Phone');
    } finally {
      await context.close();
    }
  });
});
