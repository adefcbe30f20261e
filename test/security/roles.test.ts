// Roles and the admin API for people: ASVS V8.2.1, V8.2.2 (function- and data-level authorization),
// V8.3.1 (authorization enforced at a trusted service layer, changes applied at once); OWASP
// Authorization Cheat Sheet (deny by default, least privilege).
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { createdClient, createPerson, idp, idpOk } from '../helpers/cli.ts';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { UserAgent } from '../helpers/user-agent.ts';

const API = 'https://orders.example.com';
const PASSWORD = 'a long enough password';

let server: TestServer;
let admin: AdminApi;

beforeAll(async () => {
  server = await startServer();
  admin = await adminApi(server);
  await cli(['resources', 'create', '--identifier', API, '--scope', 'orders:read', '--scope', 'orders:write', '--enforce-roles', '--roles-claim']);
  await cli(['roles', 'create', '--name', 'reader', '--permission', `${API} orders:read`]);
});
afterAll(async () => {
  await server?.close();
});

const cli = (args: string[]) => idpOk(args, server.env);
const person = (roles: string[] = []) => createPerson(server.env, PASSWORD, roles);

/** A person's admin API token, from signing in to the built-in console client (public, PKCE, no consent page). */
async function consoleToken(user: { email: string }) {
  const config = await discover(server.issuer, 'idp-console');
  const { tokens } = await loginAndExchange(new UserAgent(), config, {
    scope: 'openid admin admin:read',
    resource: 'urn:idp:admin',
    login: { email: user.email, password: PASSWORD },
    consent: false,
    redirectUri: `${server.issuer}/console/callback`,
  });
  return tokens.access_token;
}

const scopesOf = (token: string) => String(decodeJwt(token).scope ?? '').split(' ');

/** A machine client (client_credentials only) allowed these APIs, as an operator registers one. */
async function machineClient(apis: string[]) {
  const created = createdClient(await idp(['clients', 'create', '--name', 'Job', '--grant-type', 'client_credentials', '--scope', '', ...apis.flatMap((a) => ['--api', a]), '--json'], server.env));
  return { ...created, config: await discover(server.issuer, created.clientId, created.clientSecret) };
}

describe('an API that enforces roles', () => {
  it('SEC-RB-01 a person gets only the scopes their roles grant, checked again at every refresh: a role given adds them, a role taken removes them', async () => {
    const app = createdClient(
      await idp(
        ['clients', 'create', '--name', 'Shop', '--redirect-uri', REDIRECT_URI, '--grant-type', 'authorization_code', '--grant-type', 'refresh_token', '--scope', 'openid offline_access', '--api', `${API} orders:read orders:write`, '--json'],
        server.env,
      ),
    );
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const user = await person();

    const { tokens } = await loginAndExchange(new UserAgent(), config, { scope: 'openid offline_access orders:read orders:write', resource: API, login: { email: user.email, password: PASSWORD } });
    expect(decodeJwt(tokens.access_token).aud).toBe(API);
    expect(scopesOf(tokens.access_token)).not.toContain('orders:read');
    expect(scopesOf(tokens.access_token)).not.toContain('orders:write');
    expect(decodeJwt(tokens.access_token).roles).toEqual([]);

    await cli(['users', 'roles', 'add', user.email, 'reader']);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, { resource: API });
    expect(scopesOf(refreshed.access_token)).toContain('orders:read');
    // The role grants read only; what the app may have is no more than the role's.
    expect(scopesOf(refreshed.access_token)).not.toContain('orders:write');
    expect(decodeJwt(refreshed.access_token).roles).toEqual(['reader']);

    await cli(['users', 'roles', 'remove', user.email, 'reader']);
    const again = await oidc.refreshTokenGrant(config, refreshed.refresh_token!, { resource: API });
    expect(scopesOf(again.access_token)).not.toContain('orders:read');
  });

  it('SEC-RB-08 a machine client gets, for an API that enforces roles, only the scopes its roles grant; a role given adds them at the next token, taken removes them; the roles claim lists its roles', async () => {
    const STOCK = 'https://stock.example.com';
    await cli(['resources', 'create', '--identifier', STOCK, '--scope', 'stock:read']);
    await cli(['roles', 'create', '--name', 'packer', '--permission', `${API} orders:write`, '--permission', 'https://elsewhere.example.com orders:read']);
    const job = await machineClient([`${API} orders:read orders:write`, `${STOCK} stock:read`]);
    const token = async (resource: string, scope: string) => (await oidc.clientCredentialsGrant(job.config, { scope, resource })).access_token;

    const none = await token(API, 'orders:read orders:write');
    expect(decodeJwt(none)).toMatchObject({ aud: API, client_id: job.clientId, roles: [] });
    expect(scopesOf(none)).not.toContain('orders:read');
    expect(scopesOf(none)).not.toContain('orders:write');

    await cli(['clients', 'roles', 'add', job.clientId, 'reader']);
    const read = await token(API, 'orders:read orders:write');
    expect(scopesOf(read)).toEqual(['orders:read']);
    expect(decodeJwt(read).roles).toEqual(['reader']);

    // Roles add up, and grant only on the API they name; the claim lists them all, sorted.
    await cli(['clients', 'roles', 'add', job.clientId, 'packer']);
    const both = await token(API, 'orders:read orders:write');
    expect(scopesOf(both).sort()).toEqual(['orders:read', 'orders:write']);
    expect(decodeJwt(both).roles).toEqual(['packer', 'reader']);

    await cli(['clients', 'roles', 'remove', job.clientId, 'reader']);
    const taken = await token(API, 'orders:read orders:write');
    expect(scopesOf(taken)).toEqual(['orders:write']);
    expect(decodeJwt(taken).roles).toEqual(['packer']);

    // An API that does not enforce roles issues what the client was registered for, and no roles claim.
    const stock = await token(STOCK, 'stock:read');
    expect(scopesOf(stock)).toEqual(['stock:read']);
    expect(decodeJwt(stock)).not.toHaveProperty('roles');
  });
});

