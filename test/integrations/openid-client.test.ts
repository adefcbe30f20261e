import { fileURLToPath } from 'node:url';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIRECT_URI } from '../helpers/flow.ts';
import { seed } from '../helpers/seed.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { API, signInThroughPages, snippetLinesMissingFrom, startApi, type Loopback } from './support.ts';

// The snippets of docs/integrate.md, "Node.js server app: openid-client", run against a real server.

let server: TestServer;
let api: Loopback;
let seeded: Awaited<ReturnType<typeof seed>>;

beforeAll(async () => {
  server = await startServer();
  seeded = await seed(server.env, { redirectUri: REDIRECT_URI });
  api = await startApi(server.issuer);
});
afterAll(async () => {
  await api?.close();
  await server?.close();
});

describe('openid-client (docs/integrate.md)', () => {
  const ua = new UserAgent();

  it('runs the code the guide shows (all but the plain-http allowance of a test issuer)', () => {
    expect(snippetLinesMissingFrom('docs/integrate.md', '## Node.js server app: openid-client', [fileURLToPath(import.meta.url)])).toEqual([
      'const config = await oidc.discovery(new URL(ISSUER), CLIENT_ID, CLIENT_SECRET);',
    ]);
  });

  it('signs in with PKCE, reads userinfo with the opaque access token and rotates the refresh token', async () => {
    const ISSUER = server.issuer;
    const CLIENT_ID = seeded.clientId;
    const CLIENT_SECRET = seeded.clientSecret!;

    const config = await oidc.discovery(new URL(ISSUER), CLIENT_ID, CLIENT_SECRET, undefined, { execute: [oidc.allowInsecureRequests] });

    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const authorizationUrl = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid profile email offline_access',
      prompt: 'consent', // offline_access (a refresh token) is honoured only with it
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    });

    const landing = await signInThroughPages(ua, authorizationUrl, seeded, REDIRECT_URI);
    const currentUrl = new URL(landing.url);
    expect(currentUrl.searchParams.get('code')).toBeTruthy();

    const tokens = await oidc.authorizationCodeGrant(config, currentUrl, { pkceCodeVerifier: codeVerifier, expectedState: state });
    const { sub } = tokens.claims()!; // the validated ID token: sub, acr, amr
    const profile = await oidc.fetchUserInfo(config, tokens.access_token, sub); // email, name: the opaque token is for /userinfo

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);

    expect(sub).toBe(seeded.userId);
    // Without a resource the ID token says who, not what: the claims come from /userinfo.
    expect(tokens.claims()).not.toHaveProperty('email');
    expect(profile).toMatchObject({ sub: seeded.userId, email: seeded.email, name: 'Test User' });
    expect(tokens.access_token.split('.')).toHaveLength(1);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    await expect(oidc.fetchUserInfo(config, refreshed.access_token, sub)).resolves.toMatchObject({ email: seeded.email });
    // The rotated-out refresh token is spent.
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('without prompt=consent, offline_access is dropped and no refresh token is issued', async () => {
    const config = await oidc.discovery(new URL(server.issuer), seeded.clientId, seeded.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid offline_access',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    });
    // Consent was given before (it is remembered), so nothing asks the person again either.
    const landing = (await signInThroughPages(new UserAgent(), url, seeded, REDIRECT_URI)).url;
    const tokens = await oidc.authorizationCodeGrant(config, new URL(landing), { pkceCodeVerifier: codeVerifier, expectedState: state });
    expect(tokens.refresh_token).toBeUndefined();
    expect(tokens.scope?.split(' ')).not.toContain('offline_access');
  });

  it('with resource, gets JWT access tokens for the API, the claims in the ID token, and calls the API', async () => {
    const ISSUER = server.issuer;
    const CLIENT_ID = seeded.clientId;
    const CLIENT_SECRET = seeded.clientSecret!;
    const API_URL = api.origin;
    const config = await oidc.discovery(new URL(ISSUER), CLIENT_ID, CLIENT_SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();

    const apiAuthorizationUrl = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid profile email offline_access read',
      prompt: 'consent',
      resource: API,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    });
    const landing = await signInThroughPages(new UserAgent(), apiAuthorizationUrl, seeded, REDIRECT_URI);
    const currentUrl = new URL(landing.url);

    const apiTokens = await oidc.authorizationCodeGrant(config, currentUrl, { pkceCodeVerifier: codeVerifier, expectedState: state });
    const { email } = apiTokens.claims()!; // email, name: in the ID token, since the access token is for the API
    const orders = await oidc.fetchProtectedResource(config, apiTokens.access_token, new URL(`${API_URL}/orders`), 'GET');
    const apiRefreshed = await oidc.refreshTokenGrant(config, apiTokens.refresh_token!); // another JWT for the API

    expect(email).toBe(seeded.email);
    expect(apiTokens.claims()).toMatchObject({ name: 'Test User', sub: seeded.userId });
    expect(orders.status).toBe(200);
    expect(await orders.json()).toEqual({ sub: seeded.userId, client_id: seeded.clientId, scope: 'read' });
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    for (const token of [apiTokens.access_token, apiRefreshed.access_token]) {
      const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
      expect(payload).toMatchObject({ sub: seeded.userId, scope: 'read' });
    }

    // What the guide says about this choice: /userinfo refuses the API's token, and a refresh
    // cannot switch this sign-in to another resource.
    await expect(oidc.fetchUserInfo(config, apiTokens.access_token, seeded.userId)).rejects.toMatchObject({ status: 401 });
    const userinfo = await fetch(config.serverMetadata().userinfo_endpoint!, { headers: { authorization: `Bearer ${apiTokens.access_token}` } });
    expect(userinfo.status).toBe(401);
    expect(userinfo.headers.get('www-authenticate')).toContain('error="invalid_token"');
    await expect(oidc.refreshTokenGrant(config, apiRefreshed.refresh_token!, { resource: 'https://elsewhere.example.com' })).rejects.toMatchObject({ error: 'invalid_target' });
  });

  it('a sign-in without resource cannot get an API token later by refresh', async () => {
    const config = await oidc.discovery(new URL(server.issuer), seeded.clientId, seeded.clientSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid offline_access read',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    });
    const landing = await signInThroughPages(new UserAgent(), url, seeded, REDIRECT_URI);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(landing.url), { pkceCodeVerifier: codeVerifier, expectedState: state });
    expect(tokens.access_token.split('.')).toHaveLength(1);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!, { resource: API })).rejects.toMatchObject({ error: 'invalid_target' });
  });
});
