// The refresh-token reuse interval keeps reuse detection (RFC 9700 §4.14.2): only the same client,
// only within the interval, only while the successor is unused.
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from '../helpers/admin.ts';
import { discover, loginAndExchange } from '../helpers/flow.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { basic, post, securityContext } from './setup.ts';

const ctx = securityContext();
const INTERVAL = 2;
let config: oidc.Configuration;

beforeAll(async () => {
  const admin = await adminApi(ctx.server);
  const created = await admin.call<{ client: { clientId: string }; clientSecret: string }>('POST', '/admin/v1/clients', { name: 'Tabs', redirectUris: ['http://127.0.0.1:8765/callback'], refreshTokenReuseInterval: INTERVAL });
  config = await discover(ctx.server.issuer, created.body.client.clientId, created.body.clientSecret);
});

const signIn = async () => (await loginAndExchange(new UserAgent(), config, { login: ctx.app })).tokens;
const userinfo = (accessToken: string) => fetch(`${ctx.server.issuer}/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } }).then((r) => r.status);

describe('refresh-token reuse interval', () => {
  it('SEC-RT-10 within the interval, another client presenting the rotated-out token gets nothing, and the owner keeps its successor', async () => {
    const tokens = await signIn();
    const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    const res = await post(ctx, '/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, { authorization: basic(ctx.app.clientId, ctx.app.clientSecret!) });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(res.body).not.toHaveProperty('refresh_token');
    const next = await oidc.refreshTokenGrant(config, rotated.refresh_token!);
    expect(await userinfo(next.access_token)).toBe(200);
  });

  it('SEC-RT-11 within the interval, a reuse after the successor was used revokes the grant', async () => {
    const tokens = await signIn();
    const second = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    const third = await oidc.refreshTokenGrant(config, second.refresh_token!);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(config, third.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await userinfo(third.access_token)).toBe(401);
  });

  it('SEC-RT-12 a reuse after the interval revokes the grant, and is audited as reuse', async () => {
    const tokens = await signIn();
    const second = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await sleep((INTERVAL + 1) * 1000);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(config, second.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect.poll(() => ctx.server.current.db.prisma.auditEvent.count({ where: { action: 'refresh_token.reuse_detected' } })).toBeGreaterThan(0);
  });
});
