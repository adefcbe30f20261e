import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import * as oidc from 'openid-client';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from './helpers/seed.ts';
import { discover } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// CI installs Debian's chromium (.ci/run); elsewhere the test says why it was skipped.
const haveBrowser = existsSync(CHROMIUM) || process.env.CI === 'true';

describe.skipIf(!haveBrowser)('a person signs in with a real browser', () => {
  let server: TestServer;
  let app: Server;
  let appOrigin: string;
  let browser: Browser;

  beforeAll(async () => {
    // The relying party's own web server, which the browser lands on with the code.
    app = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>Back at the app</h1>'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appOrigin = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
    server = await startServer();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await new Promise((resolve) => app?.close(resolve));
  });

  it('clicks through login and consent and lands on the redirect URI with a code the client can redeem', async () => {
    const redirectUri = `${appOrigin}/callback`;
    const seeded = await seed(server.env, { redirectUri });
    const config = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email',
      state,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });

    const page = await browser.newPage();
    page.setDefaultTimeout(8000);
    const cspViolations: string[] = [];
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
    await page.goto(url.href);
    await expect(page.getByRole('heading', { name: 'Sign in' }).isVisible()).resolves.toBe(true);
    await page.getByLabel('Email').fill(seeded.email);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('Incorrect email or password.');

    await page.getByLabel('Password').fill(seeded.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Allow Test App access?' }).waitFor();
    expect(await page.textContent('body')).toContain('Test App');
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.href.startsWith(redirectUri));

    const landed = new URL(page.url());
    expect(landed.searchParams.get('state')).toBe(state);
    expect(landed.searchParams.get('iss')).toBe(server.issuer);
    expect(await page.textContent('h1')).toBe('Back at the app');

    const tokens = await oidc.authorizationCodeGrant(config, landed, { pkceCodeVerifier: codeVerifier, expectedState: state });
    expect(tokens.claims()?.sub).toBe(seeded.userId);

    // The session cookie is HttpOnly and SameSite=Lax.
    const session = (await page.context().cookies(server.issuer)).find((c) => c.name === '_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    expect(cspViolations).toEqual([]);
  });

  it('renders the admin API docs under their Content-Security-Policy, without a violation', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(8000);
    const cspViolations: string[] = [];
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
    await page.goto(`${server.issuer}/admin/docs`);
    await page.getByRole('heading', { name: /Identity provider admin API/ }).waitFor();
    await page.getByText('/admin/v1/clients', { exact: true }).first().waitFor();
    expect(cspViolations).toEqual([]);
    await page.close();
  });

  it('completes two sign-ins started in two tabs of one browser, in the opposite order', async () => {
    const redirectUri = `${appOrigin}/callback`;
    const seeded = await seed(server.env, { redirectUri });
    const config = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
    const context = await browser.newContext();
    const start = async (state: string) => {
      const page = await context.newPage();
      page.setDefaultTimeout(8000);
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', state, code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      await page.goto(url.href);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      return page;
    };
    const first = await start('first-tab');
    const second = await start('second-tab');
    for (const [page, state] of [[first, 'first-tab'], [second, 'second-tab']] as const) {
      await page.bringToFront();
      await page.getByLabel('Email').fill(seeded.email);
      await page.getByLabel('Password').fill(seeded.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      // The first asks for consent; the second finds it given.
      const allow = page.getByRole('button', { name: 'Allow', exact: true });
      await Promise.race([page.waitForURL((u) => u.href.startsWith(redirectUri)), allow.waitFor()]);
      if (!page.url().startsWith(redirectUri)) await allow.click();
      await page.waitForURL((u) => u.href.startsWith(redirectUri));
      expect(new URL(page.url()).searchParams.get('state')).toBe(state);
      expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
    }
    await context.close();
  });
});
