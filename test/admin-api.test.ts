import SwaggerParser from '@apidevtools/swagger-parser';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { createdClient, idp } from './helpers/cli.ts';
import { seed } from './helpers/seed.ts';
import { discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/index.ts';
import type { ApiDescription } from '../src/resources/service.ts';
import { createServices } from '../src/services.ts';

let server: TestServer;
let admin: AdminApi;

beforeAll(async () => {
  server = await startServer();
  admin = await adminApi(server);
});
afterAll(() => server?.close());

type ClientBody = { client: { clientId: string; disabled: boolean; previousSecretExpiresAt: string | null }; clientSecret?: string };
type Page<T> = { items: T[]; total: number; limit: number; offset: number };

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function clientCredentials(clientId: string, secret: string, body: Record<string, string> = {}) {
  const res = await fetch(new URL('/token', server.issuer), {
    method: 'POST',
    headers: { authorization: basic(clientId, secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...body }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

describe('who may call the admin API', () => {
  it('accepts a client_credentials token for scope=admin obtained without a resource, and it is an ordinary JWT for the admin API', async () => {
    const token = await admin.token('admin');
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL('/jwks', server.issuer)), { issuer: server.issuer, audience: 'urn:idp:admin', typ: 'at+jwt' });
    expect(payload).toMatchObject({ client_id: admin.clientId, sub: admin.clientId, scope: 'admin' });
    expect((await admin.call('GET', '/admin/v1/clients')).status).toBe(200);
  });

  it('answers a missing token with 401 and a WWW-Authenticate challenge', async () => {
    const res = await admin.call('GET', '/admin/v1/users', undefined, null);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${server.issuer}/admin"`);
  });

  it.each([
    ['a garbage token', 'not-a-jwt'],
    ['a tampered token', 'tamper'],
  ])('answers %s with 401 invalid_token', async (_name, kind) => {
    let token = kind;
    if (kind === 'tamper') {
      const [h, p, s] = (await admin.token('admin:read')).split('.');
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
      token = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url')}.${s}`;
    }
    const res = await admin.call('GET', '/admin/v1/users', undefined, token);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('refuses a token for another API, and a user-facing client asking for admin scopes gets nothing', async () => {
    await idp(['resources', 'create', '--identifier', 'https://other.example.com', '--scope', 'read', '--json'], server.env);
    const m2m = await idp(['clients', 'create', '--name', 'svc', '--grant-type', 'client_credentials', '--scope', '', '--api', 'https://other.example.com read', '--json'], server.env);
    const { clientId: client_id, clientSecret: client_secret } = createdClient(m2m);
    const other = await clientCredentials(client_id, client_secret, { resource: 'https://other.example.com', scope: 'read' });
    expect((await admin.call('GET', '/admin/v1/users', undefined, other.body.access_token)).status).toBe(401);
    // The same non-admin client asking for scope=admin gets no token for the admin API.
    const sneaky = await clientCredentials(client_id, client_secret, { scope: 'admin' });
    const res = await admin.call('GET', '/admin/v1/users', undefined, sneaky.body.access_token);
    expect(res.status).toBe(401);
  });

  it('lets admin:read read but not write (403 insufficient_scope)', async () => {
    const read = await admin.token('admin:read');
    expect((await admin.call('GET', '/admin/v1/users', undefined, read)).status).toBe(200);
    const res = await admin.call('POST', '/admin/v1/users', { email: 'nope@example.com' }, read);
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect(res.headers.get('www-authenticate')).toContain('scope="admin"');
    expect((await admin.call('GET', '/admin/v1/users?q=nope')).body).toMatchObject({ total: 0 });
  });
});

describe('clients', () => {
  it('go through their whole lifecycle, and one registered here completes a code flow', async () => {
    const created = await admin.call<ClientBody>('POST', '/admin/v1/clients', {
      name: 'Lifecycle App',
      redirectUris: [REDIRECT_URI],
      scope: 'openid email offline_access',
    });
    expect(created.status).toBe(201);
    const { clientId } = created.body.client;
    const secret = created.body.clientSecret!;
    expect(secret).toBeTruthy();
    expect(JSON.stringify(created.body.client)).not.toContain(secret);
    expect(JSON.stringify(created.body.client)).not.toContain('sha256:');

    // Get and list (filtered by name, paginated).
    expect((await admin.call('GET', `/admin/v1/clients/${clientId}`)).body).toMatchObject({ clientId, name: 'Lifecycle App', redirectUris: [REDIRECT_URI] });
    const listed = await admin.call<Page<{ clientId: string }>>('GET', '/admin/v1/clients?name=lifecycle&limit=1');
    expect(listed.body).toMatchObject({ total: 1, limit: 1, offset: 0 });
    expect(listed.body.items[0]!.clientId).toBe(clientId);
    expect((await admin.call<Page<unknown>>('GET', '/admin/v1/clients?offset=5000')).body.items).toEqual([]);

    // The registered client signs a user in.
    const user = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, clientId, secret);
    const { tokens } = await loginAndExchange(new UserAgent(), config, { login: user, scope: 'openid email offline_access' });
    expect(tokens.claims()!.sub).toBe(user.userId);

    // Update: a redirect URI that breaks the policy is refused and changes nothing.
    const bad = await admin.call('PATCH', `/admin/v1/clients/${clientId}`, { redirectUris: ['http://evil.example.com/cb'] });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/redirectUris.*must use https/);
    const updated = await admin.call('PATCH', `/admin/v1/clients/${clientId}`, { name: 'Renamed', redirectUris: [REDIRECT_URI, 'https://app.example.com/cb'] });
    expect(updated.body).toMatchObject({ name: 'Renamed', redirectUris: [REDIRECT_URI, 'https://app.example.com/cb'] });

    // Disable: the refresh token dies and the client cannot authenticate.
    expect((await admin.call<ClientBody['client']>('POST', `/admin/v1/clients/${clientId}/disable`)).body.disabled).toBe(true);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_client' });
    await admin.call('POST', `/admin/v1/clients/${clientId}/enable`);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

    // Delete: gone.
    expect((await admin.call('DELETE', `/admin/v1/clients/${clientId}`)).status).toBe(204);
    expect((await admin.call('GET', `/admin/v1/clients/${clientId}`)).status).toBe(404);
    expect((await admin.call('DELETE', `/admin/v1/clients/${clientId}`)).status).toBe(404);
  });

  it('rotate secrets: without overlap the old one stops at once, with overlap both work until it ends', async () => {
    const created = await admin.call<ClientBody>('POST', '/admin/v1/clients', { name: 'Rotating', grantTypes: ['client_credentials'], scope: '' });
    const { clientId } = created.body.client;
    const first = created.body.clientSecret!;
    expect((await clientCredentials(clientId, first)).status).toBe(200);

    const withOverlap = await admin.call<ClientBody>('POST', `/admin/v1/clients/${clientId}/rotate-secret`, { overlapSeconds: 3600 });
    expect(withOverlap.status).toBe(200);
    const second = withOverlap.body.clientSecret!;
    expect(withOverlap.body.client.previousSecretExpiresAt).toBeTruthy();
    expect((await clientCredentials(clientId, first)).status).toBe(200);
    expect((await clientCredentials(clientId, second)).status).toBe(200);

    // The overlap ends (aged in the database rather than waited for): the old secret stops.
    await server.current.db.prisma.client.update({ where: { id: clientId }, data: { previousSecretExpiresAt: new Date(Date.now() - 1000) } });
    expect((await clientCredentials(clientId, first)).status).toBe(401);
    expect((await clientCredentials(clientId, second)).status).toBe(200);

    const immediate = await admin.call<ClientBody>('POST', `/admin/v1/clients/${clientId}/rotate-secret`);
    expect(immediate.status).toBe(200);
    const third = immediate.body.clientSecret!;
    expect((await clientCredentials(clientId, second)).body.error).toBe('invalid_client');
    expect((await clientCredentials(clientId, third)).status).toBe(200);
    expect((await admin.call('POST', `/admin/v1/clients/${clientId}/rotate-secret`, { overlapSeconds: -1 })).status).toBe(400);
  });

  it('require a second factor of the people signing in to them when told (requireMfa), which the sign-in reads from the client service', async () => {
    type MfaClient = { clientId: string; requireMfa: boolean };
    const created = await admin.call<{ client: MfaClient }>('POST', '/admin/v1/clients', { name: 'Payroll', redirectUris: [REDIRECT_URI], requireMfa: true });
    expect(created.status).toBe(201);
    const { clientId } = created.body.client;
    expect(created.body.client.requireMfa).toBe(true);
    expect((await admin.call<MfaClient>('GET', `/admin/v1/clients/${clientId}`)).body.requireMfa).toBe(true);
    const listed = await admin.call<Page<MfaClient>>('GET', '/admin/v1/clients?name=payroll');
    expect(listed.body.items).toEqual([expect.objectContaining({ clientId, requireMfa: true })]);
    const { clients } = server.current.services;
    expect(await clients.requiresMfa(clientId)).toBe(true);

    // Left out on update: kept; false: no longer required, at once in this process.
    expect((await admin.call<MfaClient>('PATCH', `/admin/v1/clients/${clientId}`, { name: 'Payroll 2' })).body.requireMfa).toBe(true);
    expect((await admin.call<MfaClient>('PATCH', `/admin/v1/clients/${clientId}`, { requireMfa: false })).body.requireMfa).toBe(false);
    expect(await clients.requiresMfa(clientId)).toBe(false);
    expect((await admin.call<MfaClient>('POST', '/admin/v1/clients', { name: 'Plain', redirectUris: [REDIRECT_URI] })).body).toMatchObject({ client: { requireMfa: false } });
    expect(await clients.requiresMfa('no-such-client')).toBe(false);

    // Bad values are a 400 naming the field, and change nothing.
    for (const value of ['yes', 1, null]) {
      const bad = await admin.call('PATCH', `/admin/v1/clients/${clientId}`, { requireMfa: value });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toMatch(/requireMfa/);
    }
    const badCreate = await admin.call('POST', '/admin/v1/clients', { name: 'Bad', redirectUris: [REDIRECT_URI], requireMfa: 'true' });
    expect(badCreate.status).toBe(400);
    expect(JSON.stringify(badCreate.body)).toMatch(/requireMfa/);
    expect((await admin.call<MfaClient>('GET', `/admin/v1/clients/${clientId}`)).body.requireMfa).toBe(false);

    // An admin client signs nobody in: a second factor does not apply to it.
    const adminClient = await admin.call<{ error_description: string }>('POST', '/admin/v1/clients?admin=true', { name: 'ops-mfa', grantTypes: ['client_credentials'], scope: '', requireMfa: true });
    expect(adminClient.status).toBe(400);
    expect(adminClient.body.error_description).toContain('requireMfa: an admin client signs nobody in');

    // Every change is audited with the value it set.
    const audit = await admin.call<{ items: { action: string; details: Record<string, unknown> }[] }>('GET', `/admin/v1/audit?target=${clientId}`);
    expect(audit.body.items.map((e) => [e.action, e.details])).toEqual(
      expect.arrayContaining([
        ['client.created', expect.objectContaining({ requireMfa: true })],
        ['client.updated', { fields: ['requireMfa'], requireMfa: false }],
      ]),
    );
  });

  it.each([
    ['a javascript: redirect URI', { name: 'x', redirectUris: ['javascript:alert(1)'] }, /forbidden scheme/],
    ['a data: post-logout URI', { name: 'x', redirectUris: ['https://a.example.com/cb'], postLogoutRedirectUris: ['data:text/html,hi'] }, /forbidden scheme/],
    ['a wildcard', { name: 'x', redirectUris: ['https://*.example.com/cb'] }, /wildcard/],
    ['a fragment', { name: 'x', redirectUris: ['https://a.example.com/cb#x'] }, /fragment/],
    ['an oversized name', { name: 'x'.repeat(201), redirectUris: ['https://a.example.com/cb'] }, /name/],
    ['too many redirect URIs', { name: 'x', redirectUris: Array.from({ length: 51 }, (_, i) => `https://a.example.com/${i}`) }, /redirectUris/],
    ['an unknown field', { name: 'x', redirectUris: ['https://a.example.com/cb'], client_secret: 'mine' }, /client_secret/],
    ['a wrong type', { name: 42 }, /name/],
  ])('refuses %s with 400 naming the field, and creates nothing', async (_name, body, message) => {
    const before = (await admin.call<Page<unknown>>('GET', '/admin/v1/clients')).body.total;
    const res = await admin.call('POST', '/admin/v1/clients', body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request' });
    expect(JSON.stringify(res.body)).toMatch(message);
    expect((await admin.call<Page<unknown>>('GET', '/admin/v1/clients')).body.total).toBe(before);
  });
});

describe('client links (logo, privacy policy, terms of service, home page)', () => {
  const links = {
    logoUri: 'https://app.example.com/logo.png',
    policyUri: 'https://app.example.com/privacy',
    tosUri: 'https://app.example.com/legal#terms',
    clientUri: 'https://app.example.com/',
  };
  type View = typeof links & { clientId: string; name: string };
  const providerLinks = async (clientId: string) => {
    const client = await server.current.oidc.current.Client.find(clientId);
    return { logoUri: client?.logoUri, policyUri: client?.policyUri, tosUri: client?.tosUri, clientUri: client?.clientUri };
  };

  it('are https URLs, returned by the admin API, exposed on the provider’s client, and removed with null', async () => {
    const created = await admin.call<{ client: View }>('POST', '/admin/v1/clients', { name: 'Linked App', redirectUris: [REDIRECT_URI], ...links });
    expect(created.status).toBe(201);
    expect(created.body.client).toMatchObject(links);
    const { clientId } = created.body.client;
    expect((await admin.call('GET', `/admin/v1/clients/${clientId}`)).body).toMatchObject(links);
    expect(await providerLinks(clientId)).toEqual(links);

    const patched = await admin.call<View>('PATCH', `/admin/v1/clients/${clientId}`, { logoUri: null, tosUri: 'https://app.example.com/terms' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ ...links, logoUri: null, tosUri: 'https://app.example.com/terms' });
    expect(await providerLinks(clientId)).toEqual({ ...links, logoUri: undefined, tosUri: 'https://app.example.com/terms' });
    // An update that does not name them keeps them.
    expect((await admin.call<View>('PATCH', `/admin/v1/clients/${clientId}`, { name: 'Linked App 2' })).body).toMatchObject({ name: 'Linked App 2', policyUri: links.policyUri, logoUri: null });

    // A client without links shows them as null.
    const bare = await admin.call<{ client: View }>('POST', '/admin/v1/clients', { name: 'Bare App', redirectUris: [REDIRECT_URI] });
    expect(bare.body.client).toMatchObject({ logoUri: null, policyUri: null, tosUri: null, clientUri: null });
  });
});

describe('APIs (resource servers)', () => {
  it('go through their lifecycle, and changes apply to the very next token', async () => {
    const created = await admin.call<{ id: string }>('POST', '/admin/v1/resources', { identifier: 'https://orders.example.com', scopes: ['orders:read'], accessTokenTtl: 120 });
    expect(created.status).toBe(201);
    const { id } = created.body;
    expect((await admin.call('POST', '/admin/v1/resources', { identifier: 'https://orders.example.com' })).status).toBe(409);
    expect((await admin.call('GET', `/admin/v1/resources/${id}`)).body).toMatchObject({ identifier: 'https://orders.example.com', scopes: ['orders:read'], accessTokenTtl: 120 });

    const svc = await admin.call<ClientBody>('POST', '/admin/v1/clients', { name: 'orders-svc', grantTypes: ['client_credentials'], scope: '', apis: { 'https://orders.example.com': ['orders:read'] } });
    const { clientId } = svc.body.client;
    const secret = svc.body.clientSecret!;
    const jwks = createRemoteJWKSet(new URL('/jwks', server.issuer));
    let t = await clientCredentials(clientId, secret, { resource: 'https://orders.example.com', scope: 'orders:read' });
    let { payload, protectedHeader } = await jwtVerify(t.body.access_token!, jwks, { audience: 'https://orders.example.com' });
    expect(payload.exp! - payload.iat!).toBe(120);
    expect(protectedHeader.alg).toBe('RS256');

    const patched = await admin.call('PATCH', `/admin/v1/resources/${id}`, { scopes: ['orders:read', 'orders:write'], accessTokenTtl: 300, signingAlg: 'ES256' });
    expect(patched.status).toBe(200);
    // A new scope of the API reaches the client once it is allowed there.
    t = await clientCredentials(clientId, secret, { resource: 'https://orders.example.com', scope: 'orders:read orders:write' });
    expect((await jwtVerify(t.body.access_token!, jwks, { audience: 'https://orders.example.com' })).payload.scope).toBe('orders:read');
    expect((await admin.call('PATCH', `/admin/v1/clients/${clientId}`, { apis: { 'https://orders.example.com': ['orders:read', 'orders:write'] } })).status).toBe(200);
    t = await clientCredentials(clientId, secret, { resource: 'https://orders.example.com', scope: 'orders:read orders:write' });
    ({ payload, protectedHeader } = await jwtVerify(t.body.access_token!, jwks, { audience: 'https://orders.example.com' }));
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.scope).toBe('orders:read orders:write');

    expect((await admin.call('PATCH', `/admin/v1/resources/${id}`, { accessTokenTtl: 5 })).status).toBe(400);
    expect((await admin.call('DELETE', `/admin/v1/resources/${id}`)).status).toBe(204);
    t = await clientCredentials(clientId, secret, { resource: 'https://orders.example.com' });
    expect(t.body.error).toBe('invalid_target');
  });

  it('protect the admin API itself', async () => {
    const list = await admin.call<Page<{ id: string; identifier: string }>>('GET', '/admin/v1/resources?limit=200');
    const self = list.body.items.find((r) => r.identifier === 'urn:idp:admin')!;
    expect((await admin.call('DELETE', `/admin/v1/resources/${self.id}`)).status).toBe(400);
    expect((await admin.call('PATCH', `/admin/v1/resources/${self.id}`, { scopes: [] })).status).toBe(400);
    expect((await admin.call('POST', '/admin/v1/resources', { identifier: 'urn:idp:admin' })).status).toBe(409);
  });
});

describe('scope descriptions (what the consent page says an app asks for)', () => {
  type Api = { id: string; identifier: string; scopes: string[]; scopeDescriptions: Record<string, string> };

  it('are registered with an API, as objects or beside plain names, read back, and replaced with the scopes', async () => {
    const created = await admin.call<Api>('POST', '/admin/v1/resources', {
      identifier: 'https://docs.example.com',
      name: 'Docs',
      scopes: [{ name: 'docs:read', description: '  Read your documents ' }, 'docs:write', { name: 'docs:share', description: 'Share your documents with others' }],
    });
    expect(created.status).toBe(201);
    expect(created.body.scopes).toEqual(['docs:read', 'docs:write', 'docs:share']);
    expect(created.body.scopeDescriptions).toEqual({ 'docs:read': 'Read your documents', 'docs:share': 'Share your documents with others' });
    const { id } = created.body;
    expect((await admin.call('GET', `/admin/v1/resources/${id}`)).body).toEqual(created.body);

    // Today's forms are kept: a space-separated string, or an array of names.
    const plain = await admin.call<Api>('POST', '/admin/v1/resources', { identifier: 'https://plain.example.com', scopes: 'a b' });
    expect(plain.body).toMatchObject({ scopes: ['a', 'b'], scopeDescriptions: {} });

    // New scopes replace the descriptions: a name given without one loses it.
    const replaced = await admin.call<Api>('PATCH', `/admin/v1/resources/${id}`, { scopes: ['docs:read', { name: 'docs:write', description: 'Change your documents' }] });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ scopes: ['docs:read', 'docs:write'], scopeDescriptions: { 'docs:write': 'Change your documents' } });
    expect(replaced.body.scopeDescriptions).not.toHaveProperty('docs:read');
    // An update that leaves the scopes out keeps them and their descriptions.
    expect((await admin.call<Api>('PATCH', `/admin/v1/resources/${id}`, { accessTokenTtl: 600 })).body.scopeDescriptions).toEqual({ 'docs:write': 'Change your documents' });

    // The admin API's own scopes come with words of their own.
    const list = await admin.call<Page<Api>>('GET', '/admin/v1/resources?limit=200');
    expect(list.body.items.find((r) => r.identifier === 'urn:idp:admin')!.scopeDescriptions).toEqual({
      admin: 'Manage this identity provider',
      'admin:read': "View this identity provider's configuration",
    });

    // The OpenAPI document says so.
    const doc = (await (await fetch(new URL('/admin/openapi.json', server.issuer))).json()) as {
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
      paths: Record<string, Record<string, { description?: string }>>;
    };
    expect(doc.components.schemas.Api!.properties).toHaveProperty('scopeDescriptions');
    expect(doc.paths['/admin/v1/resources/{id}']!.patch!.description).toContain('a scope given without a description loses the one it had');
  });

  let target: Api | undefined;
  it.each([
    ['an empty description', [{ name: 'read', description: '   ' }], 'scopes.0.description: must not be empty'],
    ['a description over 200 characters', ['write', { name: 'read', description: 'x'.repeat(201) }], 'scopes.1.description: must be at most 200 characters'],
    ['a control character', [{ name: 'read', description: 'Read\u0007 your documents' }], 'scopes.0.description: must not contain control characters'],
    ['a line break', [{ name: 'read', description: 'Read\nyour documents' }], 'scopes.0.description: must not contain control characters'],
    ['a bidirectional override', [{ name: 'read', description: 'Read \u202Estnemucod' }], 'scopes.0.description: must not contain control characters'],
    ['a description that is not text', [{ name: 'read', description: 42 }], 'scopes.0.description'],
    ['an unknown field', [{ name: 'read', text: 'Read' }], 'scopes.0'],
    ['two descriptions of one scope', [{ name: 'read', description: 'Read' }, { name: 'read', description: 'Look' }], 'read is given twice with different descriptions'],
    ['a described OpenID Connect scope', [{ name: 'openid', description: 'Sign you in' }], 'scopes.0.name: OpenID Connect scopes'],
  ])('refuse %s with a 400 naming the field, on create and update, changing nothing', async (_name, scopes, message) => {
    target ??= (await admin.call<Api>('POST', '/admin/v1/resources', { identifier: 'https://target.example.com', scopes: [{ name: 'read', description: 'Read your files' }] })).body;
    const before = (await admin.call<Page<Api>>('GET', '/admin/v1/resources')).body.total;
    for (const res of [
      await admin.call<{ error: string; error_description: string }>('POST', '/admin/v1/resources', { identifier: 'https://refused.example.com', scopes }),
      await admin.call<{ error: string; error_description: string }>('PATCH', `/admin/v1/resources/${target.id}`, { scopes }),
    ]) {
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_request');
      expect(res.body.error_description).toContain(message);
    }
    expect((await admin.call<Page<Api>>('GET', '/admin/v1/resources')).body.total).toBe(before);
    expect((await admin.call<Api>('GET', `/admin/v1/resources/${target.id}`)).body.scopeDescriptions).toEqual({ read: 'Read your files' });
  });

  it('are read for the consent page through the configuration cache: one query for what it lacks, none for what it holds', async () => {
    await admin.call('POST', '/admin/v1/resources', { identifier: 'https://photos.example.com', name: 'Photos', scopes: [{ name: 'photos:read', description: 'See your photos' }, 'photos:write'] });
    const reads: string[] = [];
    const db = await openDatabase(server.databaseUrl, (model, operation) => {
      if (model === 'ResourceServer') reads.push(operation);
    });
    try {
      const { resources } = createServices(db, loadConfig(server.env));
      const asked = ['https://photos.example.com', 'urn:idp:admin', 'https://unknown.example.com', 'https://photos.example.com'];
      const expected: ApiDescription[] = [
        { identifier: 'https://photos.example.com', name: 'Photos', scopeDescriptions: { 'photos:read': 'See your photos' } },
        { identifier: 'urn:idp:admin', name: 'Admin API', scopeDescriptions: { admin: 'Manage this identity provider', 'admin:read': "View this identity provider's configuration" } },
      ];
      expect(await resources.describe(asked)).toEqual(expected);
      expect(reads).toEqual(['findMany']);
      // Now cached, as for token requests (the same entries): no query at all.
      expect(await resources.describe(asked.slice(0, 2))).toEqual(expected);
      expect(await resources.findByIdentifier('https://photos.example.com')).toMatchObject({ scopes: ['photos:read', 'photos:write'] });
      expect(reads).toEqual(['findMany']);
      // An API a token request has read is described from the cache too.
      await resources.findByIdentifier('https://docs.example.com');
      const before = reads.length;
      expect((await resources.describe(['https://docs.example.com']))[0]).toMatchObject({ identifier: 'https://docs.example.com', name: 'Docs' });
      expect(reads).toHaveLength(before);
      expect(await resources.describe([])).toEqual([]);
    } finally {
      await db.close();
    }
  });
});

describe('users', () => {
  it('go through their lifecycle: grants, sessions, password, disable and delete all take effect', async () => {
    const created = await admin.call<{ id: string }>('POST', '/admin/v1/users', { email: 'Bob@Example.com', password: 'bob password 1', name: 'Bob' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: 'bob@example.com', hasPassword: true });
    expect(JSON.stringify(created.body)).not.toContain('argon2');
    const { id } = created.body;
    expect((await admin.call('POST', '/admin/v1/users', { email: 'bob@example.com' })).status).toBe(409);
    expect((await admin.call<Page<unknown>>('GET', '/admin/v1/users?q=BOB')).body.total).toBe(1);

    // Bob signs in to an app.
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const { tokens } = await loginAndExchange(ua, config, { login: { email: 'bob@example.com', password: 'bob password 1' } });
    const grants = await admin.call<{ items: { grantId: string; clientId: string; scopes: string[] }[] }>('GET', `/admin/v1/users/${id}/grants`);
    expect(grants.body.items).toHaveLength(1);
    expect(grants.body.items[0]).toMatchObject({ clientId: app.clientId, scopes: expect.arrayContaining(['openid', 'offline_access']) });

    // Revoking the grant kills the refresh token.
    expect((await admin.call('DELETE', `/admin/v1/users/${id}/grants/${grants.body.items[0]!.grantId}`)).status).toBe(204);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await admin.call('DELETE', `/admin/v1/users/${id}/grants/nope`)).status).toBe(404);

    // Revoking sessions signs the browser out.
    const again = await loginAndExchange(ua, config, {});
    expect((await admin.call<{ revoked: number }>('DELETE', `/admin/v1/users/${id}/sessions`)).body.revoked).toBe(1);
    const { authorize } = await import('./helpers/flow.ts');
    expect((await authorize(ua, config, { prompt: 'none', consent: false })).callbackUrl.searchParams.get('error')).toBe('login_required');

    // Disabling ends refresh tokens at once and stops logins.
    expect((await admin.call('POST', `/admin/v1/users/${id}/disable`)).body).toMatchObject({ disabled: true });
    await expect(oidc.refreshTokenGrant(config, again.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(loginAndExchange(new UserAgent(), config, { login: { email: 'bob@example.com', password: 'bob password 1' } })).rejects.toThrow();
    await admin.call('POST', `/admin/v1/users/${id}/enable`);

    // A new password: the old one stops working.
    expect((await admin.call('PUT', `/admin/v1/users/${id}/password`, { password: 'short' })).status).toBe(400);
    expect((await admin.call('PUT', `/admin/v1/users/${id}/password`, { password: 'bob password 2' })).status).toBe(204);
    await expect(loginAndExchange(new UserAgent(), config, { login: { email: 'bob@example.com', password: 'bob password 1' } })).rejects.toThrow();
    await expect(loginAndExchange(new UserAgent(), config, { login: { email: 'bob@example.com', password: 'bob password 2' } })).resolves.toBeDefined();

    // Update: email normalized, duplicates refused.
    await admin.call('POST', '/admin/v1/users', { email: 'carol@example.com' });
    expect((await admin.call('PATCH', `/admin/v1/users/${id}`, { email: 'CAROL@example.com' })).status).toBe(409);
    expect((await admin.call('PATCH', `/admin/v1/users/${id}`, { email: 'Robert@Example.com', name: 'Robert', emailVerified: true })).body).toMatchObject({
      email: 'robert@example.com',
      name: 'Robert',
      emailVerified: true,
    });

    expect((await admin.call('DELETE', `/admin/v1/users/${id}`)).status).toBe(204);
    expect((await admin.call('GET', `/admin/v1/users/${id}`)).status).toBe(404);
  });
});

describe('keys and audit', () => {
  it('lists signing keys without private material', async () => {
    const res = await admin.call<{ items: Record<string, unknown>[] }>('GET', '/admin/v1/keys', undefined, await admin.token('admin:read'));
    expect(res.body.items.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    expect(Object.keys(res.body.items[0]!).sort()).toEqual(['activatesAt', 'alg', 'createdAt', 'kid', 'removeAfter', 'retiredAt', 'state']);
  });

  it('records who did what, when and from where, including refresh-token reuse', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const { tokens } = await loginAndExchange(new UserAgent(), config, { login: app });
    await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    await oidc.refreshTokenGrant(config, tokens.refresh_token!).catch(() => undefined);

    // The provider's event is recorded beside its answer, not before it.
    await vi.waitFor(async () => {
      const reuse = await admin.call<Page<{ action: string; actor: string; target: string }>>('GET', '/admin/v1/audit?action=refresh_token.reuse_detected');
      expect(reuse.body.items[0]).toMatchObject({ action: 'refresh_token.reuse_detected', actor: `client:${app.clientId}` });
    });

    const created = await admin.call<ClientBody>('POST', '/admin/v1/clients', { name: 'Audited', grantTypes: ['client_credentials'], scope: '' });
    const events = await admin.call<Page<{ action: string; actor: string; target: string; ip: string }>>('GET', `/admin/v1/audit?target=${created.body.client.clientId}`);
    expect(events.body.items[0]).toMatchObject({ action: 'client.created', actor: `client:${admin.clientId}`, ip: '127.0.0.1' });
    const byCli = await admin.call<Page<{ actor: string }>>('GET', '/admin/v1/audit?action=user.created');
    expect(byCli.body.items.some((e) => e.actor.startsWith('cli:'))).toBe(true);
    expect((await admin.call<Page<unknown>>('GET', '/admin/v1/audit?action=login.succeeded&limit=1')).body.items).toHaveLength(1);
    expect((await admin.call('GET', '/admin/v1/audit?limit=0')).status).toBe(400);
  });
});

describe('bad input', () => {
  it.each([
    ['malformed JSON', 'POST', '/admin/v1/users', '{"email":', 400],
    ['an unknown id', 'GET', '/admin/v1/users/no-such-user', undefined, 404],
    ['an unknown client', 'POST', '/admin/v1/clients/no-such-client/disable', undefined, 404],
    ['a bad limit', 'GET', '/admin/v1/users?limit=abc', undefined, 400],
    ['an oversized body', 'POST', '/admin/v1/users', JSON.stringify({ email: 'a@example.com', name: 'x'.repeat(100_000) }), 413],
  ])('answers %s with a 4xx and an OAuth-style error body', async (_name, method, path, body, status) => {
    const res = await admin.call(method, path, body);
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ error: expect.any(String), error_description: expect.any(String) });
  });
});

