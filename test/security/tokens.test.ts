// Refresh tokens, userinfo, disabled grants: RFC 9700 §2.2.2 / §4.14, OIDC Core §5.3, RFC 6750 §2.3.
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { seed } from '../helpers/seed.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { basic, post, rowCounts, securityContext, signOut } from './setup.ts';

const ctx = securityContext();
const login = (scope = 'openid profile email offline_access') => loginAndExchange(new UserAgent(), ctx.config, { login: ctx.app, scope }).then((r) => r.tokens);

describe('refresh tokens', () => {
  it("SEC-RT-01 another client's refresh token is refused", async () => {
    const tokens = await login();
    const other = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const res = await post(ctx, '/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, { authorization: basic(other.clientId, other.clientSecret!) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('SEC-RT-02 scope widening on refresh is refused', async () => {
    const tokens = await login('openid offline_access');
    await expect(oidc.refreshTokenGrant(ctx.config, tokens.refresh_token!, { scope: 'openid offline_access email' })).rejects.toMatchObject({ error: 'invalid_scope' });
  });

  it('SEC-RT-03 an expired refresh token is refused (absolute lifetime)', async () => {
    const tokens = await login();
    await ctx.server.current.db.prisma.oidcPayload.updateMany({ where: { model: 'RefreshToken' }, data: { expiresAt: new Date(Date.now() - 1000) } });
    await expect(oidc.refreshTokenGrant(ctx.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('SEC-RT-04 a password change ends refresh tokens', async () => {
    const user = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const cfg = await discover(ctx.server.issuer, user.clientId, user.clientSecret);
    const { tokens } = await loginAndExchange(new UserAgent(), cfg, { login: user });
    await ctx.server.current.services.users.setPassword(user.userId, 'a brand new secret phrase', { actor: 'test' });
    await expect(oidc.refreshTokenGrant(cfg, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('SEC-RT-06 a reused (already rotated) refresh token is refused and revokes the whole grant', async () => {
    const tokens = await login();
    const rotated = await oidc.refreshTokenGrant(ctx.config, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(ctx.config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The legitimate holder's newer tokens die with the grant.
    await expect(oidc.refreshTokenGrant(ctx.config, rotated.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const userinfo = await fetch(`${ctx.server.issuer}/userinfo`, { headers: { authorization: `Bearer ${rotated.access_token}` } });
    expect(userinfo.status).toBe(401);
  });

  it('SEC-RT-07 idle and absolute lifetimes: each refresh token lives at most REFRESH_TOKEN_IDLE_TTL, never past the absolute end', async () => {
    const prisma = ctx.server.current.db.prisma;
    const tokens = await login();
    const stored = () => prisma.oidcPayload.findFirstOrThrow({ where: { model: 'RefreshToken', consumedAt: null }, orderBy: { expiresAt: 'desc' } });
    const days = (row: { expiresAt: Date | null }) => (row.expiresAt!.getTime() - Date.now()) / 86_400_000;
    const first = await stored();
    expect(days(first)).toBeGreaterThan(6.9);
    expect(days(first)).toBeLessThanOrEqual(7); // idle (7 days), not absolute (14 days)
    // Pretend the login was 13.5 days ago: the rotated token gets only what is left of the 14 days.
    const payload = JSON.parse(first.payload) as { iiat: number };
    payload.iiat -= 13.5 * 86_400;
    await prisma.oidcPayload.update({ where: { model_id: { model: 'RefreshToken', id: first.id } }, data: { payload: JSON.stringify(payload) } });
    const rotated = await oidc.refreshTokenGrant(ctx.config, tokens.refresh_token!);
    const second = await prisma.oidcPayload.findFirstOrThrow({ where: { model: 'RefreshToken', consumedAt: null, grantId: first.grantId } });
    expect(days(second)).toBeGreaterThan(0.45);
    expect(days(second)).toBeLessThanOrEqual(0.5);
    // A token left unused past its expiry is refused.
    await prisma.oidcPayload.update({ where: { model_id: { model: 'RefreshToken', id: second.id } }, data: { expiresAt: new Date(Date.now() - 1000) } });
    await expect(oidc.refreshTokenGrant(ctx.config, rotated.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('SEC-RT-08 logout revokes what was bound to the session; offline_access refresh tokens outlive it by design, until the app revokes them', async () => {
    const ua = new UserAgent();
    const online = (await loginAndExchange(ua, ctx.config, { login: ctx.app, scope: 'openid email' })).tokens;
    const offline = (await loginAndExchange(ua, ctx.config, { scope: 'openid offline_access' })).tokens;
    await signOut(ctx, ua, offline.id_token!);
    const userinfo = (token: string) => fetch(`${ctx.server.issuer}/userinfo`, { headers: { authorization: `Bearer ${token}` } });
    expect((await userinfo(online.access_token)).status).toBe(401);
    // The user granted offline access: the app keeps it after logout (OIDC Core §11)...
    const refreshed = await oidc.refreshTokenGrant(ctx.config, offline.refresh_token!);
    // ...and an app that signs its user out revokes it (RFC 7009): the grant ends.
    await oidc.tokenRevocation(ctx.config, refreshed.refresh_token!);
    await expect(oidc.refreshTokenGrant(ctx.config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('SEC-RT-09 a made-up refresh token is refused, and nothing changes', async () => {
    const before = await rowCounts(ctx);
    const res = await post(ctx, '/token', { grant_type: 'refresh_token', refresh_token: 'not-a-token' }, { authorization: basic(ctx.app.clientId, ctx.app.clientSecret!) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(await rowCounts(ctx)).toEqual(before);
  });

  it('SEC-RT-05 no refresh token without offline_access', async () => {
    const tokens = await login('openid email');
    expect(tokens.refresh_token).toBeUndefined();
  });
});

describe('introspection and revocation', () => {
  const introspect = (token: string, client: { clientId: string; clientSecret?: string }) =>
    post(ctx, '/token/introspection', { token }, { authorization: basic(client.clientId, client.clientSecret!) });

  it('SEC-IR-01 introspection describes a token only to the client it was issued to; any other confidential client learns nothing', async () => {
    const tokens = await login();
    const other = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    for (const token of [tokens.access_token, tokens.refresh_token!]) {
      const own = await introspect(token, ctx.app);
      expect(own.status).toBe(200);
      expect(own.body).toMatchObject({ active: true, client_id: ctx.app.clientId, sub: ctx.app.userId });
      const foreign = await introspect(token, other);
      expect(foreign.status).toBe(200);
      expect(foreign.body).toEqual({ active: false });
    }
  });

  it("SEC-IR-02 a client cannot revoke another client's token: refused, and the token keeps working", async () => {
    const tokens = await login();
    const other = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const res = await post(ctx, '/token/revocation', { token: tokens.refresh_token! }, { authorization: basic(other.clientId, other.clientSecret!) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    await expect(oidc.refreshTokenGrant(ctx.config, tokens.refresh_token!)).resolves.toHaveProperty('access_token');
  });
});

describe('userinfo', () => {
  it('SEC-UI-01 an access token in the query string is refused', async () => {
    const tokens = await login();
    const res = await fetch(`${ctx.server.issuer}/userinfo?access_token=${tokens.access_token}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('SEC-UI-02 a revoked access token is refused with 401 invalid_token', async () => {
    const tokens = await login();
    await oidc.tokenRevocation(ctx.config, tokens.access_token);
    const res = await fetch(`${ctx.server.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('SEC-UI-03 an expired access token is refused with 401', async () => {
    const tokens = await login();
    await ctx.server.current.db.prisma.oidcPayload.updateMany({ where: { model: 'AccessToken' }, data: { expiresAt: new Date(Date.now() - 1000) } });
    const res = await fetch(`${ctx.server.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(res.status).toBe(401);
  });

  it('SEC-UI-05 a DPoP-bound access token is refused as a plain Bearer token, and accepted with a proof of its key', async () => {
    const dpop = oidc.getDPoPHandle(ctx.config, await oidc.randomDPoPKeyPair('ES256'));
    const { callbackUrl, codeVerifier, state, nonce } = await authorize(new UserAgent(), ctx.config, { login: ctx.app, scope: 'openid email' });
    const tokens = await oidc.authorizationCodeGrant(ctx.config, callbackUrl, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce }, undefined, { DPoP: dpop });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    const asBearer = await fetch(`${ctx.server.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(asBearer.status).toBe(401);
    const claims = await oidc.fetchUserInfo(ctx.config, tokens.access_token, ctx.app.userId, { DPoP: dpop });
    expect(claims.sub).toBe(ctx.app.userId);
  });

  it('SEC-UI-04 a JWT access token for an API is not a userinfo token', async () => {
    const { tokens } = await loginAndExchange(new UserAgent(), ctx.config, { login: ctx.app, scope: 'openid read', resource: 'https://api.example.com' });
    const res = await fetch(`${ctx.server.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(res.status).toBe(401);
  });
});

describe('disabled grants', () => {
  it.each([
    ['password', { grant_type: 'password', username: 'a@example.com', password: 'whatever1' }],
    ['implicit', { grant_type: 'implicit' }],
    ['CIBA', { grant_type: 'urn:openid:params:grant-type:ciba', auth_req_id: 'x' }],
    ['JWT bearer', { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: 'x.y.z' }],
  ])('SEC-GR-01 %s: 400 unsupported_grant_type', async (_name, body) => {
    const res = await post(ctx, '/token', body as Record<string, string>, { authorization: basic(ctx.app.clientId, ctx.app.clientSecret!) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('unsupported_grant_type');
  });
});
