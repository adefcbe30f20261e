// Client registration policy: RFC 7591 §2, §3.2.2; RFC 7592; RFC 9700 §2.1, §4.1.1; ASVS V51.4.
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { idp } from '../helpers/cli.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let server: TestServer;
let admin: AdminApi;
let initialAccessToken: string;

beforeAll(async () => {
  server = await startServer();
  admin = await adminApi(server);
  const created = await idp(['clients', 'initial-access-token', 'create', '--expires-in', '600', '--uses', 'unlimited', '--json'], server.env);
  expect(created.code).toBe(0);
  initialAccessToken = created.json<{ initialAccessToken: string }>().initialAccessToken;
});
afterAll(() => server?.close());

async function register(metadata: Record<string, unknown>, token: string | null = initialAccessToken) {
  const res = await fetch(new URL('/register', server.issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(metadata),
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

/** Client authentication at the introspection endpoint proves which secret the client holds. */
async function authenticates(clientId: string, secret: string) {
  const res = await fetch(new URL('/token/introspection', server.issuer), {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: 'anything' }),
  });
  return res.status === 200;
}

/** Client authentication at the introspection endpoint with a client assertion (private_key_jwt, RFC 7523) signed with `key`. */
async function assertionAuthenticates(clientId: string, key: CryptoKey, kid: string, aud = new URL('/token/introspection', server.issuer).href) {
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(aud)
    .setJti(crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(key);
  const res = await fetch(new URL('/token/introspection', server.issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: 'anything', client_id: clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** An RS256 key pair and its public JWKS, as a registrant sends it. */
async function clientKeys(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { privateKey, kid, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] } };
}

const APP = { client_name: 'Dynamic App', redirect_uris: ['https://app.example.com/cb'], grant_types: ['authorization_code'], response_types: ['code'] };

describe('dynamic client registration (RFC 7591 / 7592)', () => {
  it('SEC-RG-01 dynamic registration requires an initial access token', async () => {
    const anonymous = await register(APP, null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toBe('invalid_token');
    expect((await register(APP, 'forged')).status).toBe(401);
  });

  it('SEC-RG-02 dynamic registration: registers, reads, updates and deletes a client; the secret is shown once and stored hashed', async () => {
    const created = await register(APP);
    expect(created.status).toBe(201);
    const { client_id, client_secret, registration_access_token, registration_client_uri } = created.body;
    expect(client_secret).toBeTruthy();
    expect(client_id).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(await authenticates(client_id!, client_secret!)).toBe(true);
    expect(await authenticates(client_id!, `${client_secret}x`)).toBe(false);

    const row = await server.current.db.prisma.client.findUniqueOrThrow({ where: { id: client_id! } });
    expect(row.secretHash).toMatch(/^sha256:/);
    expect(JSON.stringify(row)).not.toContain(client_secret);

    const read = await fetch(registration_client_uri!, { headers: { authorization: `Bearer ${registration_access_token}` } });
    expect(read.status).toBe(200);
    const readBody = (await read.json()) as Record<string, unknown>;
    expect(readBody).toMatchObject({ client_id, client_name: 'Dynamic App', redirect_uris: APP.redirect_uris });
    expect(readBody).not.toHaveProperty('client_secret');
    const rotatedRat = String(readBody.registration_access_token);

    const update = await fetch(registration_client_uri!, {
      method: 'PUT',
      headers: { authorization: `Bearer ${rotatedRat}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...APP, client_id, client_name: 'Renamed App', redirect_uris: ['https://app.example.com/cb2'] }),
    });
    expect(update.status).toBe(200);
    const updated = (await update.json()) as Record<string, unknown>;
    expect(updated).toMatchObject({ client_name: 'Renamed App', redirect_uris: ['https://app.example.com/cb2'] });
    expect(updated).not.toHaveProperty('client_secret');
    // The update kept the secret.
    expect(await authenticates(client_id!, client_secret!)).toBe(true);

    // The admin API sees it, and the audit trail says how it came.
    expect((await admin.call('GET', `/admin/v1/clients/${client_id}`)).body).toMatchObject({ name: 'Renamed App', redirectUris: ['https://app.example.com/cb2'] });
    const events = await admin.call<{ items: { action: string; actor: string }[] }>('GET', `/admin/v1/audit?target=${client_id}`);
    expect(events.body.items.map((e) => e.action)).toEqual(['client.updated', 'client.created']);
    expect(events.body.items[1]!.actor).toBe(`registration:${client_id}`);

    const del = await fetch(registration_client_uri!, { method: 'DELETE', headers: { authorization: `Bearer ${String(updated.registration_access_token ?? rotatedRat)}` } });
    expect(del.status).toBe(204);
    expect(await authenticates(client_id!, client_secret!)).toBe(false);
    expect((await admin.call('GET', `/admin/v1/clients/${client_id}`)).status).toBe(404);
  });

  it.each([
    ['a plain-http redirect URI', { redirect_uris: ['http://app.example.com/cb'] }],
    ['a fragment in a redirect URI', { redirect_uris: ['https://app.example.com/cb#x'] }],
    ['a wildcard redirect URI', { redirect_uris: ['https://*.example.com/cb'] }],
    ['a javascript: client_uri', { client_uri: 'javascript:alert(1)' }],
    ['a data: logo_uri', { logo_uri: 'data:image/png;base64,AAAA' }],
    ['an oversized client_name', { client_name: 'x'.repeat(5000) }],
    ['a refresh-token reuse interval (only an admin may relax reuse detection)', { grant_types: ['authorization_code', 'refresh_token'], refresh_token_reuse_interval: 30 }],
  ])('SEC-RG-03 dynamic registration refuses %s with 400 and stores nothing', async (_name, override) => {
    const before = await server.current.db.prisma.client.count();
    const res = await register({ ...APP, ...override });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/^invalid_(redirect_uri|client_metadata)$/);
    expect(await server.current.db.prisma.client.count()).toBe(before);
  });

  it.each([
    ['a plain-http redirect URI off loopback', { redirectUris: ['http://app.example.com/cb'] }, 'must use https'],
    ['a fragment in a redirect URI', { redirectUris: ['https://app.example.com/cb#x'] }, 'fragment'],
    ['a wildcard redirect URI', { redirectUris: ['https://*.example.com/cb'] }, 'redirectUris'],
    ['a javascript: redirect URI', { redirectUris: ['javascript:alert(1)'] }, 'redirectUris'],
    ['a relative redirect URI', { redirectUris: ['/cb'] }, 'redirectUris'],
    ['an implicit grant', { redirectUris: ['https://app.example.com/cb'], grantTypes: ['implicit'] }, 'grantTypes'],
    ['a password grant', { redirectUris: ['https://app.example.com/cb'], grantTypes: ['password'] }, 'grantTypes'],
  ])('SEC-RG-05 the admin API refuses %s with 400 and stores nothing', async (_name, body, message) => {
    await admin.token();
    const before = await server.current.db.prisma.client.count();
    const res = await admin.call<{ error: string; error_description: string }>('POST', '/admin/v1/clients', { name: 'Policy', ...body });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(res.body.error_description).toContain(message);
    expect(await server.current.db.prisma.client.count()).toBe(before);
  });

  it('SEC-RG-04 a registrant cannot grant itself API or admin scopes', async () => {
    for (const scope of ['openid admin', 'openid read']) expect((await register({ ...APP, scope })).body.error).toBe('invalid_client_metadata');
    const refused = await register({ ...APP, grant_types: ['authorization_code', 'client_credentials'], scope: 'openid', resource_scopes: { 'https://api.example.com': ['read'] } });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_client_metadata');
    const created = await register({ ...APP, grant_types: ['authorization_code', 'client_credentials'], scope: 'openid' });
    expect(created.status).toBe(201);
    const view = await admin.call<{ scope: string; apis: object; admin: boolean }>('GET', `/admin/v1/clients/${created.body.client_id}`);
    expect(view.body).toMatchObject({ scope: 'openid', apis: {}, admin: false });
    // Asking for admin scopes gets it no token the admin API accepts.
    const token = await fetch(new URL('/token', server.issuer), {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${created.body.client_id}:${created.body.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin' }),
    });
    const { access_token } = (await token.json()) as { access_token: string };
    expect((await admin.call('GET', '/admin/v1/users', undefined, access_token)).status).toBe(401);
  });

  it('SEC-RG-08 an initial access token registers one client by default: a second use is refused, and of parallel uses exactly one wins', async () => {
    const token = async (...extra: string[]) => (await idp(['clients', 'initial-access-token', 'create', ...extra, '--json'], server.env)).json<{ initialAccessToken: string; uses: number | string }>();
    const single = await token();
    expect(single.uses).toBe(1);
    expect((await register(APP, single.initialAccessToken)).status).toBe(201);
    const again = await register(APP, single.initialAccessToken);
    expect(again.status).toBe(401);
    expect(again.body.error).toBe('invalid_token');

    const before = await server.current.db.prisma.client.count();
    const raced = await token();
    const statuses = await Promise.all(Array.from({ length: 6 }, () => register(APP, raced.initialAccessToken).then((r) => r.status)));
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s !== 201).every((s) => s === 401)).toBe(true);
    expect(await server.current.db.prisma.client.count()).toBe(before + 1);

    // A failed registration does not use it up; a counted token registers exactly that many.
    const three = await token('--uses', '3');
    expect((await register({ ...APP, redirect_uris: ['http://app.example.com/cb'] }, three.initialAccessToken)).status).toBe(400);
    for (let i = 0; i < 3; i++) expect((await register(APP, three.initialAccessToken)).status).toBe(201);
    expect((await register(APP, three.initialAccessToken)).status).toBe(401);
    expect((await idp(['clients', 'initial-access-token', 'create', '--uses', '0'], server.env)).stderr).toContain('--uses must be');
  });

  it('SEC-RG-07 a sector_identifier_uri is refused without being fetched (no request from the server to an address of the registrant\'s choosing)', async () => {
    const requests: string[] = [];
    const listener = createServer((req, res) => {
      requests.push(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(APP.redirect_uris));
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = listener.address() as { port: number };
      const before = await server.current.db.prisma.client.count();
      for (const uri of [`http://127.0.0.1:${port}/sector.json`, 'https://sector.example.com/sector.json']) {
        const res = await register({ ...APP, sector_identifier_uri: uri });
        expect(res.status).toBe(400);
        expect(res.body.error).toBe('invalid_client_metadata');
        expect(res.body.error_description).toContain('sector_identifier_uri is not supported');
      }
      expect(requests).toEqual([]);
      expect(await server.current.db.prisma.client.count()).toBe(before);
    } finally {
      listener.close();
    }
  });

  /** Links a consent page shows (logo, privacy policy, terms, home page): absolute https URLs only, on every path. */
  const BAD_LINKS = [
    ['an http', 'http://app.example.com/page'],
    ['a loopback http', 'http://localhost/page'],
    ['a javascript:', 'javascript:alert(1)'],
    ['a data:', 'data:text/html,<script>alert(1)</script>'],
    ['a relative', '/page'],
    ['a credentialed', 'https://user:secret@app.example.com/page'],
    ['an over-2048-character', `https://app.example.com/${'x'.repeat(2030)}`],
  ] as const;
  const LINK_FIELDS = [
    ['logo_uri', 'logoUri', '--logo-uri'],
    ['policy_uri', 'policyUri', '--policy-uri'],
    ['tos_uri', 'tosUri', '--tos-uri'],
    ['client_uri', 'clientUri', '--client-uri'],
  ] as const;
  const HTTPS_LINKS = { logo_uri: 'https://app.example.com/logo.png', policy_uri: 'https://app.example.com/privacy', tos_uri: 'https://app.example.com/terms', client_uri: 'https://app.example.com/' };
  // Each bad value on one field, the fields taken in turn.
  const badLinkCases = BAD_LINKS.map(([kind, value], i) => [`${kind} ${LINK_FIELDS[i % 4]![0]}`, LINK_FIELDS[i % 4]!, value] as const);

  it('SEC-RG-09 dynamic registration stores https links (logo, policy, terms, home page) and the provider’s client exposes them (control)', async () => {
    const created = await register({ ...APP, ...HTTPS_LINKS });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject(HTTPS_LINKS);
    const read = await fetch(created.body.registration_client_uri!, { headers: { authorization: `Bearer ${created.body.registration_access_token}` } });
    expect(await read.json()).toMatchObject(HTTPS_LINKS);
    const client = await server.current.oidc.current.Client.find(created.body.client_id!);
    expect([client?.logoUri, client?.policyUri, client?.tosUri, client?.clientUri]).toEqual(Object.values(HTTPS_LINKS));
    expect((await admin.call('GET', `/admin/v1/clients/${created.body.client_id}`)).body).toMatchObject({
      logoUri: HTTPS_LINKS.logo_uri,
      policyUri: HTTPS_LINKS.policy_uri,
      tosUri: HTTPS_LINKS.tos_uri,
      clientUri: HTTPS_LINKS.client_uri,
    });
  });

  it.each(badLinkCases)('SEC-RG-09 dynamic registration refuses %s with invalid_client_metadata and stores nothing', async (_name, [field], value) => {
    const before = await server.current.db.prisma.client.count();
    const res = await register({ ...APP, [field]: value });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_client_metadata');
    expect(res.body.error_description).toContain(field);
    expect(await server.current.db.prisma.client.count()).toBe(before);
  });

  it('SEC-RG-09 an update through the registration endpoint (RFC 7592) refuses an http link and changes nothing', async () => {
    const created = await register({ ...APP, ...HTTPS_LINKS });
    const { client_id, registration_client_uri, registration_access_token } = created.body;
    const res = await fetch(registration_client_uri!, {
      method: 'PUT',
      headers: { authorization: `Bearer ${registration_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...APP, ...HTTPS_LINKS, client_id, policy_uri: 'http://app.example.com/privacy' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_client_metadata');
    expect((await admin.call('GET', `/admin/v1/clients/${client_id}`)).body).toMatchObject({ policyUri: HTTPS_LINKS.policy_uri });
  });

  it.each(badLinkCases)('SEC-RG-10 the admin API refuses %s with a 400 naming the field, on create and update, changing nothing', async (_name, [, field], value) => {
    await admin.token();
    const before = await server.current.db.prisma.client.count();
    const created = await admin.call<{ error: string; error_description: string }>('POST', '/admin/v1/clients', { name: 'Links', redirectUris: ['https://app.example.com/cb'], [field]: value });
    expect(created.status).toBe(400);
    expect(created.body.error).toBe('invalid_request');
    expect(created.body.error_description).toContain(`${field}:`);
    expect(await server.current.db.prisma.client.count()).toBe(before);

    const target = await admin.call<{ client: { clientId: string } }>('POST', '/admin/v1/clients', { name: 'Links', redirectUris: ['https://app.example.com/cb'], [field]: 'https://app.example.com/ok' });
    const { clientId } = target.body.client;
    const updated = await admin.call<{ error_description: string }>('PATCH', `/admin/v1/clients/${clientId}`, { [field]: value });
    expect(updated.status).toBe(400);
    expect(updated.body.error_description).toContain(`${field}:`);
    expect((await admin.call<Record<string, unknown>>('GET', `/admin/v1/clients/${clientId}`)).body[field]).toBe('https://app.example.com/ok');
  });

  it.each([
    ['an http', ['create', '--name', 'Links', '--redirect-uri', 'https://app.example.com/cb', '--logo-uri', 'http://app.example.com/logo.png'], /--logo-uri: must use https/],
    ['a javascript:', ['create', '--name', 'Links', '--redirect-uri', 'https://app.example.com/cb', '--policy-uri', 'javascript:alert(1)'], /--policy-uri: must use https/],
    ['a relative', ['create', '--name', 'Links', '--redirect-uri', 'https://app.example.com/cb', '--tos-uri', '/terms'], /--tos-uri: must be an absolute https URL/],
    ['a credentialed', ['create', '--name', 'Links', '--redirect-uri', 'https://app.example.com/cb', '--client-uri', 'https://u:p@app.example.com/'], /--client-uri: must not contain credentials/],
  ])('SEC-RG-11 the CLI refuses %s link with exit 1, naming the option, and stores nothing', async (_name, args, message) => {
    const before = await server.current.db.prisma.client.count();
    const res = await idp(['clients', ...args], server.env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(message);
    expect(await server.current.db.prisma.client.count()).toBe(before);
  });

  it('SEC-RG-12 a link stored before links had to be https is never handed out: the provider’s client and the admin API leave it out, and the next update drops it', async () => {
    const created = await register({ ...APP, policy_uri: HTTPS_LINKS.policy_uri });
    const clientId = created.body.client_id!;
    const prisma = server.current.db.prisma;
    const row = await prisma.client.findUniqueOrThrow({ where: { id: clientId } });
    const legacy = { ...(JSON.parse(row.metadata) as object), logo_uri: 'http://app.example.com/logo.png', tos_uri: 'javascript:alert(1)' };
    await prisma.client.update({ where: { id: clientId }, data: { metadata: JSON.stringify(legacy) } });
    await server.current.services.configCache.changed();

    const client = await server.current.oidc.current.Client.find(clientId);
    expect(client).toBeDefined();
    expect([client?.logoUri, client?.tosUri, client?.policyUri]).toEqual([undefined, undefined, HTTPS_LINKS.policy_uri]);
    expect((await admin.call('GET', `/admin/v1/clients/${clientId}`)).body).toMatchObject({ logoUri: null, tosUri: null, policyUri: HTTPS_LINKS.policy_uri });
    expect((await admin.call('PATCH', `/admin/v1/clients/${clientId}`, { name: 'Cleaned' })).status).toBe(200);
    const stored = JSON.parse((await prisma.client.findUniqueOrThrow({ where: { id: clientId } })).metadata) as Record<string, unknown>;
    expect(stored).not.toHaveProperty('logo_uri');
    expect(stored).not.toHaveProperty('tos_uri');
    expect(stored.policy_uri).toBe(HTTPS_LINKS.policy_uri);
  });

  it('SEC-RG-06 an update through the registration endpoint keeps the API access an admin allowed, and cannot add any', async () => {
    await idp(['resources', 'create', '--identifier', 'https://rg06.example.com', '--scope', 'read', '--json'], server.env);
    const created = await register(APP);
    const { client_id, registration_client_uri, registration_access_token } = created.body;
    expect((await admin.call('PATCH', `/admin/v1/clients/${client_id}`, { apis: { 'https://rg06.example.com': ['read'] } })).status).toBe(200);
    const update = (rat: string, body: Record<string, unknown>) =>
      fetch(registration_client_uri!, { method: 'PUT', headers: { authorization: `Bearer ${rat}`, 'content-type': 'application/json' }, body: JSON.stringify({ ...APP, client_id, ...body }) });
    const refused = await update(registration_access_token!, { resource_scopes: { 'https://rg06.example.com': ['read'], 'urn:idp:admin': ['admin'] } });
    expect(refused.status).toBe(400);
    const renamed = await update(registration_access_token!, { client_name: 'Renamed' });
    expect(renamed.status).toBe(200);
    expect(await renamed.json()).not.toHaveProperty('resource_scopes');
    expect((await admin.call('GET', `/admin/v1/clients/${client_id}`)).body).toMatchObject({ name: 'Renamed', apis: { 'https://rg06.example.com': ['read'] }, admin: false });
  });

  it('SEC-RG-13 a private_key_jwt registration keeps its jwks: the registration reads them back, an assertion signed with the key authenticates, one signed with another key is refused; an update (RFC 7592) keeps them', async () => {
    const mine = await clientKeys('rg13-1');
    const created = await register({ ...APP, token_endpoint_auth_method: 'private_key_jwt', jwks: mine.jwks });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { client_id, registration_client_uri, registration_access_token } = created.body;
    expect(created.body).toMatchObject({ token_endpoint_auth_method: 'private_key_jwt', jwks: mine.jwks });
    expect(created.body).not.toHaveProperty('client_secret');

    const read = await fetch(registration_client_uri!, { headers: { authorization: `Bearer ${registration_access_token}` } });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ client_id, token_endpoint_auth_method: 'private_key_jwt', jwks: mine.jwks });
    const row = await server.current.db.prisma.client.findUniqueOrThrow({ where: { id: client_id! } });
    expect(row.secretHash).toBeNull();

    const ok = await assertionAuthenticates(client_id!, mine.privateKey, mine.kid);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    // The issuer as the audience is accepted too (oidcc-ensure-client-assertion-with-iss-aud-succeeds).
    expect((await assertionAuthenticates(client_id!, mine.privateKey, mine.kid, server.issuer)).status).toBe(200);

    const other = await clientKeys('rg13-1');
    const forged = await assertionAuthenticates(client_id!, other.privateKey, other.kid);
    expect(forged.status).toBe(401);
    expect(forged.body.error).toBe('invalid_client');

    const read2 = (await (await fetch(registration_client_uri!, { headers: { authorization: `Bearer ${registration_access_token}` } })).json()) as Record<string, unknown>;
    const rat = String(read2.registration_access_token ?? registration_access_token);
    const update = await fetch(registration_client_uri!, {
      method: 'PUT',
      headers: { authorization: `Bearer ${rat}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...APP, client_id, client_name: 'Renamed Signer', token_endpoint_auth_method: 'private_key_jwt', jwks: mine.jwks }),
    });
    expect(update.status).toBe(200);
    expect(await update.json()).toMatchObject({ client_name: 'Renamed Signer', token_endpoint_auth_method: 'private_key_jwt', jwks: mine.jwks });
    expect((await assertionAuthenticates(client_id!, mine.privateKey, mine.kid)).status).toBe(200);
  });

  it('SEC-RG-14 a client_secret_basic registration with jwks (to sign request objects) stays client_secret_basic: its secret authenticates, and it keeps its keys', async () => {
    const mine = await clientKeys('rg14-1');
    const created = await register({ ...APP, token_endpoint_auth_method: 'client_secret_basic', jwks: mine.jwks, request_object_signing_alg: 'RS256' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { client_id, client_secret, registration_client_uri, registration_access_token } = created.body;
    expect(created.body).toMatchObject({ token_endpoint_auth_method: 'client_secret_basic', jwks: mine.jwks });
    expect(client_secret).toBeTruthy();
    expect(await authenticates(client_id!, client_secret!)).toBe(true);
    expect(await authenticates(client_id!, `${client_secret}x`)).toBe(false);
    const read = await fetch(registration_client_uri!, { headers: { authorization: `Bearer ${registration_access_token}` } });
    expect(await read.json()).toMatchObject({ client_id, token_endpoint_auth_method: 'client_secret_basic', jwks: mine.jwks });
    // Its key is for request objects, not for authenticating: an assertion is not its method.
    expect((await assertionAuthenticates(client_id!, mine.privateKey, mine.kid)).status).toBe(401);
  });
});
