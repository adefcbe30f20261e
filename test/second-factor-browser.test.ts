import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPhonePage, haveBrowser, launchBrowser, phonePage } from './helpers/browser.ts';
import { REDIRECT_URI } from './helpers/flow.ts';
import { totpCode } from './helpers/mfa.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';

/** A person turns on two-step verification on the account page, signs out, and signs in with it, in a real browser on a phone-sized screen. */
describe.skipIf(!haveBrowser)('two-step verification in a real browser', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const check = checkPhonePage;

  async function signIn(page: Page, user: { email: string; password: string }) {
    await page.locator('#email').fill(user.email);
    await page.locator('#password').fill(user.password);
    await page.locator('form[action$="/login"] button[type="submit"]').click();
  }

  it.each(['en', 'ko'])('%s: adds an authenticator app, sees the recovery codes, signs out, and signs in with the password and a code', async (locale) => {
    const user = await seed(server.env, { redirectUri: REDIRECT_URI });
    const { context, page, problems: csp } = await phonePage(browser, locale);
    try {
      await page.goto(`${server.issuer}/account`);
      await signIn(page, user);
      await page.waitForURL(`${server.issuer}/account`);
      await page.locator('a[href="/account/two-step/add"]').click();
      await page.waitForURL(`${server.issuer}/account/two-step/add`);
      expect(await page.locator('.qr img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
      await check(page, 'account-two-step-add', locale, csp);

      const secret = (await page.locator('#secret').textContent())!;
      await page.locator('#name').fill('Pixel');
      await page.locator('#code').fill(totpCode(secret));
      await page.locator('form[action="/account/two-step/add"] button[type="submit"]').click();
      await page.locator('.recovery-codes').waitFor();
      expect(await page.locator('.recovery-codes li').count()).toBe(10);
      await check(page, 'account-recovery-codes', locale, csp);

      await page.goto(`${server.issuer}/account`);
      expect(await page.textContent('body')).toContain('Pixel');
      await check(page, 'account-two-step', locale, csp);

      // Signs out of the account page and of the sign-in service.
      await page.locator('form[action="/account/sign-out"] button').click();
      await page.waitForURL(`${server.issuer}/account/signed-out`);
      await page.locator('a[href^="/session/end"]').click();
      await page.locator('button[name="logout"]').click();
      await page.waitForURL((u) => u.pathname === '/account/signed-out' && u.searchParams.has('state'));

      await page.goto(`${server.issuer}/account`);
      await signIn(page, user);
      await page.locator('#code').waitFor();
      await check(page, 'second-factor', locale, csp);
      await page.locator('#code').fill('000000');
      await page.locator('form[action$="/two-step"] button[type="submit"]').click();
      await page.getByRole('alert').waitFor();
      await check(page, 'second-factor-wrong', locale, csp);
      await page.locator('a[href$="/two-step/recovery"]').click();
      await page.locator('#code').waitFor();
      await check(page, 'second-factor-recovery', locale, csp);
      await page.locator('a[href^="/interaction/"]:not([href$="/recovery"])').first().click();
      await page.locator('#code').fill(totpCode(secret, 1));
      await page.locator('form[action$="/two-step"] button[type="submit"]').click();
      await page.waitForURL(`${server.issuer}/account`);
      expect(await page.textContent('body')).toContain('Pixel');
    } finally {
      await context.close();
    }
  });
});
