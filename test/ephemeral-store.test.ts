import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { seed } from './helpers/seed.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

/**
 * EPHEMERAL_STORE=redis: sessions, interactions, codes and the other short-lived state live in
 * Redis with their TTLs; grants, refresh tokens, users and clients stay in the database. The
 * whole suite also runs in this mode (the postgresql+redis project); this file checks where
 * things are kept, on each database (test/security/ephemeral-store.test.ts: a Redis outage).
 */
const REDIS_URL = process.env.TEST_REDIS_URL;
const EPHEMERAL = ['Session', 'Interaction', 'AuthorizationCode', 'ReplayDetection', 'PushedAuthorizationRequest', 'DeviceCode', 'FederatedLogin', 'FederatedLink'];

describe.runIf(REDIS_URL)('short-lived state in Redis', () => {
  const prefix = `test-${randomUUID()}:`;
  let server: TestServer;
  let redis: Redis;
  let config: oidc.Configuration;
  let user: Awaited<ReturnType<typeof seed>>;

  beforeAll(async () => {
    server = await startServer({ REDIS_URL: REDIS_URL!, REDIS_PREFIX: prefix, EPHEMERAL_STORE: 'redis', SESSION_TTL: '3600', AUTHORIZATION_CODE_TTL: '60' });
    redis = new Redis(REDIS_URL!);
    user = await seed(server.env, { redirectUri: REDIRECT_URI });
    config = await discover(server.issuer, user.clientId, user.clientSecret);
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.close();
  });

  const keysOf = async (model: string) => redis.keys(`${prefix}a:${model}:*`);

  it('keeps the session and the used code in Redis with their TTLs, and the grant and refresh token in the database', async () => {
    const { tokens, callbackUrl, codeVerifier } = await loginAndExchange(new UserAgent(), config, { login: user });

    const [session] = await keysOf('Session');
    expect(session).toBeDefined();
    expect(await redis.ttl(session!)).toBeGreaterThan(3500);
    expect(await redis.ttl(session!)).toBeLessThanOrEqual(3600);
    const stored = JSON.parse((await redis.hget(session!, 'p'))!) as { uid: string; accountId: string };
    // Found by its uid, and listed under its account (for "sign out everywhere").
    expect(await redis.get(`${prefix}a:uid:${stored.uid}`)).toBe(session!.slice(`${prefix}a:`.length));
    expect(await redis.sismember(`${prefix}a:account:${stored.accountId}`, session!.slice(`${prefix}a:`.length))).toBe(1);

    const [code] = await keysOf('AuthorizationCode');
    expect(await redis.hget(code!, 'c')).toMatch(/^\d+$/);
    expect(await redis.ttl(code!)).toBeLessThanOrEqual(60);

    const prisma = server.current.db.prisma;
    const inDatabase = (await prisma.oidcPayload.groupBy({ by: ['model'], _count: { _all: true } })).map((g) => g.model);
    expect(inDatabase).toContain('RefreshToken');
    expect(inDatabase.filter((m) => EPHEMERAL.includes(m))).toEqual([]);
    expect(await prisma.grant.count()).toBe(1);

    // The code used again is refused, and its grant (in the database) is revoked with it: the
    // refresh token issued from it stops working.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();
    const replay = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callbackUrl.searchParams.get('code')!, redirect_uri: REDIRECT_URI, client_id: config.clientMetadata().client_id, client_secret: user.clientSecret!, code_verifier: codeVerifier }),
    });
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as { error: string }).error).toBe('invalid_grant');
    await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await prisma.grant.count()).toBe(0);
  });

  it('ends every session of an account kept in Redis when its sessions are revoked, and forgets what pointed to them', async () => {
    await loginAndExchange(new UserAgent(), config, { login: user });
    await loginAndExchange(new UserAgent(), config, { login: user });
    const sessions = await keysOf('Session');
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    const { accountId } = JSON.parse((await redis.hget(sessions[0]!, 'p'))!) as { accountId: string };

    expect(await server.current.services.artifacts.revokeSessions(accountId)).toBe(sessions.length);
    expect(await keysOf('Session')).toEqual([]);
    expect(await redis.keys(`${prefix}a:uid:*`)).toEqual([]);
    expect((await redis.smembers(`${prefix}a:account:${accountId}`)).filter((m) => m.startsWith('Session:'))).toEqual([]);
  });
});
