// The authorization endpoint and code redemption: RFC 9700 §2.1, §4.1, §4.5; RFC 7636; RFC 9207;
// OpenID conformance oidcc-* (state, nonce, ensure-request-without-*).
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { seed } from '../helpers/cli.ts';
import { authorize, REDIRECT_URI } from '../helpers/flow.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { basic, post, securityContext } from './setup.ts';

const ctx = securityContext();
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

function authorizationUrl(params: Record<string, string | null>, repeat: [string, string][] = []) {
  const url = new URL(`${ctx.server.issuer}/authorize`);
  const base: Record<string, string | null> = { client_id: ctx.app.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid', state: 'st-1', code_challenge: CHALLENGE, code_challenge_method: 'S256', ...params };
  for (const [k, v] of Object.entries(base)) if (v !== null) url.searchParams.set(k, v);
  for (const [k, v] of repeat) url.searchParams.append(k, v);
  return url;
}

const errorOf = async (url: URL) => {
  const res = await fetch(url, { redirect: 'manual' });
  const location = res.headers.get('location');
  return { status: res.status, location: location ? new URL(location, ctx.server.issuer) : null };
};

const redeem = (code: string, verifier: string, extra: Record<string, string> = {}, client = ctx.app) =>
  post(ctx, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, ...extra }, { authorization: basic(client.clientId, client.clientSecret!) });

describe('authorization requests', () => {
  it.each([['client_id']])('SEC-AZ-01 a repeated %s is refused with an error page, never a redirect', async (name) => {
    const { status, location } = await errorOf(authorizationUrl({}, [[name, 'other-value']]));
    expect(status).toBe(400);
    expect(location).toBeNull();
  });

  it.each([['redirect_uri'], ['scope'], ['state'], ['response_type'], ['code_challenge']])('SEC-AZ-01 a repeated %s is refused with invalid_request, sent only to the registered redirect URI', async (name) => {
    const { status, location } = await errorOf(authorizationUrl({}, [[name, 'other-value']]));
    expect(status).toBe(303);
    expect(location!.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(location!.searchParams.get('error')).toBe('invalid_request');
  });

  it('SEC-AZ-02 unknown parameters are ignored, not reflected', async () => {
    const { status, location } = await errorOf(authorizationUrl({ unknown_param: '<script>x</script>' }));
    expect(status).toBe(303);
    expect(location!.pathname).toMatch(/^\/interaction\//);
    expect(location!.href).not.toContain('script');
  });

  it('SEC-AZ-03 an error response echoes state and carries iss (RFC 9207)', async () => {
    const { location } = await errorOf(authorizationUrl({ code_challenge: null, code_challenge_method: null, state: 'echo-me' }));
    expect(location!.searchParams.get('state')).toBe('echo-me');
    expect(location!.searchParams.get('iss')).toBe(ctx.server.issuer);
  });

  it('SEC-AZ-04 a success response echoes state and carries iss, and the ID token carries the nonce', async () => {
    const ua = new UserAgent();
    const r = await authorize(ua, ctx.config, { login: ctx.app, scope: 'openid' });
    expect(r.callbackUrl.searchParams.get('state')).toBe(r.state);
    expect(r.callbackUrl.searchParams.get('iss')).toBe(ctx.server.issuer);
    const tokens = await oidc.authorizationCodeGrant(ctx.config, r.callbackUrl, { pkceCodeVerifier: r.codeVerifier, expectedState: r.state, expectedNonce: r.nonce });
    expect(tokens.claims()!.nonce).toBe(r.nonce);
  });

  it('SEC-AZ-05 prompt=none without a session: login_required at the redirect URI', async () => {
    const { location } = await errorOf(authorizationUrl({ prompt: 'none' }));
    expect(location!.searchParams.get('error')).toBe('login_required');
  });

  it('SEC-AZ-06 an unknown client: an error page, never a redirect', async () => {
    const { status, location } = await errorOf(authorizationUrl({ client_id: 'no-such-client' }));
    expect(status).toBe(400);
    expect(location).toBeNull();
  });

  it('SEC-AZ-07 a request object (here unsigned, alg none) is refused: request objects are not supported', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const body = Buffer.from(JSON.stringify({ client_id: ctx.app.clientId, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid' })).toString('base64url');
    const { status, location } = await errorOf(authorizationUrl({ request: `${header}.${body}.` }));
    expect(status).toBe(303);
    expect(location!.searchParams.get('error')).toBe('request_not_supported');
  });

  it.each([['token'], ['id_token token'], ['none']])('SEC-AZ-08 response_type=%s is refused (no tokens in the front channel)', async (rt) => {
    const { status, location } = await errorOf(authorizationUrl({ response_type: rt }));
    expect(status).toBe(303);
    expect(location!.href).not.toMatch(/access_token=|id_token=/);
    expect(location!.searchParams.get('error') ?? new URLSearchParams(location!.hash.slice(1)).get('error')).toBe('unsupported_response_type');
  });
});

describe('code redemption', () => {
  const codeFor = async () => {
    const r = await authorize(new UserAgent(), ctx.config, { login: ctx.app, scope: 'openid' });
    return { code: r.callbackUrl.searchParams.get('code')!, verifier: r.codeVerifier };
  };

  it('SEC-CR-01 a code redeemed by another client is refused', async () => {
    const { code, verifier } = await codeFor();
    const other = await seed(ctx.server.env, { redirectUri: REDIRECT_URI });
    const res = await redeem(code, verifier, {}, other);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('SEC-CR-02 a code redeemed with another redirect_uri is refused', async () => {
    const { code, verifier } = await codeFor();
    const res = await redeem(code, verifier, { redirect_uri: 'http://127.0.0.1:8765/other' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('SEC-CR-03 PKCE downgrade: a code issued with a challenge, redeemed without a verifier, is refused', async () => {
    const { code } = await codeFor();
    const res = await post(ctx, '/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI }, { authorization: basic(ctx.app.clientId, ctx.app.clientSecret!) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
  });

  it('SEC-CR-04 a verifier of the wrong length is refused', async () => {
    const { code } = await codeFor();
    const res = await redeem(code, 'short');
    expect(res.status).toBe(400);
    expect(['invalid_request', 'invalid_grant']).toContain(res.body.error);
  });
});