describe('the admin API for people', () => {
  it('SEC-RB-02 an idp-admin changes things through the console and is audited as the person', async () => {
    const boss = await person(['idp-admin']);
    const created = await admin.call<{ id: string }>('POST', '/admin/v1/roles', { name: 'made-by-a-person' }, await consoleToken(boss));
    expect(created.status).toBe(201);
    const audit = await admin.call<{ items: { action: string; actor: string; target: string }[] }>('GET', '/admin/v1/audit?limit=200');
    expect(audit.body.items.find((e) => e.target === created.body.id && e.action === 'role.created')?.actor).toBe(`user:${boss.id}`);
  });

  it('SEC-RB-03 an idp-viewer reads everything and every write answers 403 insufficient_scope', async () => {
    const viewer = await person(['idp-viewer']);
    const token = await consoleToken(viewer);
    expect((await admin.call('GET', '/admin/v1/clients', undefined, token)).status).toBe(200);
    for (const [method, path, body] of [
      ['POST', '/admin/v1/roles', { name: 'viewer-made' }],
      ['POST', '/admin/v1/clients', { name: 'x', redirectUris: ['https://app.example/cb'] }],
      ['PUT', `/admin/v1/users/${viewer.id}/roles/idp-admin`, undefined],
    ] as const) {
      const res = await admin.call<{ error: string }>(method, path, body, token);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error).toBe('insufficient_scope');
    }
    expect((await admin.call<{ items: unknown[] }>('GET', `/admin/v1/users/${viewer.id}/roles`)).body.items).toHaveLength(1);
  });

  it('SEC-RB-04 a role taken away, or the account disabled, ends admin access at once, before the token expires', async () => {
    const viewer = await person(['idp-viewer']);
    const viewerToken = await consoleToken(viewer);
    expect((await admin.call('GET', '/admin/v1/clients', undefined, viewerToken)).status).toBe(200);
    await cli(['users', 'roles', 'remove', viewer.email, 'idp-viewer']);
    expect((await admin.call('GET', '/admin/v1/clients', undefined, viewerToken)).status).toBe(403);

    const boss = await person(['idp-admin']);
    const bossToken = await consoleToken(boss);
    expect((await admin.call('POST', `/admin/v1/users/${boss.id}/disable`)).status).toBe(200);
    expect((await admin.call('GET', '/admin/v1/clients', undefined, bossToken)).status).toBe(401);
  });

  it('SEC-RB-05 a person without an admin role gets a token without admin scopes and no admin data', async () => {
    const nobody = await person();
    const token = await consoleToken(nobody);
    expect(scopesOf(token)).not.toContain('admin');
    expect(scopesOf(token)).not.toContain('admin:read');
    const res = await admin.call<{ error: string }>('GET', '/admin/v1/users', undefined, token);
    expect(res.status).toBe(403);
    expect(res.body).not.toHaveProperty('items');
  });

  it('SEC-RB-06 only the console reaches the admin API for people: another client cannot ask for it, and the console client cannot be changed, disabled or deleted', async () => {
    const boss = await person(['idp-admin']);
    const app = createdClient(await idp(['clients', 'create', '--name', 'Other', '--redirect-uri', REDIRECT_URI, '--grant-type', 'authorization_code', '--scope', 'openid', '--json'], server.env));
    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const { callbackUrl } = await authorize(new UserAgent(), config, { scope: 'openid admin', resource: 'urn:idp:admin' });
    expect(callbackUrl.searchParams.get('error')).toBe('invalid_target');
    // Nor does the person's own sign-in change that: a token of theirs for it is refused there.
    const { tokens } = await loginAndExchange(new UserAgent(), config, { scope: 'openid', login: { email: boss.email, password: PASSWORD } });
    expect((await admin.call('GET', '/admin/v1/clients', undefined, tokens.access_token)).status).toBe(401);

    const shown = JSON.parse(await cli(['clients', 'show', 'idp-console', '--json'])) as { public: boolean; firstParty: boolean; admin: boolean; redirectUris: string[] };
    expect(shown).toMatchObject({ public: true, firstParty: true, admin: false, redirectUris: [`${server.issuer}/console/callback`] });
    const del = await idp(['clients', 'delete', 'idp-console'], server.env);
    expect(del.code).not.toBe(0);
    expect(del.stderr).toMatch(/built-in/);
    expect((await admin.call('POST', '/admin/v1/clients/idp-console/disable')).status).toBe(400);
    expect((await admin.call('PATCH', '/admin/v1/clients/idp-console', { redirectUris: ['https://evil.example/cb'] })).status).toBe(400);
  });

  it('SEC-RB-07 built-in roles keep their permissions and cannot be deleted; a person cannot be given a role that does not exist', async () => {
    expect((await admin.call('DELETE', '/admin/v1/roles/idp-admin')).status).toBe(400);
    expect((await admin.call('PATCH', '/admin/v1/roles/idp-viewer', { permissions: { 'urn:idp:admin': ['admin'] } })).status).toBe(400);
    expect((await admin.call('PATCH', '/admin/v1/roles/idp-viewer', { name: 'renamed' })).status).toBe(400);
    const user = await person();
    expect((await admin.call('PUT', `/admin/v1/users/${user.id}/roles/no-such-role`)).status).toBe(404);
  });

  it('SEC-RB-09 roles cannot be given to a built-in client or an admin client, nor grant a client the admin API', async () => {
    for (const builtIn of ['idp-console', 'idp-account']) {
      const res = await admin.call<{ error_description: string }>('PUT', `/admin/v1/clients/${builtIn}/roles/idp-admin`);
      expect(res.status, builtIn).toBe(400);
      expect(res.body.error_description).toMatch(/built-in client/);
    }
    const viaCli = await idp(['clients', 'roles', 'add', 'idp-console', 'reader'], server.env);
    expect(viaCli.code).not.toBe(0);
    expect(viaCli.stderr).toMatch(/built-in client/);

    // A machine client holding idp-admin still cannot ask for the admin API, nor use it.
    const job = await machineClient([`${API} orders:read`]);
    await cli(['clients', 'roles', 'add', job.clientId, 'idp-admin']);
    await expect(oidc.clientCredentialsGrant(job.config, { scope: 'admin admin:read', resource: 'urn:idp:admin' })).rejects.toMatchObject({ error: 'invalid_target' });
    const plain = await oidc.clientCredentialsGrant(job.config, { scope: 'orders:read admin', resource: API });
    expect(decodeJwt(plain.access_token).aud).toBe(API);
    expect((await admin.call('GET', '/admin/v1/clients', undefined, plain.access_token)).status).toBe(401);

    // An admin client takes no role, and its admin API access is as it was: roles neither give nor limit it.
    const res = await admin.call<{ error_description: string }>('PUT', `/admin/v1/clients/${admin.clientId}/roles/idp-viewer`);
    expect(res.status).toBe(400);
    expect(res.body.error_description).toMatch(/admin client/);
    const ops = await oidc.clientCredentialsGrant(await discover(server.issuer, admin.clientId, admin.clientSecret), { scope: 'admin admin:read', resource: 'urn:idp:admin' });
    expect(scopesOf(ops.access_token).sort()).toEqual(['admin', 'admin:read']);
    expect((await admin.call('POST', '/admin/v1/roles', { name: 'made-by-ops' }, ops.access_token)).status).toBe(201);

    expect((await admin.call('PUT', `/admin/v1/clients/${job.clientId}/roles/no-such-role`)).status).toBe(404);
    expect((await admin.call('PUT', '/admin/v1/clients/no-such-client/roles/reader')).status).toBe(404);
  });
});
