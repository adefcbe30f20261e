// Request objects (JAR, RFC 9101 §4–6, §10.5): an authorization request signed by the client with
// a key it registered, by value or pushed (RFC 9126 §3); never unsigned (alg none), never with a
// key the client did not register; required of a client that asks for it.
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { REDIRECT_URI } from '../helpers/flow.ts';
import { seed } from '../helpers/seed.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { formAction, UserAgent } from '../helpers/user-agent.ts';

let server: TestServer;
let api: AdminApi;
let person: { email: string; password: string };
beforeAll(async () => {
  server = await startServer();
  api = await adminApi(server);
  const seeded = await seed(server.env, { redirectUri: REDIRECT_URI });
  person = { email: seeded.email, password: seeded.password };
});
afterAll(async () => {
  await server?.close();
});

/** A web app that signs with its own key (private_key_jwt, and its request objects). */
async function signingApp(extra: Record<string, unknown> = {}) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = 'app-1';
  const created = await api.call<{ client: { clientId: string } }>('POST', '/admin/v1/clients', {
    name: 'Signing App',
    redirectUris: [REDIRECT_URI],
    scope: 'openid email',
    firstParty: true,
    jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] },
    ...extra,
  });
  expect(created.status).toBe(201);
  const { clientId } = created.body.client;
  const key = { key: privateKey, kid };
  const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.PrivateKeyJwt(key), { execute: [oidc.allowInsecureRequests] });
  return { clientId, key, config };
}

/** The authorization parameters a request object carries. */
async function params() {
  const verifier = oidc.randomPKCECodeVerifier();
  return { verifier, state: oidc.randomState(), values: { redirect_uri: REDIRECT_URI, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' } };
}

/** Through the login page to the app's callback. */
async function signIn(url: URL) {
  const ua = new UserAgent();
  const page = await ua.follow(url, REDIRECT_URI);
  expect(page.res.status).toBe(200);
  const html = await page.res.text();
  const done = await ua.submit(page.url, html, formAction(html, '/login'), person, REDIRECT_URI);
  return new URL(done.url);
}

/** Where an authorization URL leads: the error at the redirect URI, a sign-in (our interaction pages), or the page's status. */
async function outcome(url: URL) {
  const res = await fetch(url, { redirect: 'manual' });
  const location = res.headers.get('location');
  if (location?.startsWith(REDIRECT_URI)) return new URL(location).searchParams.get('error');
  if (location && new URL(location, server.issuer).pathname.startsWith('/interaction/')) return 'sign-in';
  return res.status;
}

describe('request objects', () => {
  it('SEC-JAR-01 a request object signed with the client’s registered key signs in, by value and pushed', async () => {
    const app = await signingApp();
    for (const pushed of [false, true]) {
      const { verifier, state, values } = await params();
      const byValue = await oidc.buildAuthorizationUrlWithJAR(app.config, { ...values, state }, app.key);
      const url = pushed ? await oidc.buildAuthorizationUrlWithPAR(app.config, Object.fromEntries(byValue.searchParams)) : byValue;
      expect(url.searchParams.has(pushed ? 'request_uri' : 'request')).toBe(true);
      const callback = await signIn(url);
      const tokens = await oidc.authorizationCodeGrant(app.config, callback, { pkceCodeVerifier: verifier, expectedState: state });
      expect(tokens.claims()!.sub).toBeTruthy();
    }
  });

  it('SEC-JAR-02 an unsigned request object, or one signed with a key the client did not register, is refused (invalid_request_object)', async () => {
    const app = await signingApp();
    const { values } = await params();
    const claims = { ...values, response_type: 'code', client_id: app.clientId, iss: app.clientId, aud: server.issuer, state: 'st' };
    const unsigned = new UnsecuredJWT(claims).encode();
    const stranger = await generateKeyPair('ES256');
    const foreign = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'app-1' }).setIssuedAt().setExpirationTime('5m').sign(stranger.privateKey);
    for (const request of [unsigned, foreign]) {
      const url = new URL(`${server.issuer}/authorize`);
      url.search = new URLSearchParams({ client_id: app.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', request }).toString();
      expect(await outcome(url)).toBe('invalid_request_object');
    }
  });

  it('SEC-JAR-03 a client that requires signed request objects gets no sign-in from a plain request; it needs registered keys to require them', async () => {
    const app = await signingApp({ requireSignedRequestObject: true });
    const { values } = await params();
    const plain = oidc.buildAuthorizationUrl(app.config, { ...values, state: 'st' });
    expect(await outcome(plain)).toBe('invalid_request');
    const signed = await oidc.buildAuthorizationUrlWithJAR(app.config, { ...values, state: 'st' }, app.key);
    expect(await outcome(signed)).toBe('sign-in');

    const keyless = await api.call<{ error_description: string }>('POST', '/admin/v1/clients', { name: 'No keys', redirectUris: [REDIRECT_URI], requireSignedRequestObject: true });
    expect(keyless.status).toBe(400);
    expect(keyless.body.error_description).toContain('jwks');
  });
});
