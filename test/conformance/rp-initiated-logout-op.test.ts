// OpenID conformance suite: the RP-Initiated Logout OP plan
// (oidcc-rp-initiated-logout-certification-test-plan, client_secret_basic).
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorize, type EndSession, endSession, expectErrorResponse, happyFlow, type Op, POST_LOGOUT_REDIRECT_URI, startOp } from '../helpers/conformance.ts';
import type { UserAgent } from '../helpers/user-agent.ts';

let op: Op;
let config: oidc.Configuration;
beforeAll(async () => {
  op = await startOp();
  config = await op.discover(op.client.clientId, op.client.clientSecret);
});
afterAll(() => op?.close());

/** The browser is signed out: prompt=none now needs a user interface (login_required). */
async function expectSignedOut(ua: UserAgent) {
  const silent = await authorize(ua, config, { params: { prompt: 'none' } });
  expectErrorResponse(op, silent, 'login_required');
}

/** The browser is still signed in: prompt=none returns a code. */
async function expectSignedIn(ua: UserAgent) {
  const silent = await authorize(ua, config, { params: { prompt: 'none' } });
  expect(silent.response.get('code')).toBeTruthy();
}

/** The OP did not send the browser back to the client: it showed an error, or the person confirmed and got the OP's own page. */
function expectNoRedirectBack(done: EndSession) {
  expect(done.url.origin, done.url.href).toBe(op.issuer);
  if (done.status === 200) expect(done.html).toMatch(/Signed out|Sign out/);
  else expect(done.status).toBeGreaterThanOrEqual(400);
}

describe('OpenID Connect RP-Initiated Logout 1.0', () => {
  it('oidcc-rp-initiated-logout-discovery-endpoint-verification: discovery has an https end_session_endpoint', async () => {
    const meta = await op.metadata();
    expect(meta.end_session_endpoint).toBe(`${op.issuer}/session/end`);
    for (const [key, value] of Object.entries(meta)) if (key.endsWith('_endpoint')) expect(new URL(String(value)).protocol, key).toBe('https:');
  });

  it('oidcc-rp-initiated-logout: id_token_hint, post_logout_redirect_uri and state: back at the client with the state, and signed out', async () => {
    const { ua, tokens } = await happyFlow(op, config);
    const done = await endSession(op, ua, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: 'bye-123' });
    expect(done.url.origin + done.url.pathname).toBe(POST_LOGOUT_REDIRECT_URI);
    expect([...done.url.searchParams]).toEqual([['state', 'bye-123']]);
    await expectSignedOut(ua);
  });

  it('oidcc-rp-initiated-logout-bad-post-logout-redirect-uri: an unregistered post_logout_redirect_uri is never redirected to', async () => {
    const { ua, tokens } = await happyFlow(op, config);
    const done = await endSession(op, ua, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${POST_LOGOUT_REDIRECT_URI}-unregistered`, state: 'bye' });
    expectNoRedirectBack(done);
  });

  it('oidcc-rp-initiated-logout-modified-id-token-hint: an id_token_hint changed to alg none is refused, never redirected back', async () => {
    const { ua, tokens } = await happyFlow(op, config);
    const [, payload] = tokens.id_token!.split('.');
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.`;
    const done = await endSession(op, ua, { id_token_hint: unsigned, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: 'bye' });
    expectNoRedirectBack(done);
    expect(done.confirmed).toBe(false);
    await expectSignedIn(ua);
  });

  it('oidcc-rp-initiated-logout-bad-id-token-hint: an id_token_hint signed by someone else is refused, never redirected back', async () => {
    const { ua, claims } = await happyFlow(op, config);
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: (await exportJWK(publicKey)).kid ?? 'suite-key' })
      .sign(privateKey);
    const done = await endSession(op, ua, { id_token_hint: forged, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: 'bye' });
    expectNoRedirectBack(done);
    expect(done.confirmed).toBe(false);
    await expectSignedIn(ua);
  });

  it('oidcc-rp-initiated-logout-no-id-token-hint: a post_logout_redirect_uri without id_token_hint is never redirected to', async () => {
    const { ua } = await happyFlow(op, config);
    const done = await endSession(op, ua, { post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: 'bye' });
    expectNoRedirectBack(done);
  });

  it('oidcc-rp-initiated-logout-no-params: no parameters at all: the person confirms and is signed out, on the OP\'s page', async () => {
    const { ua } = await happyFlow(op, config);
    const done = await endSession(op, ua, {});
    expect(done.confirmed).toBe(true);
    expect(done.url.origin).toBe(op.issuer);
    expect(done.status).toBe(200);
    expect(done.html).toContain('Signed out');
    await expectSignedOut(ua);
  });

  it('oidcc-rp-initiated-logout-no-post-logout-redirect-uri: id_token_hint alone: signed out, on the OP\'s page', async () => {
    const { ua, tokens } = await happyFlow(op, config);
    const done = await endSession(op, ua, { id_token_hint: tokens.id_token! });
    expect(done.url.origin).toBe(op.issuer);
    expect(done.status).toBe(200);
    expect(done.html).toContain('Signed out');
    await expectSignedOut(ua);
  });

  it('oidcc-rp-initiated-logout-no-state: back at the post_logout_redirect_uri with no state, and signed out', async () => {
    const { ua, tokens } = await happyFlow(op, config);
    const done = await endSession(op, ua, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI });
    expect(done.url.origin + done.url.pathname).toBe(POST_LOGOUT_REDIRECT_URI);
    expect([...done.url.searchParams]).toEqual([]);
    await expectSignedOut(ua);
  });

  it('oidcc-rp-initiated-logout-only-state: state alone: signed out, on the OP\'s page (nowhere to send the state)', async () => {
    const { ua } = await happyFlow(op, config);
    const done = await endSession(op, ua, { state: 'bye' });
    expect(done.url.origin).toBe(op.issuer);
    expect(done.status).toBe(200);
    expect(done.html).toContain('Signed out');
    await expectSignedOut(ua);
  });

  it('oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri: the registered URI with ?foo=bar added is never redirected to', async () => {
    const { ua, tokens } = await happyFlow(op, config);
    const done = await endSession(op, ua, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${POST_LOGOUT_REDIRECT_URI}?foo=bar`, state: 'bye' });
    expectNoRedirectBack(done);
  });
});
