import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { idp, idpOk } from './helpers/cli.ts';
import { discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

// Custom claims (docs/tokens.md, "Custom claims"): a person's attributes, an API's claim
// mappings into its access tokens, a client's into its ID tokens and userinfo, and the
// scopes' claims in the ID token for a client that asks for them.

type User = { id: string; email: string; attributes: Record<string, unknown> };
type Client = { clientId: string; claimMappings: Record<string, string>; idTokenUserClaims: boolean };
type Api = { id: string; identifier: string; claimMappings: Record<string, string> };

const PASSWORD = 'a long enough password';
const API = 'https://claims.example.com';
const ATTRIBUTES = { department: 'Sales', employee: { level: 3, tags: ['emea'] } };

let server: TestServer;
let admin: AdminApi;

beforeAll(async () => {
  server = await startServer();
  admin = await adminApi(server);
});
afterAll(async () => {
  await server?.close();
});

const cli = (args: string[]) => idpOk(args, server.env);

async function person(attributes?: Record<string, unknown>, name: string | null = 'Claire Mapping'): Promise<User & { password: string }> {
  const email = `claims-${Math.random().toString(36).slice(2)}@example.com`;
  const created = await admin.call<User>('POST', '/admin/v1/users', { email, password: PASSWORD, ...(name ? { name } : {}) });
  expect(created.status).toBe(201);
  if (attributes) expect((await admin.call('PATCH', `/admin/v1/users/${created.body.id}`, { attributes })).status).toBe(200);
  return { ...created.body, password: PASSWORD };
}

async function client(body: Record<string, unknown>): Promise<{ clientId: string; clientSecret: string }> {
  const res = await admin.call<{ client: Client; clientSecret: string }>('POST', '/admin/v1/clients', {
    name: 'Claims App',
    redirectUris: [REDIRECT_URI],
    grantTypes: ['authorization_code', 'refresh_token'],
    scope: 'openid profile email offline_access',
    ...body,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { clientId: res.body.client.clientId, clientSecret: res.body.clientSecret };
}

/** A sign-in through our pages with code + PKCE, as the app would, in a fresh browser. */
async function signIn(app: { clientId: string; clientSecret: string }, who: { email: string; password: string }, opts: { scope?: string; resource?: string } = {}) {
  const config = await discover(server.issuer, app.clientId, app.clientSecret);
  const { tokens } = await loginAndExchange(new UserAgent(), config, { scope: opts.scope ?? 'openid profile email', ...(opts.resource ? { resource: opts.resource } : {}), login: { email: who.email, password: who.password } });
  return { config, tokens, idToken: tokens.claims()! as Record<string, unknown> };
}

describe('custom attributes of a person', () => {
  it('are set, replaced and read through the admin API (the user, and the list)', async () => {
    const user = await person();
    expect(user.attributes).toEqual({});
    const set = await admin.call<User>('PATCH', `/admin/v1/users/${user.id}`, { attributes: ATTRIBUTES });
    expect(set.status).toBe(200);
    expect(set.body.attributes).toEqual(ATTRIBUTES);
    expect((await admin.call<User>('GET', `/admin/v1/users/${user.id}`)).body.attributes).toEqual(ATTRIBUTES);
    const list = await admin.call<{ items: User[] }>('GET', `/admin/v1/users?q=${encodeURIComponent(user.email)}`);
    expect(list.body.items.map((u) => u.attributes)).toEqual([ATTRIBUTES]);
    // Other fields leave them alone; new attributes replace the whole object.
    expect((await admin.call<User>('PATCH', `/admin/v1/users/${user.id}`, { name: 'Renamed' })).body.attributes).toEqual(ATTRIBUTES);
    expect((await admin.call<User>('PATCH', `/admin/v1/users/${user.id}`, { attributes: { site: 'Berlin' } })).body.attributes).toEqual({ site: 'Berlin' });
    expect((await admin.call<User>('PATCH', `/admin/v1/users/${user.id}`, { attributes: {} })).body.attributes).toEqual({});
  });

  it.each([
    ['an array', [1, 2], /body\.attributes: must be a JSON object/],
    ['a string', 'Sales', /body\.attributes: must be a JSON object/],
    ['null', null, /body\.attributes: must be a JSON object/],
    ['more than 4096 bytes', { notes: 'x'.repeat(4100) }, /attributes: must be at most 4096 bytes as JSON \(this is 4112\)/],
    ['nested more than 5 levels', { a: { b: { c: { d: { e: { f: 1 } } } } } }, /attributes: must nest at most 5 levels deep/],
  ])('are refused with a 400 naming the problem when they are %s', async (_what, attributes, message) => {
    const user = await person(ATTRIBUTES);
    const res = await admin.call<{ error: string; error_description: string }>('PATCH', `/admin/v1/users/${user.id}`, { attributes });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
    expect(res.body.error_description).toMatch(message);
    expect((await admin.call<User>('GET', `/admin/v1/users/${user.id}`)).body.attributes).toEqual(ATTRIBUTES);
  });

  it('are set with `idp users update --attributes` and shown by `idp users show`; anything but a JSON object is an error', async () => {
    const user = await person();
    const updated = JSON.parse(await cli(['users', 'update', user.email, '--attributes', JSON.stringify(ATTRIBUTES), '--json'])) as User;
    expect(updated.attributes).toEqual(ATTRIBUTES);
    expect((JSON.parse(await cli(['users', 'show', user.id, '--json'])) as User).attributes).toEqual(ATTRIBUTES);
    expect(await cli(['users', 'show', user.email])).toMatch(/attributes:\n {2}department: Sales\n {2}employee:\n {4}level: 3\n {4}tags: emea/);

    for (const [value, message] of [
      ['{"department": ', /--attributes must be a JSON object, such as '\{"department": "Sales"\}' \(this is not valid JSON\)/],
      ['["Sales"]', /--attributes: must be a JSON object/],
      [JSON.stringify({ notes: 'x'.repeat(5000) }), /--attributes: must be at most 4096 bytes as JSON/],
    ] as const) {
      const res = await idp(['users', 'update', user.email, '--attributes', value], server.env);
      expect(res.code, value.slice(0, 40)).toBe(1);
      expect(res.stderr).toMatch(message);
    }
    expect((JSON.parse(await cli(['users', 'show', user.id, '--json'])) as User).attributes).toEqual(ATTRIBUTES);
  }, 30_000);
});

describe("an API's claim mappings, in a person's access tokens", () => {
  let api: Api;
  let app: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    const res = await admin.call<Api>('POST', '/admin/v1/resources', {
      identifier: API,
      scopes: ['read'],
      claimMappings: {
        department: 'attributes.department',
        'https://example.com/level': 'attributes.employee.level',
        first_tag: 'attributes.employee.tags.0',
        profile_attributes: 'attributes',
        cost_center: 'attributes.cost_center',
        not_inherited: 'attributes.constructor',
        groups: 'roles',
        mail: 'email',
        mail_verified: 'email_verified',
        display_name: 'name',
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    api = res.body;
    app = await client({ apis: { [API]: ['read'] } });
    await cli(['roles', 'create', '--name', 'claims-sales', '--permission', `${API} read`]);
  });

  it('carries the mapped claims, the roles and the attributes (a missing attribute gives no claim) after a code flow', async () => {
    const who = await person(ATTRIBUTES);
    expect((await admin.call('PUT', `/admin/v1/users/${who.id}/roles/claims-sales`)).status).toBe(200);
    const { tokens, idToken } = await signIn(app, who, { scope: 'openid profile email read', resource: API });
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({
      aud: API,
      sub: who.id,
      scope: 'read',
      department: 'Sales',
      'https://example.com/level': 3,
      first_tag: 'emea',
      profile_attributes: ATTRIBUTES,
      groups: ['claims-sales'],
      mail: who.email,
      mail_verified: false,
      display_name: 'Claire Mapping',
    });
    expect(claims).not.toHaveProperty('cost_center');
    expect(claims).not.toHaveProperty('not_inherited');
    // An API's mappings are for its access tokens, not for the client's ID token.
    expect(idToken).not.toHaveProperty('department');
  });

  it('follows the person: new attributes show in the next token; none and no name give no claims', async () => {
    const who = await person(undefined, null);
    let claims = decodeJwt((await signIn(app, who, { scope: 'openid read', resource: API })).tokens.access_token);
    expect(claims).toMatchObject({ profile_attributes: {}, groups: [], mail: who.email });
    for (const absent of ['department', 'https://example.com/level', 'first_tag', 'display_name']) expect(claims).not.toHaveProperty(absent);

    // (Through the admin API: the server forgets its cached copy of the person at once. A change
    // the CLI makes reaches a running server within CONFIG_REFRESH_SECONDS.)
    expect((await admin.call('PATCH', `/admin/v1/users/${who.id}`, { attributes: { department: 'Support' } })).status).toBe(200);
    claims = decodeJwt((await signIn(app, who, { scope: 'openid read', resource: API })).tokens.access_token);
    expect(claims).toMatchObject({ department: 'Support', profile_attributes: { department: 'Support' } });
  });

  it("never adds them to a machine client's own token (client_credentials)", async () => {
    const machine = await client({ redirectUris: [], grantTypes: ['client_credentials'], scope: '', apis: { [API]: ['read'] } });
    const config = await discover(server.issuer, machine.clientId, machine.clientSecret);
    const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'read', resource: API });
    const claims = decodeJwt(access_token);
    expect(claims).toMatchObject({ aud: API, client_id: machine.clientId, scope: 'read' });
    for (const mapped of Object.keys(api.claimMappings)) expect(claims).not.toHaveProperty(mapped);
  });

  it('are changed and removed through the admin API and the CLI, and shown by both', async () => {
    const changed = await admin.call<Api>('PATCH', `/admin/v1/resources/${api.id}`, { claimMappings: { department: 'attributes.department' } });
    expect(changed.status).toBe(200);
    expect(changed.body.claimMappings).toEqual({ department: 'attributes.department' });
    const viaCli = JSON.parse(await cli(['resources', 'update', API, '--claim', 'team=attributes.team', '--claim', 'groups=roles', '--json'])) as Api;
    expect(viaCli.claimMappings).toEqual({ team: 'attributes.team', groups: 'roles' });
    expect((JSON.parse(await cli(['resources', 'show', API, '--json'])) as Api).claimMappings).toEqual({ team: 'attributes.team', groups: 'roles' });
    expect((JSON.parse(await cli(['resources', 'update', API, '--no-claim', '--json'])) as Api).claimMappings).toEqual({});
    const created = JSON.parse(await cli(['resources', 'create', '--identifier', 'https://claims-cli.example.com', '--scope', 'read', '--claim', 'department=attributes.department', '--json'])) as Api;
    expect(created.claimMappings).toEqual({ department: 'attributes.department' });

    const bad = await idp(['resources', 'update', API, '--claim', 'department'], server.env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--claim expects NAME=SOURCE/);
    const unknown = await idp(['resources', 'update', API, '--claim', 'department=attributes..x'], server.env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/--claim: must be email, email_verified, name, roles, attributes, or attributes\.<key>/);
  }, 30_000);
});

describe("a client's claim mappings, in its ID tokens and at userinfo", () => {
  it('adds the mapped claims to the ID token and the userinfo response, whatever the scopes', async () => {
    const app = await client({ claimMappings: { department: 'attributes.department', team_roles: 'roles', level: 'attributes.employee.level', cost_center: 'attributes.cost_center' } });
    const who = await person(ATTRIBUTES);
    const { config, tokens, idToken } = await signIn(app, who, { scope: 'openid' });
    expect(idToken).toMatchObject({ sub: who.id, department: 'Sales', team_roles: [], level: 3 });
    expect(idToken).not.toHaveProperty('cost_center');
    expect(idToken).not.toHaveProperty('email');
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, who.id);
    expect(userinfo).toEqual({ sub: who.id, department: 'Sales', team_roles: [], level: 3 });

    // With the email scope, userinfo has its claims and the mapped ones.
    const more = await signIn(app, who, { scope: 'openid email' });
    expect(await oidc.fetchUserInfo(more.config, more.tokens.access_token, who.id)).toEqual({ sub: who.id, email: who.email, email_verified: false, department: 'Sales', team_roles: [], level: 3 });
  });

  it('cannot be registered (dynamic registration), only set by an admin, on a registered client too', async () => {
    const iat = (await idp(['clients', 'initial-access-token', 'create', '--json'], server.env)).json<{ initialAccessToken: string }>().initialAccessToken;
    const register = (metadata: Record<string, unknown>) =>
      fetch(new URL('/register', server.issuer), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` }, body: JSON.stringify(metadata) });
    const metadata = { client_name: 'Registered App', redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], scope: 'openid profile' };
    const refused = await register({ ...metadata, claim_mappings: { department: 'attributes.department' } });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: 'invalid_client_metadata', error_description: 'claim_mappings cannot be registered: only an admin maps claims into a client’s tokens' });

    const registered = (await (await register(metadata)).json()) as { client_id: string; client_secret: string; registration_access_token: string };
    const patched = await admin.call<Client>('PATCH', `/admin/v1/clients/${registered.client_id}`, { claimMappings: { department: 'attributes.department' } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body.claimMappings).toEqual({ department: 'attributes.department' });

    const who = await person(ATTRIBUTES);
    const { config, tokens, idToken } = await signIn({ clientId: registered.client_id, clientSecret: registered.client_secret }, who, { scope: 'openid profile' });
    expect(idToken).toMatchObject({ department: 'Sales' });
    expect(await oidc.fetchUserInfo(config, tokens.access_token, who.id)).toMatchObject({ sub: who.id, name: 'Claire Mapping', department: 'Sales' });

    // The registrant's own update (RFC 7592) keeps what the admin mapped.
    const read = (await (await fetch(new URL(`/register/${registered.client_id}`, server.issuer), { headers: { authorization: `Bearer ${registered.registration_access_token}` } })).json()) as Record<string, unknown>;
    const { claim_mappings: _mapped, client_secret_expires_at: _expires, registration_client_uri: _uri, registration_access_token: _token, client_id_issued_at: _issued, ...update } = read;
    const updated = await fetch(new URL(`/register/${registered.client_id}`, server.issuer), {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${registered.registration_access_token}` },
      body: JSON.stringify({ ...update, client_name: 'Registered App, renamed' }),
    });
    expect(updated.status, await updated.clone().text()).toBe(200);
    expect((await admin.call<Client>('GET', `/admin/v1/clients/${registered.client_id}`)).body.claimMappings).toEqual({ department: 'attributes.department' });
  });

  it('are set, shown and removed through the CLI', async () => {
    const created = JSON.parse(
      await cli(['clients', 'create', '--name', 'Claims CLI App', '--redirect-uri', REDIRECT_URI, '--claim', 'department=attributes.department', '--id-token-user-claims', 'true', '--json']),
    ) as { client: Client };
    expect(created.client).toMatchObject({ claimMappings: { department: 'attributes.department' }, idTokenUserClaims: true });
    const { clientId } = created.client;
    expect(JSON.parse(await cli(['clients', 'update', clientId, '--claim', 'groups=roles', '--json'])) as Client).toMatchObject({ claimMappings: { groups: 'roles' }, idTokenUserClaims: true });
    expect(JSON.parse(await cli(['clients', 'update', clientId, '--no-claim', '--id-token-user-claims', 'false', '--json'])) as Client).toMatchObject({ claimMappings: {}, idTokenUserClaims: false });
    expect(JSON.parse(await cli(['clients', 'show', clientId, '--json'])) as Client).toMatchObject({ claimMappings: {}, idTokenUserClaims: false });
    const bad = await idp(['clients', 'update', clientId, '--id-token-user-claims', 'yes'], server.env);
    expect(bad.stderr).toMatch(/--id-token-user-claims must be true or false/);
  }, 30_000);
});

