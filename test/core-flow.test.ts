import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idp } from './helpers/cli.ts';
import { seed } from './helpers/seed.ts';
import { discover, loginAndExchange, authorize, REDIRECT_URI } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

const API = 'https://api.example.com';

let server: TestServer;
let seeded: Awaited<ReturnType<typeof seed>>;
let config: oidc.Configuration;

beforeAll(async () => {
  server = await startServer();
  seeded = await seed(server.env, { redirectUri: REDIRECT_URI });
  config = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
});
afterAll(() => server?.close());

describe('discovery', () => {
  it('advertises only the code flow, S256 PKCE and our endpoints', async () => {
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(server.issuer);
    expect(meta.response_types_supported).toEqual(['code']);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials']));
    expect(meta.grant_types_supported).not.toContain('implicit');
    expect(meta.grant_types_supported).not.toContain('password');
    for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'revocation_endpoint', 'introspection_endpoint', 'end_session_endpoint'] as const) {
      expect(meta[endpoint], endpoint).toMatch(new RegExp(`^${server.issuer}/`));
    }
    expect(meta.id_token_signing_alg_values_supported).toContain('RS256');
  });
});

describe('authorization code + PKCE through the login and consent pages', () => {
  const ua = new UserAgent();
  let tokens: Awaited<ReturnType<typeof loginAndExchange>>['tokens'];

  it('issues a validated ID token (nonce included), an opaque access token and a refresh token', async () => {
    ({ tokens } = await loginAndExchange(ua, config, { login: seeded }));
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(seeded.userId);
    expect(claims.iss).toBe(server.issuer);
    expect(claims.aud).toBe(seeded.clientId);
    expect(decodeProtectedHeader(tokens.id_token!).alg).toBe('RS256');
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.expires_in).toBe(600);
    // Without a resource the access token is opaque: no JWT structure.
    expect(tokens.access_token.split('.')).toHaveLength(1);
  });

  it('serves userinfo with the claims of the granted scopes', async () => {
    const info = await oidc.fetchUserInfo(config, tokens.access_token, seeded.userId);
    expect(info).toMatchObject({ sub: seeded.userId, email: seeded.email, email_verified: false, name: 'Test User' });
  });

  it('rotates the refresh token on every use, and reuse of a rotated-out one revokes the grant', async () => {
    const first = tokens.refresh_token!;
    const second = await oidc.refreshTokenGrant(config, first);
    expect(second.refresh_token).toBeTruthy();
    expect(second.refresh_token).not.toBe(first);
    const third = await oidc.refreshTokenGrant(config, second.refresh_token!);
    expect(third.refresh_token).not.toBe(second.refresh_token);
    // The live access token still works before the replay...
    await expect(oidc.fetchUserInfo(config, third.access_token, seeded.userId)).resolves.toMatchObject({ sub: seeded.userId });

    // ...then the first, rotated-out token is replayed:
    await expect(oidc.refreshTokenGrant(config, first)).rejects.toMatchObject({ error: 'invalid_grant' });
    // the whole grant is gone: the newest refresh token and the access tokens of the grant die too.
    await expect(oidc.refreshTokenGrant(config, third.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(config, third.access_token, seeded.userId)).rejects.toBeDefined();
  });

  it('revokes a refresh token (RFC 7009), after which introspection says inactive and refresh fails', async () => {
    const { tokens: fresh } = await loginAndExchange(ua, config, {});
    const before = await oidc.tokenIntrospection(config, fresh.refresh_token!);
    expect(before.active).toBe(true);
    await oidc.tokenRevocation(config, fresh.refresh_token!);
    const after = await oidc.tokenIntrospection(config, fresh.refresh_token!);
    expect(after.active).toBe(false);
    await expect(oidc.refreshTokenGrant(config, fresh.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('introspects access and refresh tokens with any hint, and a grant revoked elsewhere ends them on the next request', async () => {
    const { tokens: fresh } = await loginAndExchange(ua, config, {});
    const introspect = (token: string, hint?: string) =>
      oidc.tokenIntrospection(config, token, hint ? { token_type_hint: hint } : undefined);
    for (const hint of [undefined, 'access_token', 'refresh_token']) {
      expect(await introspect(fresh.access_token, hint), `access token, hint ${hint}`).toMatchObject({ active: true, sub: seeded.userId, client_id: seeded.clientId, token_type: 'Bearer' });
      expect(await introspect(fresh.refresh_token!, hint), `refresh token, hint ${hint}`).toMatchObject({ active: true, sub: seeded.userId, client_id: seeded.clientId });
    }
    expect(await introspect('not-a-token')).toEqual({ active: false });

    // The grant is revoked by another process (the CLI): the very next requests see it.
    const revoked = await idp(['users', 'revoke-grants', seeded.userId], server.env);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(await introspect(fresh.access_token)).toEqual({ active: false });
    expect(await introspect(fresh.refresh_token!)).toEqual({ active: false });
    await expect(oidc.fetchUserInfo(config, fresh.access_token, seeded.userId)).rejects.toBeDefined();
    await expect(oidc.refreshTokenGrant(config, fresh.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('signs the user out through RP-initiated logout, after which prompt=none needs a login', async () => {
    const { tokens: fresh } = await loginAndExchange(ua, config, {});
    const postLogout = `${new URL(REDIRECT_URI).origin}/logged-out`;
    const logoutUrl = oidc.buildEndSessionUrl(config, { id_token_hint: fresh.id_token!, post_logout_redirect_uri: postLogout, state: 'bye' });
    const page = await ua.follow(logoutUrl);
    expect(page.res.status).toBe(200);
    const html = await page.res.text();
    expect(html).toContain('Sign out');
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)![1]!;
    const confirm = await ua.request(new URL('/session/end/confirm', server.issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    expect(confirm.status).toBe(303);
    const landing = new URL(confirm.headers.get('location')!);
    expect(landing.origin + landing.pathname).toBe(postLogout);
    expect(landing.searchParams.get('state')).toBe('bye');

    const silent = await authorize(ua, config, { prompt: 'none', consent: false });
    expect(silent.callbackUrl.searchParams.get('error')).toBe('login_required');
  });
});

describe('JWT access tokens for a registered API (RFC 9068)', () => {
  const jwks = () => createRemoteJWKSet(new URL('/jwks', server.issuer));

  it('issues an at+jwt that a resource server validates with nothing but our JWKS', async () => {
    const { tokens } = await loginAndExchange(new UserAgent(), config, { login: seeded, scope: 'openid offline_access read', resource: API });
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks(), {
      issuer: server.issuer,
      audience: API,
      typ: 'at+jwt',
      algorithms: ['RS256'],
    });
    expect(protectedHeader.kid).toBeTruthy();
    expect(payload).toMatchObject({ sub: seeded.userId, client_id: seeded.clientId, scope: 'read', acr: 'urn:idp:acr:password', amr: ['pwd'] });
    expect(typeof payload.jti).toBe('string');
    expect(payload.exp! - payload.iat!).toBe(600);

    // The refreshed access token is for the same API.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, { resource: API });
    await expect(jwtVerify(refreshed.access_token, jwks(), { issuer: server.issuer, audience: API, typ: 'at+jwt' })).resolves.toBeDefined();
  });

  it('rejects a tampered token and an ID token presented as an access token', async () => {
    const { tokens } = await loginAndExchange(new UserAgent(), config, { login: seeded, scope: 'openid read', resource: API });
    const [h, p, s] = tokens.access_token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), scope: 'read write' })).toString('base64url')}.${s}`;
    await expect(jwtVerify(tampered, jwks(), { issuer: server.issuer, audience: API, typ: 'at+jwt' })).rejects.toThrow();
    await expect(jwtVerify(tokens.id_token!, jwks(), { issuer: server.issuer, audience: seeded.clientId, typ: 'at+jwt' })).rejects.toThrow();
  });

  it('client_credentials yields a JWT for the API', async () => {
    const { createdClient, idp } = await import('./helpers/cli.ts');
    const created = await idp(['clients', 'create', '--name', 'backend', '--grant-type', 'client_credentials', '--scope', '', '--api', `${API} read`, '--json'], server.env);
    expect(created.code).toBe(0);
    const { clientId: client_id, clientSecret } = createdClient(created);
    const m2m = await discover(server.issuer, client_id, clientSecret);
    const tokens = await oidc.clientCredentialsGrant(m2m, { scope: 'read', resource: API });
    const { payload } = await jwtVerify(tokens.access_token, jwks(), { issuer: server.issuer, audience: API, typ: 'at+jwt' });
    expect(payload).toMatchObject({ client_id, scope: 'read', sub: client_id });
    expect(tokens.refresh_token).toBeUndefined();
  });
});

describe('restart on the same database', () => {
  it('keeps sessions, refresh tokens and signing keys', async () => {
    const ua = new UserAgent();
    const { tokens } = await loginAndExchange(ua, config, { login: seeded });
    const kid = decodeProtectedHeader(tokens.id_token!).kid;

    await server.restart();

    // Signing keys survived: the ID token issued before the restart still verifies against the JWKS.
    const jwks = createRemoteJWKSet(new URL('/jwks', server.issuer));
    await expect(jwtVerify(tokens.id_token!, jwks, { issuer: server.issuer, audience: seeded.clientId })).resolves.toBeDefined();
    // The refresh token survived.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(decodeProtectedHeader(refreshed.id_token!).kid).toBe(kid);
    // The browser session survived: no login page this time.
    const again = await authorize(ua, config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(again.callbackUrl.searchParams.get('code')).toBeTruthy();
  });
});
