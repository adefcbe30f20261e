import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idpOk } from '../helpers/cli.ts';
import { authorize, discover, REDIRECT_URI } from '../helpers/flow.ts';
import { seed, withServices } from '../helpers/seed.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { formAction, UserAgent } from '../helpers/user-agent.ts';

// Pushed authorization requests (RFC 9126 §5–6) and DPoP (RFC 9449 §5, §10, §11.1; RFC 9700 §2.2
// sender-constrained tokens), required per client or (PAR) for every client.
let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.close();
});

/** Through the real pages from an authorization URL to the app's callback: signs in and consents. */
async function signIn(ua: UserAgent, url: URL, login: { email: string; password: string }) {
  let step = await ua.follow(url, REDIRECT_URI);
  const html = await step.res.text();
  step = await ua.submit(step.url, html, formAction(html, '/login'), login, REDIRECT_URI);
  if (!step.url.startsWith(REDIRECT_URI)) {
    const consent = await step.res.text();
    step = await ua.submit(step.url, consent, formAction(consent, '/confirm'), {}, REDIRECT_URI);
  }
  return new URL(step.url);
}

describe('pushed authorization requests', () => {
  it('SEC-SC-01 a client that requires PAR: a plain authorization request (which anyone can craft) is refused, only a pushed one signs in', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const shown = JSON.parse(await idpOk(['clients', 'update', app.clientId, '--require-par', 'true', '--json'], server.env)) as { requirePushedAuthorizationRequests: boolean };
    expect(shown.requirePushedAuthorizationRequests).toBe(true);
    const config = await discover(server.issuer, app.clientId, app.clientSecret);

    const plain = await authorize(new UserAgent(), config, { consent: false });
    expect(plain.callbackUrl.searchParams.get('error')).toBe('invalid_request');
    expect(plain.callbackUrl.searchParams.get('error_description')).toMatch(/pushed authorization request/i);

    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state });
    expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    const callback = await signIn(new UserAgent(), url, app);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens.claims()!.sub).toBe(app.userId);
  });

  it('SEC-SC-02 REQUIRE_PAR=true: discovery says so, and every client must push its requests', async () => {
    const strict = await startServer({ REQUIRE_PAR: 'true' });
    try {
      const app = await seed(strict.env, { redirectUri: REDIRECT_URI });
      const config = await discover(strict.issuer, app.clientId, app.clientSecret);
      expect(config.serverMetadata().require_pushed_authorization_requests).toBe(true);
      const plain = await authorize(new UserAgent(), config, { consent: false });
      expect(plain.callbackUrl.searchParams.get('error')).toBe('invalid_request');
      const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      const page = await new UserAgent().follow(url);
      expect(page.res.status).toBe(200);
      expect(await page.res.text()).toContain('Sign in');
    } finally {
      await strict.close();
    }
  });
});