describe('the claims of the granted scopes in the ID token (idTokenUserClaims)', () => {
  const SCOPE_CLAIMS = ['email', 'email_verified', 'name', 'updated_at'];
  const PROTOCOL_CLAIMS = ['acr', 'amr', 'aud', 'exp', 'iat', 'iss', 'nonce', 'sub'];

  it('a client configured for it gets email, email_verified, name and updated_at in its ID tokens, at sign-in and at refresh', async () => {
    const app = await client({ idTokenUserClaims: true });
    const who = await person();
    const { config, tokens, idToken } = await signIn(app, who, { scope: 'openid profile email offline_access' });
    expect(Object.keys(idToken).sort()).toEqual([...PROTOCOL_CLAIMS, ...SCOPE_CLAIMS].sort());
    expect(idToken).toMatchObject({ sub: who.id, email: who.email, email_verified: false, name: 'Claire Mapping', updated_at: expect.any(Number) });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.claims()).toMatchObject({ sub: who.id, email: who.email, name: 'Claire Mapping' });

    // Only the granted scopes' claims: without profile, no name.
    const emailOnly = await signIn(app, who, { scope: 'openid email' });
    expect(emailOnly.idToken).toMatchObject({ email: who.email, email_verified: false });
    expect(emailOnly.idToken).not.toHaveProperty('name');
    expect(emailOnly.idToken).not.toHaveProperty('updated_at');
  });

  it('any other client keeps them out of the ID token, as before, unless its access token is for an API', async () => {
    const plain = await client({});
    const who = await person();
    const { config, tokens, idToken } = await signIn(plain, who, { scope: 'openid profile email offline_access' });
    expect(Object.keys(idToken).sort()).toEqual(PROTOCOL_CLAIMS);
    expect(Object.keys((await oidc.refreshTokenGrant(config, tokens.refresh_token!)).claims()!).filter((c) => SCOPE_CLAIMS.includes(c))).toEqual([]);
    // userinfo answers with them.
    expect(await oidc.fetchUserInfo(config, tokens.access_token, who.id)).toMatchObject({ email: who.email, name: 'Claire Mapping' });

    // With an access token for an API (which userinfo refuses), the ID token carries them, as it always did.
    const withApi = await client({ apis: { [API]: ['read'] } });
    const forApi = await signIn(withApi, who, { scope: 'openid profile email read', resource: API });
    expect(forApi.idToken).toMatchObject({ email: who.email, email_verified: false, name: 'Claire Mapping' });
  });
});
