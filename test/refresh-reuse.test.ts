import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { idp } from './helpers/cli.ts';
import { seed } from './helpers/seed.ts';
import { discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

// The refresh-token reuse interval: two tabs or threads of one app refreshing with the same token
// at once both succeed, with the same successor, instead of revoking the grant.
const INTERVAL = 2;

let server: TestServer;
let admin: AdminApi;
let person: Awaited<ReturnType<typeof seed>>;
let config: oidc.Configuration;

beforeAll(async () => {
  server = await startServer();
  admin = await adminApi(server);
  person = await seed(server.env, { redirectUri: REDIRECT_URI });
  const created = await admin.call<{ client: { clientId: string; refreshTokenReuseInterval: number }; clientSecret: string }>('POST', '/admin/v1/clients', {
    name: 'Two tabs',
    redirectUris: [REDIRECT_URI],
    refreshTokenReuseInterval: INTERVAL,
  });
  expect(created.status).toBe(201);
  expect(created.body.client.refreshTokenReuseInterval).toBe(INTERVAL);
  config = await discover(server.issuer, created.body.client.clientId, created.body.clientSecret);
});
afterAll(() => server?.close());

const signIn = async () => (await loginAndExchange(new UserAgent(), config, { login: person })).tokens;
const userinfo = (accessToken: string) => fetch(`${server.issuer}/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } }).then((r) => r.status);

describe('refresh-token reuse interval', () => {
  it('two parallel refreshes of one token both succeed with the same successor, each with a working access token', async () => {
    const tokens = await signIn();
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => oidc.refreshTokenGrant(config, tokens.refresh_token!)));
    expect(a!.refresh_token).toBeTruthy();
    expect(a!.refresh_token).not.toBe(tokens.refresh_token);
    expect(b!.refresh_token).toBe(a!.refresh_token);
    expect(c!.refresh_token).toBe(a!.refresh_token);
    // Each gets an access token of its own, and every one works.
    expect(new Set([a!.access_token, b!.access_token, c!.access_token]).size).toBe(3);
    for (const t of [a!, b!, c!]) expect(await userinfo(t.access_token)).toBe(200);
    // The one successor goes on rotating as usual.
    const next = await oidc.refreshTokenGrant(config, a!.refresh_token!);
    expect(next.refresh_token).not.toBe(a!.refresh_token);
    expect(await userinfo(next.access_token)).toBe(200);
  });

  it('within the interval, the rotated-out token presented again later gets the same successor (and no new chain)', async () => {
    const tokens = await signIn();
    const first = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    const live = () => server.current.db.prisma.oidcPayload.count({ where: { model: 'RefreshToken', consumedAt: null } });
    const before = await live();
    const again = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(again.refresh_token).toBe(first.refresh_token);
    expect(again.access_token).not.toBe(first.access_token);
    expect(await live()).toBe(before);
  });

  it('a client without an interval keeps strict rotation: the first reuse revokes the grant', async () => {
    const strictConfig = await discover(server.issuer, person.clientId, person.clientSecret);
    const { tokens } = await loginAndExchange(new UserAgent(), strictConfig, { login: person });
    const second = await oidc.refreshTokenGrant(strictConfig, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(strictConfig, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(strictConfig, second.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});

describe('setting the interval', () => {
  it('the admin API takes 0 to 60 seconds, needs the refresh_token grant, and shows it', async () => {
    const tooLong = await admin.call<{ message: string }>('POST', '/admin/v1/clients', { name: 'x', redirectUris: [REDIRECT_URI], refreshTokenReuseInterval: 61 });
    expect(tooLong.status).toBe(400);
    expect(JSON.stringify(tooLong.body)).toContain('refreshTokenReuseInterval');
    const noRefresh = await admin.call('POST', '/admin/v1/clients', { name: 'x', redirectUris: [REDIRECT_URI], grantTypes: ['authorization_code'], refreshTokenReuseInterval: 5 });
    expect(noRefresh.status).toBe(400);
    expect(JSON.stringify(noRefresh.body)).toContain('refresh_token grant');
    const updated = await admin.call<{ refreshTokenReuseInterval: number }>('PATCH', `/admin/v1/clients/${config.clientMetadata().client_id}`, { refreshTokenReuseInterval: 0 });
    expect(updated.status).toBe(200);
    expect(updated.body.refreshTokenReuseInterval).toBe(0);
    const back = await admin.call<{ refreshTokenReuseInterval: number }>('PATCH', `/admin/v1/clients/${config.clientMetadata().client_id}`, { refreshTokenReuseInterval: INTERVAL });
    expect(back.body.refreshTokenReuseInterval).toBe(INTERVAL);
  });

  it('the CLI sets it with --refresh-reuse-interval and refuses what is out of range', async () => {
    const created = await idp(['clients', 'create', '--name', 'cli tabs', '--redirect-uri', REDIRECT_URI, '--refresh-reuse-interval', '10', '--json'], server.env);
    expect(created.code, created.stderr).toBe(0);
    const client = (JSON.parse(created.stdout) as { client: { clientId: string; refreshTokenReuseInterval: number } }).client;
    expect(client.refreshTokenReuseInterval).toBe(10);
    const refused = await idp(['clients', 'update', client.clientId, '--refresh-reuse-interval', '600'], server.env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('--refresh-reuse-interval');
  });
});
