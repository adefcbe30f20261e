import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { idp } from './helpers/cli.ts';
import { seed } from './helpers/seed.ts';
import { discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A relying party's back-channel logout endpoint on 127.0.0.1: records what it gets, answers `status`. */
function receiver() {
  const received: { contentType: string | undefined; token: string; status: number }[] = [];
  const state = { status: 200 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
    });
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token') ?? '';
      received.push({ contentType: req.headers['content-type'], token, status: state.status });
      res.statusCode = state.status;
      res.end();
    });
  });
  return {
    received,
    state,
    server,
    async listen(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    /** The tokens the receiver accepted (answered 200) for this audience. */
    delivered: (aud: string) => received.filter((r) => r.status === 200 && decodeJwt(r.token).aud === aud),
  };
}

let server: TestServer;
let admin: AdminApi;
let seeded: Awaited<ReturnType<typeof seed>>;
let rp: ReturnType<typeof receiver>;
let logoutUri: string;
/** A confidential client with a back-channel logout URI, created through the admin API. */
let bcClient: { clientId: string; clientSecret: string };
let bcConfig: oidc.Configuration;
/** The seeded client: no back-channel logout URI. */
let plainConfig: oidc.Configuration;

beforeAll(async () => {
  rp = receiver();
  logoutUri = await rp.listen();
  // Short backoff and poll, so that a retry comes within a second or two.
  server = await startServer({ LOGOUT_RETRY_BASE_SECONDS: '0.2', LOGOUT_POLL_SECONDS: '0.2' });
  seeded = await seed(server.env, { redirectUri: REDIRECT_URI });
  admin = await adminApi(server);
  const created = await admin.call<{ client: { clientId: string; backchannelLogoutUri: string | null; backchannelLogoutSessionRequired: boolean }; clientSecret: string }>('POST', '/admin/v1/clients', {
    name: 'Back-channel App',
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [`${new URL(REDIRECT_URI).origin}/logged-out`],
    backchannelLogoutUri: logoutUri,
    backchannelLogoutSessionRequired: true,
  });
  expect(created.status).toBe(201);
  expect(created.body.client.backchannelLogoutUri).toBe(logoutUri);
  expect(created.body.client.backchannelLogoutSessionRequired).toBe(true);
  bcClient = { clientId: created.body.client.clientId, clientSecret: created.body.clientSecret };
  bcConfig = await discover(server.issuer, bcClient.clientId, bcClient.clientSecret);
  plainConfig = await discover(server.issuer, seeded.clientId, seeded.clientSecret);
});
afterAll(async () => {
  await server?.close();
  await rp?.close();
});

/** Signs in at the back-channel client through the pages: a fresh browser, its ID token's claims. */
async function signIn(ua = new UserAgent()) {
  const { tokens } = await loginAndExchange(ua, bcConfig, { login: seeded, scope: 'openid' });
  return { ua, idToken: tokens.id_token!, claims: tokens.claims()! };
}

/** RP-initiated logout through the provider's pages, confirmed. */
async function rpLogout(ua: UserAgent, config: oidc.Configuration, idToken: string) {
  const page = await ua.follow(oidc.buildEndSessionUrl(config, { id_token_hint: idToken }));
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.res.text())![1]!;
  const confirm = await ua.request(new URL('/session/end/confirm', server.issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ xsrf, logout: 'yes' }),
  });
  expect(confirm.status).toBe(303);
}

const waitForDelivery = (sid: string) =>
  vi.waitFor(
    () => {
      const hit = rp.delivered(bcClient.clientId).find((r) => decodeJwt(r.token).sid === sid);
      expect(hit).toBeDefined();
      return hit!;
    },
    { timeout: 15_000, interval: 100 },
  );

describe('discovery', () => {
  it('says back-channel logout (with sid) is supported', async () => {
    const meta = (await (await fetch(new URL('/.well-known/openid-configuration', server.issuer))).json()) as Record<string, unknown>;
    expect(meta.backchannel_logout_supported).toBe(true);
    expect(meta.backchannel_logout_session_supported).toBe(true);
  });
});

