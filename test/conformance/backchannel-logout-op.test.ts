// OpenID conformance suite: the Back-Channel Logout OP plan
// (oidcc-backchannel-rp-initiated-logout-certification-test-plan, client_secret_basic).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { authorize, endSession, expectErrorResponse, happyFlow, type Op, POST_LOGOUT_REDIRECT_URI, REDIRECT_URI, startOp } from '../helpers/conformance.ts';

/** The suite's backchannel_logout_uri: records every request it gets, answers 200. */
const received: { contentType: string | undefined; body: URLSearchParams }[] = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk: Buffer) => {
    body += chunk.toString('utf8');
  });
  req.on('end', () => {
    received.push({ contentType: req.headers['content-type'], body: new URLSearchParams(body) });
    res.end();
  });
});

let op: Op;
let client: { clientId: string; clientSecret: string };
let config: oidc.Configuration;
beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  op = await startOp({ LOGOUT_RETRY_BASE_SECONDS: '0.2', LOGOUT_POLL_SECONDS: '0.2' });
  client = await op.createClient({
    name: 'Conformance Suite (back-channel)',
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_REDIRECT_URI],
    requirePkce: false,
    backchannelLogoutUri: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/backchannel_logout`,
    backchannelLogoutSessionRequired: true,
  });
  config = await op.discover(client.clientId, client.clientSecret);
});
afterAll(async () => {
  await op?.close();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

describe('OpenID Connect Back-Channel Logout 1.0', () => {
  it('oidcc-backchannel-logout-discovery-endpoint-verification: backchannel_logout_supported and backchannel_logout_session_supported, an https end_session_endpoint', async () => {
    const meta = await op.metadata();
    expect(meta.backchannel_logout_supported).toBe(true);
    expect(meta.backchannel_logout_session_supported).toBe(true);
    expect(meta.end_session_endpoint).toBe(`${op.issuer}/session/end`);
    for (const [key, value] of Object.entries(meta)) if (key.endsWith('_endpoint')) expect(new URL(String(value)).protocol, key).toBe('https:');
  });

  it('oidcc-backchannel-rp-initiated-logout: the client gets a valid logout token for the session, the browser goes back with the state, and is signed out', async () => {
    const { ua, tokens, claims } = await happyFlow(op, config);
    expect(typeof claims.sid).toBe('string');
    const done = await endSession(op, ua, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: 'bye-456' });
    expect(done.url.origin + done.url.pathname).toBe(POST_LOGOUT_REDIRECT_URI);
    expect([...done.url.searchParams]).toEqual([['state', 'bye-456']]);

    const request = await vi.waitFor(
      () => {
        const hit = received.find((r) => decodeJwt(r.body.get('logout_token') ?? '').sid === claims.sid);
        expect(hit).toBeDefined();
        return hit!;
      },
      { timeout: 15_000, interval: 100 },
    );
    // A form post with the logout token only.
    expect(request.contentType).toMatch(/^application\/x-www-form-urlencoded/);
    expect([...request.body.keys()]).toEqual(['logout_token']);
    const { payload, protectedHeader } = await jwtVerify(request.body.get('logout_token')!, await op.jwks(), { issuer: op.issuer, audience: client.clientId });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(typeof payload.jti).toBe('string');
    expect(payload.iat).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 5);
    expect(payload.sub).toBe(claims.sub);
    expect(payload.sid).toBe(claims.sid);
    expect(payload).not.toHaveProperty('nonce');

    const silent = await authorize(ua, config, { params: { prompt: 'none' } });
    expectErrorResponse(op, silent, 'login_required');
  });
});
