// OpenID conformance suite: the Dynamic OP plan (oidcc-dynamic-certification-test-plan): clients
// registered at the registration endpoint (with an initial access token, as this provider
// requires). A registered client cannot be exempted from PKCE, so these flows send it, as every
// client of this provider must. The plan's variant is private_key_jwt: as the suite does, every
// client is registered with token_endpoint_auth_method private_key_jwt and its public key in
// `jwks` (by value: a jwks_uri the server would fetch cannot be served from here, see
// docs/conformance.md), and authenticates at the token endpoint with a signed client assertion.
import { decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { idp } from '../helpers/cli.ts';
import { formAction } from '../helpers/user-agent.ts';
import { authorizationUrl, authorize, type AuthorizeOptions, exchange, expectErrorPage, type Op, REDIRECT_URI, startOp } from '../helpers/conformance.ts';

let op: Op;
/** The suite's client key (RS256), registered in every client's jwks. */
let clientKey: { key: CryptoKey; kid: string };
let clientJwks: { keys: Record<string, unknown>[] };
beforeAll(async () => {
  // The server picks up keys from the database every second (a rotation from the CLI shows soon).
  op = await startOp({ KEY_REFRESH_SECONDS: '1' });
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  clientKey = { key: privateKey, kid: 'suite-rp-1' };
  clientJwks = { keys: [{ ...(await exportJWK(publicKey)), kid: clientKey.kid, alg: 'RS256', use: 'sig' }] };
});
afterAll(() => op?.close());

/** The metadata the suite registers a client with (private_key_jwt, its key by value), plus `extra`. */
const clientMetadata = (extra: Record<string, unknown> = {}) => ({
  client_name: 'Conformance Suite (dynamic)',
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'private_key_jwt',
  jwks: clientJwks,
  ...extra,
});

/** A client as the suite registers it; its configuration authenticates with a client assertion signed with the suite's key. */
async function registerClient(extra: Record<string, unknown> = {}) {
  const registered = await op.register(clientMetadata(extra));
  expect(registered.status, JSON.stringify(registered.body)).toBe(201);
  const clientId = String(registered.body.client_id);
  return { clientId, body: registered.body, config: await op.discover(clientId, undefined, oidc.PrivateKeyJwt(clientKey)) };
}

/** The happy flow with PKCE: through the pages, the code redeemed with the client's assertion. */
async function pkceFlow(config: oidc.Configuration, opts: AuthorizeOptions = {}) {
  const verifier = oidc.randomPKCECodeVerifier();
  const challenge = await oidc.calculatePKCECodeChallenge(verifier);
  const ua = op.browser();
  const result = await authorize(ua, config, { login: op.person, ...opts, params: { code_challenge: challenge, code_challenge_method: 'S256', ...opts.params } });
  const tokens = await exchange(config, result, { pkceCodeVerifier: verifier });
  return { ua, result, tokens, claims: tokens.claims()! };
}

/** Registers a client with a link (logo_uri, policy_uri, tos_uri) and signs in: the person is shown it before allowing access. */
async function expectShownOnSignIn(field: string, uri: string, markup: string) {
  const app = await registerClient({ [field]: uri });
  expect(app.body[field]).toBe(uri);
  const verifier = oidc.randomPKCECodeVerifier();
  const url = authorizationUrl(app.config, { state: 'st', params: { code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' } });
  const ua = op.browser();
  const login = await ua.follow(url);
  const html = await login.res.text();
  const consent = await ua.submit(login.url, html, formAction(html, '/login'), { email: op.person.email, password: op.person.password }, REDIRECT_URI);
  expect(consent.res.status).toBe(200);
  expect(await consent.res.text()).toContain(markup);
}

describe('OpenID Connect Core: Dynamic Certification Profile', () => {
  it('oidcc-server: a client registered at the registration endpoint signs a person in; userinfo answers', async () => {
    const meta = await op.metadata();
    expect(meta.registration_endpoint).toBe(`${op.issuer}/register`);
    const app = await registerClient();
    expect(app.body).toMatchObject({ token_endpoint_auth_method: 'private_key_jwt', redirect_uris: [REDIRECT_URI], jwks: clientJwks });
    // It signs with its key: no secret is issued.
    expect(app.body).not.toHaveProperty('client_secret');
    const { tokens, claims } = await pkceFlow(app.config);
    expect(claims).toMatchObject({ iss: op.issuer, aud: app.clientId, sub: op.person.userId });
    expect(await oidc.fetchUserInfo(app.config, tokens.access_token, claims.sub)).toMatchObject({ sub: op.person.userId });
  });

  it('oidcc-idtoken-rs256: a client registered with id_token_signed_response_alg=RS256 gets RS256 ID tokens that verify', async () => {
    const app = await registerClient({ id_token_signed_response_alg: 'RS256' });
    expect(app.body.id_token_signed_response_alg).toBe('RS256');
    const { tokens } = await pkceFlow(app.config);
    expect(decodeProtectedHeader(tokens.id_token!).alg).toBe('RS256');
  });

  it('oidcc-ensure-redirect-uri-in-authorization-request: a client with two redirect URIs that sends none gets an error page', async () => {
    const app = await registerClient({ redirect_uris: [REDIRECT_URI, `${REDIRECT_URI}2`] });
    const result = await authorize(op.browser(), app.config, { login: op.person, params: { redirect_uri: undefined, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' } });
    expectErrorPage(result, 'redirect_uri');
  });

  it('oidcc-redirect-uri-query-OK: a registered redirect URI with a query is used as registered, and the query is kept', async () => {
    const withQuery = `${REDIRECT_URI}?foo=bar`;
    const app = await registerClient({ redirect_uris: [withQuery] });
    const verifier = oidc.randomPKCECodeVerifier();
    const result = await authorize(op.browser(), app.config, { login: op.person, redirectUri: withQuery, params: { code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' } });
    expect(result.response.get('foo')).toBe('bar');
    expect(result.response.get('state')).toBe(result.state);
    // The code is redeemed with the redirect URI exactly as registered, query included.
    const tokens = await oidc.genericGrantRequest(app.config, 'authorization_code', { code: result.response.get('code')!, redirect_uri: withQuery, code_verifier: verifier });
    expect(tokens.id_token).toBeTruthy();
  });

  it('oidcc-redirect-uri-query-mismatch: a query that differs from the registered one gets an error page', async () => {
    const app = await registerClient({ redirect_uris: [`${REDIRECT_URI}?foo=bar`] });
    const result = await authorize(op.browser(), app.config, { login: op.person, redirectUri: `${REDIRECT_URI}?foo=zot`, params: { code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' } });
    expectErrorPage(result, 'redirect_uri');
  });

  it('oidcc-redirect-uri-query-added: a query added to a registered redirect URI without one gets an error page', async () => {
    const app = await registerClient();
    const result = await authorize(op.browser(), app.config, { login: op.person, redirectUri: `${REDIRECT_URI}?foo=bar`, params: { code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' } });
    expectErrorPage(result, 'redirect_uri');
  });

  it('oidcc-redirect-uri-regfrag: registering a redirect URI with a fragment is refused (invalid_redirect_uri)', async () => {
    const refused = await op.register(clientMetadata({ redirect_uris: [`${REDIRECT_URI}#frag`] }));
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/^invalid_(redirect_uri|client_metadata)$/);
  });

  it('oidcc-registration-logo-uri: a client registered with a logo_uri has its logo shown to the person signing in (the consent page)', async () => {
    await expectShownOnSignIn('logo_uri', 'https://conformance.example.com/logo.png', '<img src="https://conformance.example.com/logo.png"');
  });

  it('oidcc-registration-policy-uri: a client registered with a policy_uri has it linked for the person signing in (the consent page)', async () => {
    await expectShownOnSignIn('policy_uri', 'https://conformance.example.com/policy', '<a href="https://conformance.example.com/policy"');
  });

  it('oidcc-registration-tos-uri: a client registered with a tos_uri has it linked for the person signing in (the consent page)', async () => {
    await expectShownOnSignIn('tos_uri', 'https://conformance.example.com/tos', '<a href="https://conformance.example.com/tos"');
  });

  it('oidcc-registration-sector-bad: a sector_identifier_uri is refused at registration (pairwise subjects are not offered, so every one is)', async () => {
    const refused = await op.register(clientMetadata({ sector_identifier_uri: 'https://conformance.example.com/sector.json' }));
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_client_metadata');
  });

  it('oidcc-server-rotate-keys: after a key rotation the JWKS has a new key and still the old one', async () => {
    const kids = async () => ((await (await op.fetch(`${op.issuer}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    const before = await kids();
    const rotated = await idp(['keys', 'rotate', '--json'], op.server.env);
    expect(rotated.code, rotated.stderr).toBe(0);
    const after = await vi.waitFor(
      async () => {
        const now = await kids();
        expect(now.some((kid) => !before.includes(kid))).toBe(true);
        return now;
      },
      { timeout: 10_000, interval: 200 },
    );
    expect(after).toEqual(expect.arrayContaining(before));
  });

  it('oidcc-refresh-token: a registered client gets a refresh token (offline_access, prompt=consent) that works, only for itself', async () => {
    const app = await registerClient({ scope: 'openid offline_access' });
    const first = await pkceFlow(app.config, { params: { scope: 'openid offline_access', prompt: 'consent' } });
    const refreshed = await oidc.refreshTokenGrant(app.config, first.tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(first.tokens.access_token);
    expect(refreshed.claims()).toMatchObject({ sub: first.claims.sub, iss: op.issuer, aud: app.clientId });
    const other = await registerClient({ scope: 'openid offline_access' });
    const second = await pkceFlow(other.config, { params: { scope: 'openid offline_access', prompt: 'consent' } });
    await expect(oidc.refreshTokenGrant(app.config, second.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('oidcc-ensure-request-object-with-redirect-uri: the redirect_uri of a request object signed with the registered key wins over an invalid one in the query', async () => {
    const app = await registerClient({ request_object_signing_alg: 'RS256' });
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const inner = authorizationUrl(app.config, { state, nonce, params: { code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' } });
    const byValue = await oidc.buildAuthorizationUrlWithJAR(app.config, Object.fromEntries(inner.searchParams), clientKey);
    expect(byValue.searchParams.has('request')).toBe(true);
    byValue.searchParams.set('redirect_uri', 'https://conformance.example.com/invalid');
    const result = await authorize(op.browser(), app.config, { login: op.person, url: byValue });
    expect(result.page, 'the invalid redirect_uri of the query was used').toBeUndefined();
    const tokens = await exchange(app.config, { ...result, state, nonce }, { pkceCodeVerifier: verifier });
    expect(tokens.claims()).toMatchObject({ sub: op.person.userId, aud: app.clientId, nonce });
  });

  it('oidcc-ensure-client-assertion-with-iss-aud-succeeds: a client assertion whose aud is the issuer (not the token endpoint) authenticates the private_key_jwt client at the token endpoint', async () => {
    const app = await registerClient();
    const verifier = oidc.randomPKCECodeVerifier();
    const result = await authorize(op.browser(), app.config, { login: op.person, params: { code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' } });
    expect(result.response.get('code'), result.page?.html.slice(0, 300)).toBeTruthy();
    const assertion = (aud: string) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: clientKey.kid })
        .setIssuer(app.clientId)
        .setSubject(app.clientId)
        .setAudience(aud)
        .setJti(oidc.randomState())
        .setIssuedAt()
        .setExpirationTime('60s')
        .sign(clientKey.key);
    const res = await op.fetch(`${op.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: result.response.get('code')!,
        redirect_uri: REDIRECT_URI,
        code_verifier: verifier,
        client_id: app.clientId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: await assertion(op.issuer),
      }),
    });
    const body = (await res.json()) as { id_token?: string; access_token?: string; error_description?: string };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.access_token).toBeTruthy();
    const { payload } = await jwtVerify(body.id_token!, await op.jwks(), { issuer: op.issuer, audience: app.clientId });
    expect(payload.sub).toBe(op.person.userId);
  });
});
