import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { createdClient, idp } from './helpers/cli.ts';
import { startInstance, startServer, type Instance, type TestServer } from './helpers/server.ts';

const API = 'https://rotation.example.com';

let a: TestServer;
let b: Instance;
let admin: AdminApi;
let client: { clientId: string; clientSecret: string };

beforeAll(async () => {
  a = await startServer({ KEY_REFRESH_SECONDS: '1', JWKS_CACHE_SECONDS: '300', KEY_PREPUBLICATION_SECONDS: '900' });
  b = await startInstance(a.env);
  admin = await adminApi(a);
  await idp(['resources', 'create', '--identifier', API, '--scope', 'read', '--json'], a.env);
  client = createdClient(await idp(['clients', 'create', '--name', 'svc', '--grant-type', 'client_credentials', '--scope', '', '--api', `${API} read`, '--json'], a.env));
});
afterAll(async () => {
  await b?.close();
  await a?.close();
});

/** A JWT access token for the API, from one instance's token endpoint. */
async function token(origin: string): Promise<string> {
  const res = await fetch(`${origin}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

/**
 * A resource server that caches the JWKS as the README says: for the Cache-Control max-age, and
 * (here, to prove pre-publication) never refetching early, not even for an unknown kid.
 */
async function fetchJwks(origin: string) {
  const res = await fetch(`${origin}/jwks`);
  expect(res.headers.get('cache-control')).toBe('public, max-age=300');
  const jwks = (await res.json()) as JSONWebKeySet;
  return { kids: jwks.keys.map((k) => k.kid!), verify: (jwt: string) => jwtVerify(jwt, createLocalJWKSet(jwks), { issuer: a.issuer, audience: API, typ: 'at+jwt' }) };
}

const signingKid = (jwt: string) => decodeProtectedHeader(jwt).kid!;

describe('key rotation without restarts', () => {
  it('keeps every token verifiable by a caching resource server before, during and after a rotation, on every instance', async () => {
    const failures: string[] = [];
    const verifyAll = async (cache: Awaited<ReturnType<typeof fetchJwks>>, tokens: string[], phase: string) => {
      for (const t of tokens) await cache.verify(t).catch((err: Error) => failures.push(`${phase}: ${err.message}`));
    };
    const traffic = () => Promise.all([...Array(5)].flatMap(() => [token(a.issuer), token(b.url)]));

    // Before: the resource server caches the JWKS.
    const before = await fetchJwks(b.url);
    const t1 = await traffic();
    const oldKid = signingKid(t1[0]!);
    await verifyAll(before, t1, 'before');

    // A rotation starts through the admin API of A; instance B notices by itself (KEY_REFRESH_SECONDS).
    const rotated = await admin.call<{ items: { kid: string; alg: string; state: string }[] }>('POST', '/admin/v1/keys/rotate');
    expect(rotated.status).toBe(201);
    const newKid = rotated.body.items.find((k) => k.alg === 'RS256')!.kid;
    expect(rotated.body.items.every((k) => k.state === 'next')).toBe(true);
    expect((await admin.call('POST', '/admin/v1/keys/rotate')).status).toBe(409);
    await a.current.keyring.refresh();
    for (let i = 0; i < 100 && !(await fetchJwks(b.url)).kids.includes(newKid); i++) await new Promise((r) => setTimeout(r, 100));

    // Pre-publication: both instances publish the new key, and still sign with the old one.
    const during = await traffic();
    expect(new Set(during.map(signingKid))).toEqual(new Set([oldKid]));
    await verifyAll(before, during, 'during, old cache');
    const refreshedCache = await fetchJwks(a.issuer);
    expect(refreshedCache.kids).toEqual(expect.arrayContaining([oldKid, newKid]));
    expect((await fetchJwks(b.url)).kids).toEqual(expect.arrayContaining([oldKid, newKid]));

    // The pre-publication period ends (aged in the database rather than waited for).
    await a.current.db.prisma.signingKey.updateMany({ where: { state: 'next' }, data: { activatesAt: new Date(Date.now() - 1000) } });
    await Promise.all([a.current.keyring.refresh(), b.app.keyring.refresh()]);
    const after = await traffic();
    expect(new Set(after.map(signingKid))).toEqual(new Set([newKid]));
    // The resource server's cache from during the pre-publication already has the new key...
    await verifyAll(refreshedCache, [...t1, ...during, ...after], 'after, cache from pre-publication');
    // ...and the retired key stays published for the tokens it signed.
    const later = await fetchJwks(b.url);
    expect(later.kids).toEqual(expect.arrayContaining([oldKid, newKid]));
    await verifyAll(later, [...t1, ...during, ...after], 'after, fresh cache');
    const keys = await admin.call<{ items: { kid: string; state: string; removeAfter: string | null }[] }>('GET', '/admin/v1/keys');
    expect(keys.body.items.find((k) => k.kid === oldKid)).toMatchObject({ state: 'retired', removeAfter: expect.any(String) });

    // Once every token it signed has expired, the retired key is removed.
    await a.current.db.prisma.signingKey.updateMany({ where: { state: 'retired' }, data: { removeAfter: new Date(Date.now() - 1000) } });
    await Promise.all([a.current.keyring.refresh(), b.app.keyring.refresh()]);
    expect((await fetchJwks(a.issuer)).kids).not.toContain(oldKid);
    expect((await fetchJwks(b.url)).kids).not.toContain(oldKid);
    await verifyAll(await fetchJwks(b.url), await traffic(), 'final');

    // The admin API still accepts tokens after the swap (it verifies with the current keys).
    expect((await admin.call('GET', '/admin/v1/keys', undefined, (await admin.token('admin:read')))).status).toBe(200);
    expect(failures).toEqual([]);
  });

  it('rotates on a schedule (KEY_ROTATION_DAYS), once across instances', async () => {
    const scheduled = await startServer({ KEY_ROTATION_DAYS: '30' });
    const other = await startInstance(scheduled.env);
    try {
      const prisma = scheduled.current.db.prisma;
      expect(await scheduled.current.keyring.refresh()).toBe(false);
      expect(await prisma.signingKey.count({ where: { state: 'next' } })).toBe(0);
      // The keys are older than the schedule allows (aged in the database).
      await prisma.signingKey.updateMany({ data: { createdAt: new Date(Date.now() - 31 * 24 * 3600 * 1000) } });
      await Promise.all([scheduled.current.keyring.refresh(), other.app.keyring.refresh()]);
      expect(await prisma.signingKey.count({ where: { state: 'next' } })).toBe(3);
      const audit = await prisma.auditEvent.findMany({ where: { action: 'keys.rotated' } });
      expect(audit).toHaveLength(1);
      expect(audit[0]!.actor).toBe('schedule');
    } finally {
      await other.close();
      await scheduled.close();
    }
  });
});
