import * as oidc from 'openid-client';
import type { Browser, } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPhonePage, haveBrowser, launchBrowser, phonePage } from './helpers/browser.ts';
import { deviceClient } from './helpers/device.ts';
import { discover, REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';

/** A person connects a device: types its code, approves, signs in and consents, in a real browser on a phone-sized screen. */
describe.skipIf(!haveBrowser)('the device flow pages in a real browser', () => {
  let server: TestServer;
  let browser: Browser;
  let config: oidc.Configuration;

  beforeAll(async () => {
    server = await startServer({ DEVICE_CODES_PER_MINUTE: '100000' });
    browser = await launchBrowser();
    config = await discover(server.issuer, await deviceClient(server.env));
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const check = checkPhonePage;

  it.each(['en', 'ko'])('%s: types the code (a wrong one first), approves, signs in, consents, and sees the success page; a cancelled one ends on the cancelled page', async (locale) => {
    const user = await seed(server.env, { redirectUri: REDIRECT_URI });
    const { context, page, problems: csp } = await phonePage(browser, locale);
    try {
      const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile email' });
      await page.goto(device.verification_uri);
      await check(page, 'device', locale, csp);

      await page.locator('#user-code').fill('bcdf-ghjk');
      await page.locator('form[action$="/device"] button[type="submit"]').click();
      await page.getByRole('alert').waitFor();
      await check(page, 'device-wrong', locale, csp);

      await page.locator('#user-code').fill(device.user_code.replace('-', '').toLowerCase());
      await page.locator('form[action$="/device"] button[type="submit"]').click();
      await page.locator('button[form="op.deviceConfirmForm"]:not([name])').waitFor();
      expect(await page.textContent('body')).toContain(device.user_code);
      await check(page, 'device-confirm', locale, csp);
      await page.locator('button[form="op.deviceConfirmForm"]:not([name])').click();

      await page.locator('#email').fill(user.email);
      await page.locator('#password').fill(user.password);
      await page.locator('form[action$="/login"] button[type="submit"]').click();
      await page.locator('form[action$="/confirm"] button[type="submit"]').click();
      await page.waitForURL((u) => u.pathname.startsWith('/device/'));
      expect(await page.textContent('body')).toContain('Living Room TV');
      await check(page, 'device-done', locale, csp);
      const tokens = await oidc.pollDeviceAuthorizationGrant(config, device);
      expect(tokens.claims()!.sub).toBe(user.userId);

      const cancelled = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      await page.goto(cancelled.verification_uri_complete!);
      await page.locator('button[name="abort"]').click();
      await page.locator('h1').waitFor();
      await check(page, 'device-aborted', locale, csp);
    } finally {
      await context.close();
    }
  }, 60_000);
});
