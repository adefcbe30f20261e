import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveBrowser, launchBrowser } from './helpers/browser.ts';
import { createPerson } from './helpers/cli.ts';
import { expectAccessible, openConsole, signInToConsole } from './helpers/console.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const PASSWORD = 'a long enough password';

describe.skipIf(!haveBrowser)('the admin console', () => {
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

  it('an idp-admin signs in through the sign-in page and sees the overview', async () => {
    const admin = await createPerson(server.env, PASSWORD, ['idp-admin']);
    const tab = await openConsole(browser, server.issuer);
    await signInToConsole(tab, admin.email, PASSWORD);
    await tab.page.getByRole('heading', { name: 'Overview' }).waitFor();
    await tab.page.getByText('Sign-ins over the last 14 days').waitFor();
    await tab.page.locator('.counts').waitFor();
    await tab.page.screenshot({ path: 'test-artifacts/console-overview.png' });
    await expectAccessible(tab.page, 'overview');
    expect(tab.cspViolations).toEqual([]);
    expect(tab.errors).toEqual([]);
  });
});
