import { fileURLToPath } from 'node:url';
import { Auth, type AuthConfig } from '@auth/core';
import { decode } from '@auth/core/jwt';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliActor } from '../../src/audit/service.ts';
import { seed, withServices } from '../helpers/seed.ts';
import { freePort, startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { API, fetchHandler, listen, signInThroughPages, snippetLinesMissingFrom, type Loopback } from './support.ts';

// The snippet of docs/integrate.md, "Auth.js …": @auth/core's Auth() behind a plain Node HTTP
// server on 127.0.0.1 (what @auth/express, SvelteKit or Next.js do for it), signed in to
// through our login and consent pages.

let server: TestServer;
const apps: Loopback[] = [];

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await server?.close();
});

const AUTH_SECRET = 'an Auth.js secret of at least 32 characters';

/**
 * The guide's configuration; `withApi: false` is its variant without `resource`, reading
 * /userinfo; `idTokenUserClaims` (without `resource`): Auth.js's default, reading the user from
 * the ID token, with the client's idTokenUserClaims set to that.
 */
async function startApp(withApi = true, idTokenUserClaims?: boolean) {
  const origin = `http://127.0.0.1:${await freePort()}`;
  const seeded = await seed(server.env, { redirectUri: `${origin}/auth/callback/idp` });
  if (idTokenUserClaims !== undefined) await withServices(server.env, ({ clients }) => clients.update(seeded.clientId, { idTokenUserClaims }, cliActor()));
  const ISSUER = server.issuer;
  const CLIENT_ID = seeded.clientId;
  const CLIENT_SECRET = seeded.clientSecret!;

  const authConfig: AuthConfig = {
    secret: AUTH_SECRET,
    trustHost: true,
    providers: [
      {
        id: 'idp',
        name: 'Our login',
        type: 'oidc',
        issuer: ISSUER,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        checks: ['pkce', 'state'],
        authorization: { params: { scope: 'openid profile email offline_access read', prompt: 'consent', resource: API } },
        ...(withApi ? {} : { authorization: { params: { scope: 'openid profile email offline_access', prompt: 'consent' } }, idToken: false }),
        ...(idTokenUserClaims === undefined ? {} : { authorization: { params: { scope: 'openid profile email offline_access', prompt: 'consent' } }, idToken: true }),
      },
    ],
    callbacks: {
      // Keep the tokens in Auth.js's encrypted session cookie, to call the API from the server.
      jwt({ token, account }) {
        if (account) return { ...token, accessToken: account.access_token, refreshToken: account.refresh_token, expiresAt: account.expires_at };
        return token;
      },
    },
  };

  const port = Number(new URL(origin).port);
  const app = await listen(
    fetchHandler(origin, async (request) => {
      const response = await Auth(request, authConfig);
      return response;
    }),
    port,
  );
  apps.push(app);
  return { origin, seeded };
}

/** Auth.js's sign-in as its default pages do it: the CSRF token, then a POST to /auth/signin/idp. */
async function startSignIn(ua: UserAgent, origin: string) {
  const { csrfToken } = (await (await ua.request(`${origin}/auth/csrf`)).json()) as { csrfToken: string };
  const res = await ua.request(`${origin}/auth/signin/idp`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrfToken, callbackUrl: `${origin}/signed-in` }),
  });
  expect(res.status).toBe(302);
  return new URL(res.headers.get('location')!);
}

describe('Auth.js, @auth/core (docs/integrate.md)', () => {
  it('runs the code the guide shows (Auth() is called the same way, inside a Node server)', () => {
    expect(snippetLinesMissingFrom('docs/integrate.md', '## Auth.js (Next.js, SvelteKit, Express, or @auth/core)', [fileURLToPath(import.meta.url)])).toEqual([]);
  });

  it('signs in with code + PKCE + state, takes the user from the ID token and keeps a JWT for the API', async () => {
    const { origin, seeded } = await startApp();
    const ua = new UserAgent();
    const authorize = await startSignIn(ua, origin);
    expect(authorize.origin + authorize.pathname).toBe(`${server.issuer}/authorize`);
    expect(Object.fromEntries(authorize.searchParams)).toMatchObject({ response_type: 'code', code_challenge_method: 'S256', prompt: 'consent', resource: API, redirect_uri: `${origin}/auth/callback/idp` });
    expect(authorize.searchParams.get('state')).toBeTruthy();

    // Through our pages, back to /auth/callback/idp, which sends the browser on to the callbackUrl.
    const landing = await signInThroughPages(ua, authorize, seeded, `${origin}/signed-in`);
    expect(landing.url).toBe(`${origin}/signed-in`);

    const session = (await (await ua.request(`${origin}/auth/session`)).json()) as { user?: { name?: string; email?: string } };
    expect(session.user).toEqual({ name: 'Test User', email: seeded.email });

    // What the jwt callback kept, in Auth.js's encrypted session cookie.
    const cookie = ua.cookies.get('authjs.session-token');
    expect(cookie).toBeTruthy();
    const kept = await decode({ token: cookie, secret: AUTH_SECRET, salt: 'authjs.session-token' });
    expect(kept?.refreshToken).toEqual(expect.any(String));
    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
    const { payload } = await jwtVerify(String(kept?.accessToken), jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
    expect(payload).toMatchObject({ sub: seeded.userId, client_id: seeded.clientId, scope: 'read' });
  });

  it('without resource, with idToken: false, takes the user from /userinfo with the opaque token', async () => {
    const { origin, seeded } = await startApp(false);
    const ua = new UserAgent();
    const authorize = await startSignIn(ua, origin);
    expect(authorize.searchParams.has('resource')).toBe(false);
    const landing = await signInThroughPages(ua, authorize, seeded, `${origin}/signed-in`);
    expect(landing.url).toBe(`${origin}/signed-in`);
    const session = (await (await ua.request(`${origin}/auth/session`)).json()) as { user?: { name?: string; email?: string } };
    expect(session.user).toEqual({ name: 'Test User', email: seeded.email });
    const kept = await decode({ token: ua.cookies.get('authjs.session-token'), secret: AUTH_SECRET, salt: 'authjs.session-token' });
    expect(String(kept?.accessToken).split('.')).toHaveLength(1);
  });

  it("without resource, with Auth.js's default (the user from the ID token), gets the email and name from a client with idTokenUserClaims, and none from one without", async () => {
    const signIn = async (idTokenUserClaims: boolean) => {
      const { origin, seeded } = await startApp(false, idTokenUserClaims);
      const ua = new UserAgent();
      const authorize = await startSignIn(ua, origin);
      expect(authorize.searchParams.has('resource')).toBe(false);
      expect((await signInThroughPages(ua, authorize, seeded, `${origin}/signed-in`)).url).toBe(`${origin}/signed-in`);
      return { seeded, session: (await (await ua.request(`${origin}/auth/session`)).json()) as { user?: { name?: string; email?: string } } };
    };
    const configured = await signIn(true);
    expect(configured.session.user).toEqual({ name: 'Test User', email: configured.seeded.email });
    // Without it, the ID token holds no email or name: Auth.js's user has neither.
    const unconfigured = await signIn(false);
    expect(unconfigured.session.user?.email).toBeUndefined();
    expect(unconfigured.session.user?.name).toBeUndefined();
  });
});
