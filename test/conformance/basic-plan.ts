// The modules of the OpenID conformance suite's Basic OP plan (oidcc-basic-certification-test-plan,
// response_type=code, client_secret_basic), run with the plain response mode (basic-op.test.ts) or
// with response_mode=form_post (form-post-op.test.ts: oidcc-formpost-basic-certification-test-plan,
// which is the same list of modules). Modules that do not apply are listed, with the reason, in
// scripts/conformance-table.mjs.
import { decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationUrl, authorize, exchange, expectErrorPage, expectErrorResponse, happyFlow, type Op, REDIRECT_URI, type ResponseMode, sleep, startOp } from '../helpers/conformance.ts';

export function basicPlan(mode: ResponseMode) {
  let op: Op;
  let config: oidc.Configuration;
  /** oidcc-codereuse-30seconds: started with the file, checked 30 seconds after the first use of its code. */
  let codeReuseLater: Promise<{ status: number; error: unknown; userinfoStatus: number; waited: number }>;

  beforeAll(async () => {
    op = await startOp();
    config = await op.discover(op.client.clientId, op.client.clientSecret);
    const later = async () => {
      const { result, tokens } = await happyFlow(op, config, { mode });
      const used = Date.now();
      await sleep(30_000);
      const again = await redeemAgain(result.response.get('code')!);
      const userinfo = await op.fetch(`${op.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      return { ...again, userinfoStatus: userinfo.status, waited: Date.now() - used };
    };
    codeReuseLater = later();
    codeReuseLater.catch(() => undefined);
  });
  afterAll(async () => {
    await codeReuseLater?.catch(() => undefined);
    await op?.close();
  });

  const basicAuth = () => `Basic ${Buffer.from(`${encodeURIComponent(op.client.clientId)}:${encodeURIComponent(op.client.clientSecret)}`).toString('base64')}`;
  /** The token request the suite makes by hand for a code it already redeemed. */
  async function redeemAgain(code: string) {
    const res = await op.fetch(`${op.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basicAuth(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI }),
    });
    const body = (await res.json()) as { error?: string };
    return { status: res.status, error: body.error };
  }
  const userinfo = (accessToken: string) => oidc.fetchUserInfo(config, accessToken, oidc.skipSubjectCheck);

  describe(`OpenID Connect Core: Basic Certification Profile (response_mode=${mode === 'query' ? 'default' : mode})`, () => {
    it('oidcc-server: the happy flow: a code with state and iss, tokens from the token endpoint, a valid ID token and userinfo', async () => {
      const { result, tokens, claims } = await happyFlow(op, config, { mode });
      // The consent page shows unless this person already allowed this client (consent is remembered).
      expect(result.pages[0]).toBe('login');
      if (mode === 'form_post') expect(result.callback).toBeInstanceOf(Request);
      else expect(result.callback).toBeInstanceOf(URL);
      expect(result.response.get('state')).toBe(result.state);
      expect(result.response.get('iss')).toBe(op.issuer);
      expect(tokens.token_type.toLowerCase()).toBe('bearer');
      expect(tokens.access_token).toBeTruthy();
      expect(tokens.expires_in).toBeGreaterThan(0);
      const now = Math.floor(Date.now() / 1000);
      expect(claims).toMatchObject({ iss: op.issuer, aud: op.client.clientId, sub: op.person.userId, nonce: result.nonce });
      expect(claims.iat).toBeLessThanOrEqual(now + 5);
      expect(claims.exp).toBeGreaterThan(now);
      if (claims.azp !== undefined) expect(claims.azp).toBe(op.client.clientId);
      const { protectedHeader } = await jwtVerify(tokens.id_token!, await op.jwks(), { issuer: op.issuer, audience: op.client.clientId });
      expect(protectedHeader.kid).toBeTruthy();
      expect(await userinfo(tokens.access_token)).toMatchObject({ sub: op.person.userId });
    });

    it('oidcc-response-type-missing: a request without response_type gets invalid_request back, with state and iss', async () => {
      const result = await authorize(op.browser(), config, { mode, login: op.person, params: { response_type: undefined } });
      expectErrorResponse(op, result, 'invalid_request');
      expect(result.response.get('error_description')).toContain('response_type');
    });

    it('oidcc-idtoken-signature: an ID token requested without naming an algorithm is signed with RS256 and a kid of the published JWKS', async () => {
      const { tokens } = await happyFlow(op, config, { mode });
      const header = decodeProtectedHeader(tokens.id_token!);
      expect(header.alg).toBe('RS256');
      const keys = (await (await op.fetch(`${op.issuer}/jwks`)).json()) as { keys: { kid: string; use?: string }[] };
      expect(keys.keys.map((k) => k.kid)).toContain(header.kid);
      await expect(jwtVerify(tokens.id_token!, await op.jwks(), { algorithms: ['RS256'] })).resolves.toBeDefined();
    });

    it('oidcc-userinfo-get: userinfo answers an authenticated GET with JSON for the same sub as the ID token', async () => {
      const { tokens, claims } = await happyFlow(op, config, { mode });
      const res = await op.fetch(`${op.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(((await res.json()) as { sub: string }).sub).toBe(claims.sub);
    });

    it('oidcc-userinfo-post-header: userinfo answers a POST with the access token in the Authorization header', async () => {
      const { tokens, claims } = await happyFlow(op, config, { mode });
      const res = await op.fetch(`${op.issuer}/userinfo`, { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { sub: string }).sub).toBe(claims.sub);
    });

    it('oidcc-userinfo-post-body: userinfo answers a POST with the access token in the form body (RFC 6750 §2.2)', async () => {
      const { tokens, claims } = await happyFlow(op, config, { mode });
      const res = await op.fetch(`${op.issuer}/userinfo`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ access_token: tokens.access_token }),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { sub: string }).sub).toBe(claims.sub);
    });

    it('oidcc-ensure-request-without-nonce-succeeds-for-code-flow: a code request without nonce (with PKCE: a client exempt from it must send a nonce, RFC 9700 §2.1.1) gets a code, and an ID token without nonce', async () => {
      const verifier = oidc.randomPKCECodeVerifier();
      const challenge = await oidc.calculatePKCECodeChallenge(verifier);
      const result = await authorize(op.browser(), config, { mode, login: op.person, noNonce: true, params: { code_challenge: challenge, code_challenge_method: 'S256' } });
      expect(result.nonce).toBeUndefined();
      const claims = (await exchange(config, result, { pkceCodeVerifier: verifier })).claims()!;
      expect(claims).not.toHaveProperty('nonce');
      expect(claims.sub).toBe(op.person.userId);
      // Without PKCE, the exempt client's request without nonce is refused, at its redirect URI.
      expectErrorResponse(op, await authorize(op.browser(), config, { mode, login: op.person, noNonce: true }), 'invalid_request');
    });

    it('oidcc-scope-profile: scope=openid profile returns the profile claims from userinfo', async () => {
      const { tokens } = await happyFlow(op, config, { mode, params: { scope: 'openid profile' } });
      expect(tokens.scope?.split(' ').sort()).toEqual(['openid', 'profile']);
      const info = await userinfo(tokens.access_token);
      expect(info).toMatchObject({ sub: op.person.userId, name: 'Buffy Summers' });
      expect(typeof info.updated_at).toBe('number');
      expect(info).not.toHaveProperty('email');
    });

    it('oidcc-scope-email: scope=openid email returns email and email_verified from userinfo', async () => {
      const { tokens } = await happyFlow(op, config, { mode, params: { scope: 'openid email' } });
      const info = await userinfo(tokens.access_token);
      expect(info).toMatchObject({ sub: op.person.userId, email: op.person.email, email_verified: false });
      expect(info).not.toHaveProperty('name');
    });

    it('oidcc-alternate-happy-flow: scope values and query parameters in another order make no difference (RFC 6749 §3.3)', async () => {
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const url = new URL(config.serverMetadata().authorization_endpoint!);
      const params: [string, string][] = [
        ['state', state],
        ['nonce', nonce],
        ...(mode === 'form_post' ? ([['response_mode', 'form_post']] as [string, string][]) : []),
        ['scope', 'email openid'],
        ['redirect_uri', REDIRECT_URI],
        ['response_type', 'code'],
        ['client_id', op.client.clientId],
      ];
      url.search = new URLSearchParams(params).toString();
      const result = await authorize(op.browser(), config, { mode, login: op.person, url });
      const tokens = await exchange(config, { ...result, state, nonce });
      expect(tokens.claims()!.sub).toBe(op.person.userId);
      expect(await userinfo(tokens.access_token)).toMatchObject({ email: op.person.email });
    });

    it('oidcc-display-page: display=page shows the usual login page and the sign-in completes', async () => {
      const { result } = await happyFlow(op, config, { mode, params: { display: 'page' } });
      expect(result.pages[0]).toBe('login');
    });

    it('oidcc-display-popup: display=popup is no error: the login page shows and the sign-in completes', async () => {
      const { result } = await happyFlow(op, config, { mode, params: { display: 'popup' } });
      expect(result.pages[0]).toBe('login');
    });

    it('oidcc-prompt-login: prompt=login asks a signed-in person to sign in again, and the new auth_time is later', async () => {
      const first = await happyFlow(op, config, { mode });
      await sleep(1100);
      const second = await happyFlow(op, config, { mode, ua: first.ua, params: { prompt: 'login' } });
      expect(second.result.pages).toContain('login');
      expect(second.claims.sub).toBe(first.claims.sub);
      // auth_time is sent when asked for (max_age, or as an essential claim): when both have it, the second is later.
      if (first.claims.auth_time !== undefined && second.claims.auth_time !== undefined) expect(second.claims.auth_time).toBeGreaterThan(first.claims.auth_time);
    });

    it('oidcc-prompt-none-not-logged-in: prompt=none without a session gets login_required back, with state (OIDC Core §3.1.2.6)', async () => {
      const result = await authorize(op.browser(), config, { mode, params: { prompt: 'none' } });
      expectErrorResponse(op, result, 'login_required');
    });

    it('oidcc-prompt-none-logged-in: prompt=none with a session returns a code without any page, for the same sub and auth_time', async () => {
      const first = await happyFlow(op, config, { mode });
      const second = await happyFlow(op, config, { mode, ua: first.ua, params: { prompt: 'none' } });
      expect(second.result.pages).toEqual([]);
      expect(second.claims.sub).toBe(first.claims.sub);
      if (first.claims.auth_time !== undefined || second.claims.auth_time !== undefined) expect(second.claims.auth_time).toBe(first.claims.auth_time);
    });

    it('oidcc-max-age-1: max_age=1 after more than a second asks for the login again, and the ID token carries a later auth_time', async () => {
      const first = await happyFlow(op, config, { mode });
      // auth_time is in whole seconds: two seconds later, more than one has certainly gone by.
      await sleep(2100);
      const second = await happyFlow(op, config, { mode, ua: first.ua, params: { max_age: '1' } });
      expect(second.result.pages).toContain('login');
      expect(typeof second.claims.auth_time).toBe('number');
      expect(second.claims.auth_time).toBeGreaterThan(first.claims.auth_time ?? 0);
      expect(second.claims.sub).toBe(first.claims.sub);
    });

    it('oidcc-max-age-10000: max_age=15000 then max_age=10000: auth_time in both ID tokens, no second login, same auth_time and sub', async () => {
      const first = await happyFlow(op, config, { mode, params: { max_age: '15000' } });
      expect(typeof first.claims.auth_time).toBe('number');
      const second = await happyFlow(op, config, { mode, ua: first.ua, params: { max_age: '10000' } });
      expect(second.result.pages).not.toContain('login');
      expect(second.claims.auth_time).toBe(first.claims.auth_time);
      expect(second.claims.sub).toBe(first.claims.sub);
    });

    it('oidcc-ensure-request-with-unknown-parameter-succeeds: an unknown parameter (extra=foobar) is ignored (RFC 6749 §3.1)', async () => {
      const { result, claims } = await happyFlow(op, config, { mode, params: { extra: 'foobar' } });
      expect(result.response.has('extra')).toBe(false);
      expect(claims.sub).toBe(op.person.userId);
    });

    it('oidcc-id-token-hint: prompt=none with the previous ID token as id_token_hint returns a code at once, for the same sub', async () => {
      const first = await happyFlow(op, config, { mode });
      const second = await happyFlow(op, config, { mode, ua: first.ua, params: { prompt: 'none', id_token_hint: first.tokens.id_token! } });
      expect(second.result.pages).toEqual([]);
      expect(second.claims.sub).toBe(first.claims.sub);
      expect(second.claims.auth_time).toBe(first.claims.auth_time);
    });

    it('oidcc-login-hint: login_hint is accepted and fills in the email on the login page', async () => {
      const ua = op.browser();
      const hinted = await authorize(ua, config, { mode, params: { login_hint: op.person.email } });
      expect(hinted.pages).toEqual(['login']);
      expect(hinted.page!.html).toContain(`value="${op.person.email}"`);
      const { claims } = await happyFlow(op, config, { mode, params: { login_hint: op.person.email } });
      expect(claims.sub).toBe(op.person.userId);
    });

    it('oidcc-ui-locales: ui_locales is accepted: the login page speaks a requested language it has (ko), and an unknown one (se) is no error', async () => {
      const korean = await authorize(op.browser(), config, { mode, params: { ui_locales: 'ko' } });
      expect(korean.pages).toEqual(['login']);
      expect(korean.page!.html).toMatch(/<html[^>]*lang="ko"/);
      const { result } = await happyFlow(op, config, { mode, params: { ui_locales: 'se' } });
      expect(result.pages[0]).toBe('login');
    });

    it('oidcc-claims-locales: claims_locales=se is no error', async () => {
      const { claims } = await happyFlow(op, config, { mode, params: { claims_locales: 'se' } });
      expect(claims.sub).toBe(op.person.userId);
    });

    it('oidcc-ensure-request-with-acr-values-succeeds: acr_values with the advertised values succeeds, and the ID token says one of them', async () => {
      const advertised = config.serverMetadata().acr_values_supported!;
      expect(advertised.length).toBeGreaterThan(0);
      const { claims } = await happyFlow(op, config, { mode, params: { acr_values: advertised.join(' ') } });
      expect(advertised).toContain(claims.acr);
    });

    it('oidcc-codereuse: a code presented a second time is refused with invalid_grant', async () => {
      const { result } = await happyFlow(op, config, { mode });
      const again = await redeemAgain(result.response.get('code')!);
      expect(again).toEqual({ status: 400, error: 'invalid_grant' });
    });

    it('oidcc-ensure-registered-redirect-uri: an unregistered redirect_uri gets an error page, never a redirect', async () => {
      const result = await authorize(op.browser(), config, { mode, login: op.person, params: { redirect_uri: 'https://conformance.example.com/callback' }, redirectUri: 'https://conformance.example.com/callback' });
      expectErrorPage(result, 'redirect_uri');
      expect(result.pages).toEqual([]);
    });

    it('oidcc-ensure-post-request-succeeds: the authorization request POSTed as a form (as the suite browser sends it) is answered with a 303 to the same request as a GET; the browser follows it and the flow completes: a code, tokens, a valid ID token', async () => {
      const { result, tokens, claims } = await happyFlow(op, config, { mode, post: true });
      expect(result.posted).toMatchObject({ status: 303, cacheControl: 'no-store' });
      const location = new URL(result.posted!.location!);
      expect(location.origin + location.pathname).toBe(config.serverMetadata().authorization_endpoint);
      expect([...location.searchParams].sort()).toEqual([...result.posted!.sent].sort());
      expect(result.pages[0]).toBe('login');
      if (mode === 'form_post') expect(result.callback).toBeInstanceOf(Request);
      expect(result.response.get('state')).toBe(result.state);
      expect(result.response.get('iss')).toBe(op.issuer);
      expect(tokens.access_token).toBeTruthy();
      expect(claims).toMatchObject({ iss: op.issuer, aud: op.client.clientId, sub: op.person.userId, nonce: result.nonce });
      await expect(jwtVerify(tokens.id_token!, await op.jwks(), { issuer: op.issuer, audience: op.client.clientId, algorithms: ['RS256'] })).resolves.toBeDefined();
    });

    it('oidcc-server-client-secret-post: the happy flow with client_secret_post (a registered client, with PKCE as every registered client)', async () => {
      const registered = await op.register({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'client_secret_post', grant_types: ['authorization_code'], response_types: ['code'] });
      expect(registered.status).toBe(201);
      expect(registered.body.token_endpoint_auth_method).toBe('client_secret_post');
      const post = await op.discover(String(registered.body.client_id), undefined, oidc.ClientSecretPost(String(registered.body.client_secret)));
      const verifier = oidc.randomPKCECodeVerifier();
      const challenge = await oidc.calculatePKCECodeChallenge(verifier);
      const result = await authorize(op.browser(), post, { mode, login: op.person, params: { code_challenge: challenge, code_challenge_method: 'S256' } });
      const tokens = await exchange(post, result, { pkceCodeVerifier: verifier });
      expect(tokens.claims()).toMatchObject({ sub: op.person.userId, aud: registered.body.client_id });
      expect(await oidc.fetchUserInfo(post, tokens.access_token, op.person.userId)).toMatchObject({ sub: op.person.userId });
    });

    it('oidcc-ensure-request-object-with-redirect-uri: the redirect_uri of a (signed) request object wins over an invalid one in the query', async () => {
      const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
      const app = await op.createClient({ name: 'Conformance Suite (request objects)', redirectUris: [REDIRECT_URI], scope: 'openid', requirePkce: false, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'rp-1', alg: 'RS256', use: 'sig' }] } });
      const key = { key: privateKey, kid: 'rp-1' };
      const signing = await op.discover(app.clientId, undefined, oidc.PrivateKeyJwt(key));
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const byValue = await oidc.buildAuthorizationUrlWithJAR(signing, Object.fromEntries(authorizationUrl(signing, { mode, state, nonce }).searchParams), key);
      byValue.searchParams.set('redirect_uri', 'https://conformance.example.com/invalid');
      const result = await authorize(op.browser(), signing, { mode, login: op.person, url: byValue });
      expect(result.page, 'the invalid redirect_uri of the query was used').toBeUndefined();
      const tokens = await exchange(signing, { ...result, state, nonce });
      expect(tokens.claims()!.sub).toBe(op.person.userId);
    });

    it('oidcc-refresh-token: offline_access with prompt=consent yields a refresh token that works, with consistent ID token claims, and only for its client', async () => {
      const first = await happyFlow(op, config, { mode, params: { scope: 'openid offline_access', prompt: 'consent' } });
      const refreshToken = first.tokens.refresh_token!;
      expect(refreshToken).toMatch(/^[\x20-\x7E]+$/);
      await sleep(1000);
      const res = await op.fetch(`${op.issuer}/token`, {
        method: 'POST',
        headers: { authorization: basicAuth(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, scope: 'openid offline_access' }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const refreshed = (await res.json()) as { access_token: string; token_type: string; expires_in: number; id_token?: string; refresh_token?: string };
      expect(refreshed.token_type.toLowerCase()).toBe('bearer');
      expect(refreshed.access_token).not.toBe(first.tokens.access_token);
      expect(refreshed.expires_in).toBeGreaterThan(0);
      const { payload } = await jwtVerify(refreshed.id_token!, await op.jwks(), { issuer: op.issuer, audience: op.client.clientId });
      expect(payload.sub).toBe(first.claims.sub);
      expect(payload.auth_time).toBe(first.claims.auth_time);
      expect(payload.iat).toBeGreaterThan(first.claims.iat);
      expect(await userinfo(refreshed.access_token)).toMatchObject({ sub: op.person.userId });

      // A second client's refresh token, presented by the first client: invalid_grant.
      const other = await op.createClient({ name: 'Conformance Suite (second client)', redirectUris: [REDIRECT_URI], requirePkce: false });
      const otherConfig = await op.discover(other.clientId, other.clientSecret);
      const second = await happyFlow(op, otherConfig, { mode, params: { scope: 'openid offline_access', prompt: 'consent' } });
      const stolen = await op.fetch(`${op.issuer}/token`, {
        method: 'POST',
        headers: { authorization: basicAuth(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: second.tokens.refresh_token! }),
      });
      expect(stolen.status).toBe(400);
      expect(((await stolen.json()) as { error: string }).error).toBe('invalid_grant');
    });

    it('oidcc-ensure-request-with-valid-pkce-succeeds: a request with a valid S256 code_challenge succeeds', async () => {
      const verifier = oidc.randomPKCECodeVerifier();
      const challenge = await oidc.calculatePKCECodeChallenge(verifier);
      const result = await authorize(op.browser(), config, { mode, login: op.person, params: { code_challenge: challenge, code_challenge_method: 'S256' } });
      const tokens = await exchange(config, result, { pkceCodeVerifier: verifier });
      expect(tokens.claims()!.sub).toBe(op.person.userId);
    });

    it('oidcc-codereuse-30seconds: a code presented again 30 seconds after its use is refused with invalid_grant, and the access token issued from it is revoked', async () => {
      const later = await codeReuseLater;
      expect(later.waited).toBeGreaterThanOrEqual(30_000);
      expect({ status: later.status, error: later.error }).toEqual({ status: 400, error: 'invalid_grant' });
      expect(later.userinfoStatus).toBe(401);
    }, 60_000);
  });
}
