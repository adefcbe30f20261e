import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from '../helpers/seed.ts';
import { freePort, startServer, type TestServer } from '../helpers/server.ts';
import { API, browser as chromiumBinary, CHROMIUM_ARGS, listen, snippetLinesMissingFrom, startApi, type Loopback } from './support.ts';

// The single-page app of docs/integrate.md, "Single-page app: oidc-client-ts" (spa/app.js), served
// from a loopback origin of its own and run in Chromium. The library is its self-contained browser
// bundle (a plain script defining the global `oidc`); an import map hands it to the app's
// `import … from 'oidc-client-ts'`, as a bundler would.

const APP_SCRIPT = new URL('./spa/app.js', import.meta.url);
const BROWSER_BUNDLE = new URL('../../node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js', import.meta.url);

const page = (settings: Record<string, string>) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>SPA</title>
<script src="/lib/oidc-client-ts.min.js"></script>
<script>window.settings = ${JSON.stringify(settings)};</script>
<script type="importmap">{"imports": {"oidc-client-ts": "/lib/oidc-client-ts.js"}}</script>
<script type="module" src="/app.js"></script>
</head>
<body><button id="sign-in">Sign in</button> <button id="renew">Renew</button><pre id="out"></pre></body>
</html>`;

describe.skipIf(!chromiumBinary.available)('oidc-client-ts in a browser (docs/integrate.md)', () => {
  let server: TestServer;
  let api: Loopback;
  let spa: Loopback;
  let browser: Browser;
  let seeded: Awaited<ReturnType<typeof seed>>;

  beforeAll(async () => {
    server = await startServer();
    api = await startApi(server.issuer);
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    // A public client (no secret); our token endpoint answers CORS for its redirect URI's origin.
    seeded = await seed(server.env, { redirectUri: `${origin}/callback`, public: true });
    const settings = { issuer: server.issuer, clientId: seeded.clientId, api: API, apiUrl: api.origin };
    spa = await listen((req, res) => {
      const path = new URL(req.url ?? '/', origin).pathname;
      const js = { 'content-type': 'text/javascript' };
      if (path === '/' || path === '/callback') return void res.writeHead(200, { 'content-type': 'text/html' }).end(page(settings));
      if (path === '/app.js') return void res.writeHead(200, js).end(readFileSync(APP_SCRIPT));
      if (path === '/lib/oidc-client-ts.min.js') return void res.writeHead(200, js).end(readFileSync(BROWSER_BUNDLE));
      if (path === '/lib/oidc-client-ts.js') return void res.writeHead(200, js).end('export const { UserManager } = globalThis.oidc;');
      // (The browser's favicon request.)
      res.writeHead(path === '/favicon.ico' ? 204 : 404).end();
    }, port);
    browser = await chromium.launch({ executablePath: chromiumBinary.path, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    await spa?.close();
    await api?.close();
    await server?.close();
  });

  /** What the app wrote in #out, once it wrote something. */
  async function output(page: Page): Promise<Record<string, unknown>> {
    await page.locator('#out:not(:empty)').waitFor();
    return JSON.parse((await page.locator('#out').textContent())!) as Record<string, unknown>;
  }

  it('runs the code the guide shows', () => {
    expect(snippetLinesMissingFrom('docs/integrate.md', '## Single-page app: oidc-client-ts', [fileURLToPath(APP_SCRIPT)])).toEqual([]);
  });

  it('signs in with code + PKCE, calls the API with its JWT and renews it with the refresh token, across origins', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(10_000);
    const errors: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    const authorizeRequests: URL[] = [];
    const tokenRequests: string[] = [];
    page.on('request', (request) => {
      if (request.url() === `${server.issuer}/token` && request.method() === 'POST') tokenRequests.push(new URLSearchParams(request.postData() ?? '').get('grant_type') ?? '');
      const url = new URL(request.url());
      // The authorization request itself, not its resumption after login and consent (/authorize/<uid>).
      if (url.origin === server.issuer && url.pathname === '/authorize') authorizeRequests.push(url);
    });

    await page.goto(`${spa.origin}/`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(seeded.email);
    await page.getByLabel('Password').fill(seeded.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The consent page (its heading names the app).
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    await page.waitForURL((u) => u.href.startsWith(`${spa.origin}/callback`));

    const signedIn = await output(page);
    expect(signedIn.error).toBeUndefined();
    expect(signedIn.profile).toMatchObject({ sub: seeded.userId, email: seeded.email, name: 'Test User' });
    expect(signedIn.hasRefreshToken).toBe(true);
    expect(signedIn.orders).toEqual({ sub: seeded.userId, client_id: seeded.clientId, scope: 'read' });
    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
    await expect(jwtVerify(String(signedIn.accessToken), jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt' })).resolves.toBeDefined();

    expect(authorizeRequests).toHaveLength(1);
    expect(Object.fromEntries(authorizeRequests[0]!.searchParams)).toMatchObject({ response_type: 'code', code_challenge_method: 'S256', prompt: 'consent', resource: API, redirect_uri: `${spa.origin}/callback` });

    // The refresh token, from the page, to our token endpoint: a cross-origin request our CORS allows.
    await page.locator('#out').evaluate((el) => {
      el.textContent = '';
    });
    await page.getByRole('button', { name: 'Renew' }).click();
    const renewed = await output(page);
    expect(renewed.error).toBeUndefined();
    expect(renewed.renewed).toBe(true);
    expect(renewed.accessToken).not.toBe(signedIn.accessToken);
    expect(renewed.orders).toEqual({ sub: seeded.userId, client_id: seeded.clientId, scope: 'read' });
    // Both token requests came from the page itself (cross-origin), the second with the refresh token.
    expect(tokenRequests).toEqual(['authorization_code', 'refresh_token']);
    expect(errors).toEqual([]);
    await page.close();
  });
});
