// Which client gets tokens for which API, and who reaches the admin API: RFC 8707 §2; RFC 9068 §4;
// RFC 6749 §3.3; ASVS V8.2.1, V8.2.2 (function- and data-level authorization), V10.4.11.
import { createHash, randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { createdClient, idp } from '../helpers/cli.ts';
import { authorize, discover, REDIRECT_URI } from '../helpers/flow.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';

let server: TestServer;
let admin: AdminApi;
const ORDERS = 'https://orders.example.com';
const REPORTS = 'https://reports.example.com';

beforeAll(async () => {
  server = await startServer();
  admin = await adminApi(server);
  // An ordinary API that happens to define a scope named `admin`, and another one with `read`.
  expect((await admin.call('POST', '/admin/v1/resources', { identifier: ORDERS, scopes: ['read', 'write', 'admin', 'admin:read'] })).status).toBe(201);
  expect((await admin.call('POST', '/admin/v1/resources', { identifier: REPORTS, scopes: ['read'] })).status).toBe(201);
});
afterAll(() => server?.close());

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

type Created = { client: { clientId: string; apis: Record<string, string[]>; admin: boolean }; clientSecret: string };

async function machine(apis: Record<string, string[]>): Promise<{ id: string; secret: string }> {
  const res = await admin.call<Created>('POST', '/admin/v1/clients', { name: 'svc', grantTypes: ['client_credentials'], scope: '', apis });
  expect(res.status).toBe(201);
  return { id: res.body.client.clientId, secret: res.body.clientSecret };
}

async function clientCredentials(client: { id: string; secret: string }, body: Record<string, string>) {
  const res = await fetch(new URL('/token', server.issuer), {
    method: 'POST',
    headers: { authorization: basic(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...body }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

const adminApiAnswers = async (token: string | undefined) => (await admin.call('GET', '/admin/v1/users', undefined, token ?? null)).status;

describe('API access is allowed per API', () => {
  it('SEC-AA-01 a client allowed an API scope named admin never reaches the admin API, with or without a resource', async () => {
    const reporting = await machine({ [ORDERS]: ['read', 'admin', 'admin:read'] });
    for (const scope of ['admin', 'admin:read', 'read admin']) {
      const noResource = await clientCredentials(reporting, { scope });
      if (noResource.status === 200) {
        expect(noResource.body.access_token!.split('.')).not.toHaveLength(3);
        expect(await adminApiAnswers(noResource.body.access_token)).toBe(401);
      }
    }
    const direct = await clientCredentials(reporting, { scope: 'admin', resource: 'urn:idp:admin' });
    expect(direct.status).toBe(400);
    expect(direct.body.error).toBe('invalid_target');
    expect(direct.body.access_token).toBeUndefined();

    // Its token for its own API legitimately carries that API's `admin` scope, and is useless at the admin API.
    const own = await clientCredentials(reporting, { scope: 'read admin', resource: ORDERS });
    expect(own.status).toBe(200);
    expect(decodeJwt(own.body.access_token!)).toMatchObject({ aud: ORDERS, scope: 'read admin' });
    expect(await adminApiAnswers(own.body.access_token)).toBe(401);
  });

  it('SEC-AA-02 a scope allowed on one API is not allowed on another that defines it too', async () => {
    const svc = await machine({ [ORDERS]: ['read'] });
    const orders = await clientCredentials(svc, { scope: 'read write', resource: ORDERS });
    expect(orders.status).toBe(200);
    const { payload } = await jwtVerify(orders.body.access_token!, createRemoteJWKSet(new URL('/jwks', server.issuer)), { issuer: server.issuer, audience: ORDERS, typ: 'at+jwt' });
    expect(payload.scope).toBe('read');
    const reports = await clientCredentials(svc, { scope: 'read', resource: REPORTS });
    expect(reports.status).toBe(400);
    expect(reports.body.error).toBe('invalid_target');
    expect(reports.body.access_token).toBeUndefined();
  });

  it('SEC-AA-03 a client that is not allowed an API gets invalid_target, never a token with its audience (token and authorization endpoints)', async () => {
    const svc = await machine({});
    const refused = await clientCredentials(svc, { resource: ORDERS });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_target');

    const app = await admin.call<Created>('POST', '/admin/v1/clients', { name: 'web', redirectUris: [REDIRECT_URI], scope: 'openid', apis: { [REPORTS]: ['read'] } });
    const config = await discover(server.issuer, app.body.client.clientId, app.body.clientSecret);
    const { callbackUrl } = await authorize(new UserAgent(), config, { scope: 'openid read', resource: ORDERS, consent: false });
    expect(callbackUrl.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(callbackUrl.searchParams.get('error')).toBe('invalid_target');
    expect(callbackUrl.searchParams.get('code')).toBeNull();
  });
});

describe('only admin clients reach the admin API', () => {
  it('SEC-AA-04 no path that writes a client can allow it the admin API: CLI, admin API (create and update), dynamic registration', async () => {
    const cli = await idp(['clients', 'create', '--name', 'x', '--grant-type', 'client_credentials', '--scope', '', '--api', 'urn:idp:admin admin', '--json'], server.env);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('urn:idp:admin is the admin API');

    const created = await admin.call<{ error_description: string }>('POST', '/admin/v1/clients', { name: 'x', grantTypes: ['client_credentials'], scope: '', apis: { 'urn:idp:admin': ['admin'] } });
    expect(created.status).toBe(400);
    expect(created.body.error_description).toContain('only an admin client');

    const svc = await machine({ [ORDERS]: ['read'] });
    const patched = await admin.call('PATCH', `/admin/v1/clients/${svc.id}`, { apis: { 'urn:idp:admin': ['admin'] } });
    expect(patched.status).toBe(400);
    expect((await admin.call('PATCH', `/admin/v1/clients/${svc.id}`, { admin: true })).status).toBe(400);
    const cliUpdate = await idp(['clients', 'update', svc.id, '--api', 'urn:idp:admin admin', '--json'], server.env);
    expect(cliUpdate.code).toBe(1);
    expect((await admin.call<{ admin: boolean; apis: object }>('GET', `/admin/v1/clients/${svc.id}`)).body).toMatchObject({ admin: false, apis: { [ORDERS]: ['read'] } });

    const iat = (await idp(['clients', 'initial-access-token', 'create', '--json'], server.env)).json<{ initialAccessToken: string }>().initialAccessToken;
    const registered = await fetch(new URL('/register', server.issuer), {
      method: 'POST',
      headers: { authorization: `Bearer ${iat}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'dyn', redirect_uris: ['https://app.example.com/cb'], grant_types: ['authorization_code', 'client_credentials'], resource_scopes: { 'urn:idp:admin': ['admin'] } }),
    });
    expect(registered.status).toBe(400);
    expect(((await registered.json()) as { error: string }).error).toBe('invalid_client_metadata');
  });

  it('SEC-AA-05 the admin API refuses the token of a client that is no longer an admin client, even before it expires', async () => {
    const ops = createdClient(await idp(['clients', 'create', '--name', 'ops2', '--admin', '--json'], server.env));
    const token = await clientCredentials({ id: ops.clientId, secret: ops.clientSecret }, { scope: 'admin' });
    expect(await adminApiAnswers(token.body.access_token)).toBe(200);
    await server.current.db.prisma.client.update({ where: { id: ops.clientId }, data: { admin: false } });
    const res = await admin.call('GET', '/admin/v1/users', undefined, token.body.access_token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('SEC-AA-07 a DPoP-bound admin token is refused as a plain Bearer token, and accepted only with a fresh proof of its key for that request', async () => {
    const config = await discover(server.issuer, admin.clientId, admin.clientSecret);
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const dpop = oidc.getDPoPHandle(config, keys);
    const { access_token: token } = await oidc.clientCredentialsGrant(config, { scope: 'admin' }, { DPoP: dpop });
    expect(decodeJwt(token).cnf).toHaveProperty('jkt');
    const url = `${server.issuer}/admin/v1/users`;

    const asBearer = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP .*error="invalid_token"/);
    expect((await fetch(url, { headers: { authorization: `DPoP ${token}` } })).status).toBe(401);

    const good = await oidc.fetchProtectedResource(config, token, new URL(url), 'GET', undefined, undefined, { DPoP: dpop });
    expect(good.status).toBe(200);

    const publicJwk = await exportJWK(keys.publicKey);
    const ath = createHash('sha256').update(token).digest('base64url');
    const proof = (claims: Record<string, unknown>, key = keys.privateKey, jwk = publicJwk) =>
      new SignJWT({ htm: 'GET', htu: url, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ath, ...claims }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).sign(key);
    const call = async (dpopProof: string) => {
      const res = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: dpopProof } });
      return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '' };
    };
    const other = await generateKeyPair('ES256');
    for (const bad of [
      await proof({ htm: 'POST' }),
      await proof({ htu: `${server.issuer}/admin/v1/clients` }),
      await proof({ ath: createHash('sha256').update('another token').digest('base64url') }),
      await proof({ iat: Math.floor(Date.now() / 1000) - 3600 }),
      await proof({}, other.privateKey, await exportJWK(other.publicKey)),
    ]) {
      const res = await call(bad);
      expect(res.status).toBe(401);
      expect(res.challenge).toContain('error="invalid_dpop_proof"');
    }
    const once = await proof({});
    expect((await call(once)).status).toBe(200);
    expect((await call(once)).status).toBe(401);
  });

  it('SEC-AA-06 client registrations stored with one flat scope list are upgraded at start: API scopes per API, the admin API only for admin-shaped clients', async () => {
    const legacy = (id: string, scope: string, grantTypes: string[], redirectUris: string[] = []) =>
      server.current.db.prisma.client.create({
        data: {
          id, name: id, secretHash: 'sha256:unused',
          metadata: JSON.stringify({ client_id: id, client_name: id, grant_types: grantTypes, redirect_uris: redirectUris, post_logout_redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', scope, allowed_origins: [] }),
        },
      });
    await legacy('legacyreporting', 'openid read admin', ['client_credentials']);
    await legacy('legacyops', 'admin admin:read', ['client_credentials']);
    await legacy('legacyweb', 'openid profile read write', ['authorization_code'], [REDIRECT_URI]);
    await server.restart();
    const view = async (id: string) => (await admin.call<{ scope: string; apis: Record<string, string[]>; admin: boolean }>('GET', `/admin/v1/clients/${id}`)).body;
    expect(await view('legacyreporting')).toMatchObject({ scope: 'openid', admin: false, apis: { [ORDERS]: ['read', 'admin'], [REPORTS]: ['read'] } });
    expect(await view('legacyops')).toMatchObject({ scope: '', admin: true, apis: {} });
    expect(await view('legacyweb')).toMatchObject({ scope: 'openid profile', admin: false, apis: { [ORDERS]: ['read', 'write'], [REPORTS]: ['read'] } });
    // Nothing changes at the next start.
    const rows = () => server.current.db.prisma.client.findMany({ orderBy: { id: 'asc' } });
    const before = await rows();
    await server.restart();
    expect(await rows()).toEqual(before);
  });
});