describe('DPoP', () => {
  it('SEC-SC-03 a public client that requires DPoP: tokens only with a proof, bound to its key (access and refresh tokens); a stolen refresh token is refused with another key, the access token as a Bearer token', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI, public: true });
    const updated = await withServices(server.env, ({ clients }) => clients.update(app.clientId, { dpopBoundAccessTokens: true }, { actor: 'cli' }));
    expect(updated.dpopBoundAccessTokens).toBe(true);
    const config = await discover(server.issuer, app.clientId);

    const without = await authorize(new UserAgent(), config, { login: app, scope: 'openid offline_access' });
    await expect(oidc.authorizationCodeGrant(config, without.callbackUrl, { pkceCodeVerifier: without.codeVerifier, expectedState: without.state, expectedNonce: without.nonce })).rejects.toMatchObject({ error: 'invalid_grant' });

    const key = await oidc.randomDPoPKeyPair();
    const DPoP = oidc.getDPoPHandle(config, key);
    const pending = await authorize(new UserAgent(), config, { login: app, scope: 'openid offline_access' });
    const tokens = await oidc.authorizationCodeGrant(config, pending.callbackUrl, { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, expectedNonce: pending.nonce }, undefined, { DPoP });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    expect(tokens.refresh_token).toBeTruthy();
    // The access token works at userinfo only with a proof of the same key.
    const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub, { DPoP });
    expect(info.sub).toBe(app.userId);
    const bare = await fetch(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(bare.status).toBe(401);

    // The refresh token is bound too: another key is refused, the same key rotates it.
    const thief = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair());
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP: thief })).rejects.toMatchObject({ error: 'invalid_grant' });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP });
    expect(refreshed.token_type.toLowerCase()).toBe('dpop');
  });

  /** A DPoP proof made by hand, by default for a POST to the token endpoint (nonce and ath as given). */
  async function tokenProof(issuer: string, claims: { nonce?: string | undefined; ath?: string } = {}, htm = 'POST', path = '/token') {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    return new SignJWT({ htm, htu: `${issuer}${path}`, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(privateKey);
  }

  const refresh = (issuer: string, app: { clientId: string; clientSecret?: string | undefined }, refreshToken: string, proof: string) =>
    fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`, dpop: proof },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });

  it('SEC-SC-04 a DPoP proof is used once: the same proof presented again is refused', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const pending = await authorize(new UserAgent(), config, { login: app, scope: 'openid offline_access' });
    const tokens = await oidc.authorizationCodeGrant(config, pending.callbackUrl, { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, expectedNonce: pending.nonce });
    const proof = await tokenProof(server.issuer);
    const first = await refresh(server.issuer, app, tokens.refresh_token!, proof);
    expect(first.status).toBe(200);
    const rotated = (await first.json()) as { refresh_token: string; token_type: string };
    expect(rotated.token_type).toBe('DPoP');
    const replayed = await refresh(server.issuer, app, rotated.refresh_token, proof);
    expect(replayed.status).toBe(400);
    expect(((await replayed.json()) as { error: string }).error).toBe('invalid_grant');
    // Control: the proof was the reason — the same refresh token with a fresh proof goes through.
    expect((await refresh(server.issuer, app, rotated.refresh_token, await tokenProof(server.issuer))).status).toBe(200);
  });

  it('SEC-SC-05 DPoP nonces (RFC 9449 §8): every DPoP answer offers one; with DPOP_REQUIRE_NONCE a proof without a server nonce, or with an invented one, gets use_dpop_nonce, and openid-client completes with the nonce', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const pending = await authorize(new UserAgent(), await discover(server.issuer, app.clientId, app.clientSecret), { login: app, scope: 'openid offline_access' });
    const exchanged = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`, dpop: await tokenProof(server.issuer) },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: pending.callbackUrl.searchParams.get('code')!, redirect_uri: REDIRECT_URI, code_verifier: pending.codeVerifier }),
    });
    expect(exchanged.status).toBe(200);
    expect(exchanged.headers.get('dpop-nonce') ?? '').toMatch(/^[\w-]{20,}$/);

    const strict = await startServer({ DPOP_REQUIRE_NONCE: 'true' });
    try {
      const app = await seed(strict.env, { redirectUri: REDIRECT_URI });
      const config = await discover(strict.issuer, app.clientId, app.clientSecret);
      const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair());
      const pending = await authorize(new UserAgent(), config, { login: app, scope: 'openid offline_access' });
      // openid-client retries once with the nonce it was given.
      const tokens = await oidc.authorizationCodeGrant(config, pending.callbackUrl, { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, expectedNonce: pending.nonce }, undefined, { DPoP });
      expect(tokens.token_type.toLowerCase()).toBe('dpop');

      for (const nonce of [undefined, 'invented-by-the-client-0123456789']) {
        const res = await refresh(strict.issuer, app, tokens.refresh_token!, await tokenProof(strict.issuer, { nonce }));
        expect(res.status, String(nonce)).toBe(400);
        expect(((await res.json()) as { error: string }).error).toBe('use_dpop_nonce');
        expect(res.headers.get('dpop-nonce')).toBeTruthy();
      }
      // At userinfo, the same rule: a proof without the nonce is a 401 asking for one.
      const ath = createHash('sha256').update(tokens.access_token).digest('base64url');
      const info = await fetch(`${strict.issuer}/userinfo`, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: await tokenProof(strict.issuer, { ath }, 'GET', '/userinfo') } });
      expect(info.status).toBe(401);
      expect(info.headers.get('www-authenticate')).toContain('error="use_dpop_nonce"');
      expect(info.headers.get('dpop-nonce')).toBeTruthy();
      const claims = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub, { DPoP });
      expect(claims.sub).toBe(app.userId);
      // With the nonce, the refresh goes through and stays bound.
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP });
      expect(refreshed.token_type.toLowerCase()).toBe('dpop');
    } finally {
      await strict.close();
    }
  });
});