describe('back-channel logout', () => {
  it('RP-initiated logout: the client gets a logout token that verifies against /jwks and matches the ID token', async () => {
    const { ua, idToken, claims } = await signIn();
    expect(typeof claims.sid).toBe('string');
    await rpLogout(ua, bcConfig, idToken);
    const hit = await waitForDelivery(String(claims.sid));
    expect(hit.contentType).toMatch(/^application\/x-www-form-urlencoded/);
    const jwks = createRemoteJWKSet(new URL('/jwks', server.issuer));
    const { payload, protectedHeader } = await jwtVerify(hit.token, jwks, { issuer: server.issuer, audience: bcClient.clientId, typ: 'logout+jwt' });
    expect(protectedHeader.typ).toBe('logout+jwt');
    expect(protectedHeader.alg).toBe(decodeProtectedHeader(idToken).alg);
    expect(payload.iss).toBe(claims.iss);
    expect(payload.sub).toBe(claims.sub);
    expect(payload.sid).toBe(claims.sid);
    expect(payload.events).toEqual({ [EVENT]: {} });
    expect(payload).not.toHaveProperty('nonce');
    expect(typeof payload.jti).toBe('string');
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
  });

  it('an admin signing a person out everywhere: the client is told', async () => {
    const { claims } = await signIn();
    const revoked = await admin.call<{ revoked: number }>('DELETE', `/admin/v1/users/${seeded.userId}/sessions`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked).toBeGreaterThanOrEqual(1);
    const hit = await waitForDelivery(String(claims.sid));
    const { payload } = await jwtVerify(hit.token, createRemoteJWKSet(new URL('/jwks', server.issuer)), { issuer: server.issuer, audience: bcClient.clientId });
    expect(payload.sub).toBe(claims.sub);
  });

  it('a client that is down at first gets the logout token later, with the same jti', async () => {
    const { claims } = await signIn();
    rp.state.status = 500;
    const before = rp.received.length;
    await admin.call('DELETE', `/admin/v1/users/${seeded.userId}/sessions`);
    // At least one failed attempt, then the client comes back.
    await vi.waitFor(() => expect(rp.received.slice(before).some((r) => r.status === 500 && decodeJwt(r.token).sid === claims.sid)).toBe(true), { timeout: 10_000, interval: 50 });
    rp.state.status = 200;
    const hit = await waitForDelivery(String(claims.sid));
    const failed = rp.received.slice(before).find((r) => r.status === 500 && decodeJwt(r.token).sid === claims.sid)!;
    expect(decodeJwt(hit.token).jti).toBe(decodeJwt(failed.token).jti);
    const row = await server.current.db.prisma.logoutDelivery.findUnique({ where: { id: String(decodeJwt(hit.token).jti) } });
    expect(row?.deliveredAt).toBeInstanceOf(Date);
    expect(row!.attempts).toBeGreaterThanOrEqual(2);
  });

  it('a client without a back-channel logout URI gets nothing; one session signed in to both tells only the other', async () => {
    const { ua, claims } = await signIn();
    // The same browser session signs in to the seeded client too (no back-channel URI).
    const plain = await loginAndExchange(ua, plainConfig, { scope: 'openid' });
    await rpLogout(ua, plainConfig, plain.tokens.id_token!);
    await waitForDelivery(String(claims.sid));
    const rows = await server.current.db.prisma.logoutDelivery.findMany({ where: { clientId: seeded.clientId } });
    expect(rows).toEqual([]);
    expect(rp.received.every((r) => decodeJwt(r.token).aud === bcClient.clientId)).toBe(true);
  });

  it('a disabled account: the client is told', async () => {
    const { claims } = await signIn();
    expect((await admin.call('POST', `/admin/v1/users/${seeded.userId}/disable`)).status).toBe(200);
    await waitForDelivery(String(claims.sid));
    expect((await admin.call('POST', `/admin/v1/users/${seeded.userId}/enable`)).status).toBe(200);
  });

  it('a new password set by an admin ends the sessions: the client is told', async () => {
    const { claims } = await signIn();
    expect((await admin.call('PUT', `/admin/v1/users/${seeded.userId}/password`, { password: seeded.password })).status).toBeLessThan(300);
    await waitForDelivery(String(claims.sid));
  });

  it('never logs or stores the logout token', async () => {
    const rows = await server.current.db.prisma.logoutDelivery.findMany();
    expect(rows.length).toBeGreaterThan(0);
    for (const token of rp.received.map((r) => r.token)) {
      expect(JSON.stringify(rows)).not.toContain(token);
    }
  });
});