describe('OpenAPI', () => {
  it('serves a valid OpenAPI 3 document covering every admin route, and a docs page', async () => {
    const res = await fetch(new URL('/admin/openapi.json', server.issuer));
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
    expect(doc.openapi).toMatch(/^3\./);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const expected = [
        'POST /admin/v1/clients', 'GET /admin/v1/clients', 'GET /admin/v1/clients/{id}', 'PATCH /admin/v1/clients/{id}', 'DELETE /admin/v1/clients/{id}',
        'POST /admin/v1/clients/{id}/disable', 'POST /admin/v1/clients/{id}/enable', 'POST /admin/v1/clients/{id}/rotate-secret',
        'POST /admin/v1/resources', 'GET /admin/v1/resources', 'GET /admin/v1/resources/{id}', 'PATCH /admin/v1/resources/{id}', 'DELETE /admin/v1/resources/{id}',
        'POST /admin/v1/users', 'GET /admin/v1/users', 'GET /admin/v1/users/{id}', 'PATCH /admin/v1/users/{id}', 'DELETE /admin/v1/users/{id}',
        'POST /admin/v1/users/{id}/disable', 'POST /admin/v1/users/{id}/enable', 'PUT /admin/v1/users/{id}/password', 'POST /admin/v1/users/{id}/password-reset',
        'GET /admin/v1/users/{id}/grants', 'DELETE /admin/v1/users/{id}/grants', 'DELETE /admin/v1/users/{id}/grants/{grantId}', 'DELETE /admin/v1/users/{id}/sessions',
        'GET /admin/v1/users/{id}/identities', 'DELETE /admin/v1/users/{id}/identities/{identityId}',
        'GET /admin/v1/users/{id}/factors', 'DELETE /admin/v1/users/{id}/factors',
        'POST /admin/v1/providers', 'GET /admin/v1/providers', 'GET /admin/v1/providers/{id}', 'PATCH /admin/v1/providers/{id}', 'DELETE /admin/v1/providers/{id}',
        'GET /admin/v1/keys', 'POST /admin/v1/keys/rotate', 'GET /admin/v1/audit',
        'GET /admin/v1/mail', 'POST /admin/v1/mail/{id}/retry',
        'POST /admin/v1/invitations', 'POST /admin/v1/users/{id}/verification-email',
        'POST /admin/v1/roles', 'GET /admin/v1/roles', 'GET /admin/v1/roles/{role}', 'PATCH /admin/v1/roles/{role}', 'DELETE /admin/v1/roles/{role}',
        'GET /admin/v1/users/{id}/roles', 'PUT /admin/v1/users/{id}/roles/{role}', 'DELETE /admin/v1/users/{id}/roles/{role}',
        'GET /admin/v1/clients/{id}/roles', 'PUT /admin/v1/clients/{id}/roles/{role}', 'DELETE /admin/v1/clients/{id}/roles/{role}',
        'GET /admin/v1/stats/sign-ins', 'GET /admin/v1/settings',
    ];
    expect(documented.sort()).toEqual(expected.sort());
    for (const path of Object.values(doc.paths)) {
      for (const op of Object.values(path) as { responses: Record<string, unknown> }[]) expect(Object.keys(op.responses)).toContain('401');
    }
    const docs = await fetch(new URL('/admin/docs', server.issuer));
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger');
  });
});
