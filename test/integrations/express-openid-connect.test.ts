import { fileURLToPath } from 'node:url';
import express from 'express';
import { auth, requiresAuth } from 'express-openid-connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed } from '../helpers/seed.ts';
import { freePort, startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { API, signInThroughPages, snippetLinesMissingFrom, startApi, type Loopback } from './support.ts';

// The snippet of docs/integrate.md, "Express: express-openid-connect", as a real Express app on
// 127.0.0.1, signed in to through our login and consent pages.

let server: TestServer;
let resourceServer: Loopback;
const apps: Loopback[] = [];

beforeAll(async () => {
  server = await startServer();
  resourceServer = await startApi(server.issuer);
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await resourceServer?.close();
  await server?.close();
});

/** The guide's app; `withApi: false` is its variant without `resource`, which reads /userinfo. */
async function startApp(withApi = true) {
  const port = await freePort();
  const ISSUER = server.issuer;
  const APP_URL = `http://127.0.0.1:${port}`;
  const seeded = await seed(server.env, { redirectUri: `${APP_URL}/callback` });
  const CLIENT_ID = seeded.clientId;
  const CLIENT_SECRET = seeded.clientSecret!;
  const SESSION_SECRET = 'a session secret of at least 32 characters';
  const API_URL = resourceServer.origin;

  const app = express();
  if (withApi) {
    app.use(
      auth({
        issuerBaseURL: ISSUER,
        baseURL: APP_URL,
        clientID: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        secret: SESSION_SECRET,
        authRequired: false,
        authorizationParams: {
          response_type: 'code', // its default is id_token (implicit), which we refuse
          scope: 'openid profile email offline_access read',
          prompt: 'consent',
          resource: API,
        },
      }),
    );
  } else {
    app.use(
      auth({
        issuerBaseURL: ISSUER,
        baseURL: APP_URL,
        clientID: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        secret: SESSION_SECRET,
        authRequired: false,
        authorizationParams: { response_type: 'code', scope: 'openid profile email offline_access', prompt: 'consent' },
      }),
    );
  }

  app.get('/orders', requiresAuth(), async (req, res) => {
    let accessToken = req.oidc.accessToken!;
    if (accessToken.isExpired()) accessToken = await accessToken.refresh();
    const orders = await fetch(`${API_URL}/orders`, { headers: { authorization: `Bearer ${accessToken.access_token}` } });
    res.json({ user: req.oidc.user, orders: await orders.json() });
  });

  // Beyond the guide, for the test to look at what the app holds.
  app.get('/refresh', requiresAuth(), async (req, res) => {
    const before = req.oidc.refreshToken;
    const accessToken = await req.oidc.accessToken!.refresh();
    const orders = await fetch(`${API_URL}/orders`, { headers: { authorization: `Bearer ${accessToken.access_token}` } });
    res.json({ rotated: Boolean(before && req.oidc.refreshToken && before !== req.oidc.refreshToken), orders: orders.status });
  });
  app.get('/userinfo', requiresAuth(), async (req, res) => {
    res.json({
      idToken: req.oidc.idTokenClaims,
      userinfo: await req.oidc.fetchUserInfo().catch((err: { name?: string; status?: number; cause?: unknown }) => ({ failed: err.name, status: err.status })),
    });
  });

  const served = await new Promise<Loopback>((resolve) => {
    const listener = app.listen(port, '127.0.0.1', () =>
      resolve({
        origin: APP_URL,
        close: () =>
          new Promise<void>((done) => {
            listener.closeAllConnections();
            listener.close(() => done());
          }),
      }),
    );
  });
  apps.push(served);
  return { app: served, seeded };
}

describe('express-openid-connect (docs/integrate.md)', () => {
  it('runs the code the guide shows', () => {
    expect(snippetLinesMissingFrom('docs/integrate.md', '## Express: express-openid-connect', [fileURLToPath(import.meta.url)])).toEqual([]);
  });

  it('signs in with code + PKCE, knows the user from the ID token and calls the API with its JWT', async () => {
    const { app, seeded } = await startApp();
    const ua = new UserAgent();
    // requiresAuth() sends the browser to our authorization endpoint, and back to /orders after the callback.
    const landing = await signInThroughPages(ua, `${app.origin}/orders`, seeded);
    expect(landing.status, landing.html).toBe(200);
    expect(landing.url).toBe(`${app.origin}/orders`);
    const body = JSON.parse(landing.html) as { user: Record<string, unknown>; orders: unknown };
    expect(body.user).toMatchObject({ sub: seeded.userId, email: seeded.email, name: 'Test User' });
    expect(body.orders).toEqual({ sub: seeded.userId, client_id: seeded.clientId, scope: 'read' });

    // The refresh token (offline_access + prompt=consent) rotates, and the new access token is for the API too.
    const refreshed = await ua.request(`${app.origin}/refresh`);
    expect(await refreshed.json()).toEqual({ rotated: true, orders: 200 });
  });

  it('sent PKCE S256, response_type=code, prompt=consent and the resource', async () => {
    const { app } = await startApp();
    const res = await new UserAgent().request(`${app.origin}/login`);
    expect(res.status).toBe(302);
    const authorize = new URL(res.headers.get('location')!);
    expect(authorize.origin + authorize.pathname).toBe(`${server.issuer}/authorize`);
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({ response_type: 'code', code_challenge_method: 'S256', prompt: 'consent', resource: API });
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
  });

  it('without resource, the access token is opaque and fetchUserInfo() gets the claims', async () => {
    const { app, seeded } = await startApp(false);
    const ua = new UserAgent();
    const landing = await signInThroughPages(ua, `${app.origin}/userinfo`, seeded);
    expect(landing.status, landing.html).toBe(200);
    const body = JSON.parse(landing.html) as { idToken: Record<string, unknown>; userinfo: Record<string, unknown> };
    expect(body.idToken.sub).toBe(seeded.userId);
    expect(body.idToken).not.toHaveProperty('email');
    expect(body.userinfo).toMatchObject({ sub: seeded.userId, email: seeded.email, name: 'Test User' });
  });

  it('with resource, fetchUserInfo() is refused, as the guide warns', async () => {
    const { app, seeded } = await startApp();
    const landing = await signInThroughPages(new UserAgent(), `${app.origin}/userinfo`, seeded);
    const body = JSON.parse(landing.html) as { idToken: Record<string, unknown>; userinfo: Record<string, unknown> };
    expect(body.idToken).toMatchObject({ sub: seeded.userId, email: seeded.email });
    // Our /userinfo answers the API's JWT with 401 and a WWW-Authenticate challenge.
    expect(body.userinfo).toEqual({ failed: 'WWWAuthenticateChallengeError', status: 401 });
  });
});