describe('registration', () => {
  it('admin API: update and show the two settings; null removes the URI; a bad URI is a 400', async () => {
    const path = `/admin/v1/clients/${seeded.clientId}`;
    const set = await admin.call<Record<string, unknown>>('PATCH', path, { backchannelLogoutUri: 'https://rp.example.com/bcl', backchannelLogoutSessionRequired: true });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ backchannelLogoutUri: 'https://rp.example.com/bcl', backchannelLogoutSessionRequired: true });
    const shown = await admin.call<Record<string, unknown>>('GET', path);
    expect(shown.body).toMatchObject({ backchannelLogoutUri: 'https://rp.example.com/bcl', backchannelLogoutSessionRequired: true });
    for (const bad of ['http://rp.example.com/bcl', 'https://rp.example.com/bcl#frag', 'javascript:alert(1)', 'not a uri']) {
      const res = await admin.call('PATCH', path, { backchannelLogoutUri: bad });
      expect(res.status, bad).toBe(400);
    }
    const removed = await admin.call<Record<string, unknown>>('PATCH', path, { backchannelLogoutUri: null });
    expect(removed.status).toBe(200);
    expect(removed.body.backchannelLogoutUri).toBeNull();
    const badCreate = await admin.call('POST', '/admin/v1/clients', { name: 'x', redirectUris: [REDIRECT_URI], backchannelLogoutUri: 'ftp://rp.example.com/' });
    expect(badCreate.status).toBe(400);
  });

  it('dynamic registration: backchannel_logout_uri is registered (and shown to the admin); an http one off loopback is refused', async () => {
    const iat = await idp(['clients', 'initial-access-token', 'create', '--expires-in', '600', '--uses', 'unlimited', '--json'], server.env);
    expect(iat.code, iat.stderr).toBe(0);
    const token = (JSON.parse(iat.stdout) as { initialAccessToken: string }).initialAccessToken;
    const register = async (metadata: Record<string, unknown>) => {
      const res = await fetch(new URL('/register', server.issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(metadata),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const ok = await register({ client_name: 'dyn', redirect_uris: ['https://rp.example.com/cb'], backchannel_logout_uri: 'https://rp.example.com/bcl', backchannel_logout_session_required: true });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ backchannel_logout_uri: 'https://rp.example.com/bcl', backchannel_logout_session_required: true });
    const shown = await admin.call<Record<string, unknown>>('GET', `/admin/v1/clients/${String(ok.body.client_id)}`);
    expect(shown.body).toMatchObject({ backchannelLogoutUri: 'https://rp.example.com/bcl', backchannelLogoutSessionRequired: true });
    const bad = await register({ client_name: 'dyn', redirect_uris: ['https://rp.example.com/cb'], backchannel_logout_uri: 'http://rp.example.com/bcl' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('invalid_client_metadata');
  });

  it('CLI: --backchannel-logout-uri and --backchannel-logout-session-required round-trip; a bad URI fails', async () => {
    const created = await idp(['clients', 'create', '--name', 'cli bcl', '--redirect-uri', REDIRECT_URI, '--backchannel-logout-uri', 'https://rp.example.com/logout', '--backchannel-logout-session-required', 'true', '--json'], server.env);
    expect(created.code, created.stderr).toBe(0);
    const { client } = JSON.parse(created.stdout) as { client: { clientId: string; backchannelLogoutUri: string; backchannelLogoutSessionRequired: boolean } };
    expect(client).toMatchObject({ backchannelLogoutUri: 'https://rp.example.com/logout', backchannelLogoutSessionRequired: true });
    const updated = await idp(['clients', 'update', client.clientId, '--backchannel-logout-session-required', 'false', '--json'], server.env);
    expect(updated.code, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({ backchannelLogoutUri: 'https://rp.example.com/logout', backchannelLogoutSessionRequired: false });
    const removed = await idp(['clients', 'update', client.clientId, '--no-backchannel-logout-uri', '--json'], server.env);
    expect(removed.code, removed.stderr).toBe(0);
    expect(JSON.parse(removed.stdout)).toMatchObject({ backchannelLogoutUri: null });
    const bad = await idp(['clients', 'update', client.clientId, '--backchannel-logout-uri', 'http://rp.example.com/logout'], server.env);
    expect(bad.code).not.toBe(0);
  });
});
