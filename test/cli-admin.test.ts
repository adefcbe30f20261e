import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi } from './helpers/admin.ts';
import { idp } from './helpers/cli.ts';
import { seed } from './helpers/seed.ts';
import { discover, loginAndExchange, REDIRECT_URI } from './helpers/flow.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { UserAgent } from './helpers/user-agent.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.close());

/** Runs `idp … --json` against the running server's database and returns the parsed object. */
async function run<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  const res = await idp([...args, '--json'], server.env);
  if (res.code !== 0) throw new Error(`idp ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
  return res.json<T>();
}

async function fails(args: string[], message: RegExp, code = 1) {
  const res = await idp(args, server.env);
  expect(res.code, res.stderr).toBe(code);
  expect(res.stderr).toMatch(message);
}

describe('the CLI has the admin API’s powers', () => {
  it('manages a client from creation to deletion, with the server enforcing each change', async () => {
    const { client: { clientId: client_id }, clientSecret: client_secret } = await run<{ client: { clientId: string }; clientSecret: string }>(
      'clients', 'create', '--name', 'CLI App', '--redirect-uri', REDIRECT_URI, '--scope', 'openid offline_access',
    );
    expect((await run<{ total: number }>('clients', 'list', '--name', 'CLI App')).total).toBe(1);
    expect(await run('clients', 'show', client_id)).toMatchObject({ clientId: client_id, name: 'CLI App', disabled: false });
    const shown = await idp(['clients', 'show', client_id], server.env);
    expect(shown.stdout).toContain('name: CLI App');
    expect(shown.stdout).not.toContain(client_secret);

    expect(await run('clients', 'update', client_id, '--name', 'CLI App 2', '--redirect-uri', REDIRECT_URI, '--redirect-uri', 'https://app.example.com/cb')).toMatchObject({
      name: 'CLI App 2',
      redirectUris: [REDIRECT_URI, 'https://app.example.com/cb'],
    });
    await fails(['clients', 'update', client_id, '--redirect-uri', 'http://evil.example.com/cb'], /must use https/);
    await fails(['clients', 'update', client_id], /nothing to update/);

    const user = await seed(server.env, { redirectUri: REDIRECT_URI });
    const config = await discover(server.issuer, client_id, client_secret);
    const { tokens } = await loginAndExchange(new UserAgent(), config, { login: user, scope: 'openid offline_access' });

    // The CLI is another process: the server sees its changes within CONFIG_REFRESH_SECONDS.
    const introspectionStatus = (secret: string) =>
      fetch(new URL('/token/introspection', server.issuer), {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${client_id}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token=x',
      }).then((r) => r.status);
    expect(await run('clients', 'disable', client_id)).toMatchObject({ disabled: true });
    await expect.poll(() => introspectionStatus(client_secret), { timeout: 5000 }).toBe(401);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_client' });
    expect(await run('clients', 'enable', client_id)).toMatchObject({ disabled: false });
    await expect.poll(() => introspectionStatus(client_secret), { timeout: 5000 }).toBe(200);

    const rotated = await run<{ client: { previousSecretExpiresAt: string | null }; clientSecret: string }>('clients', 'rotate-secret', client_id, '--overlap', '600');
    expect(rotated.client.previousSecretExpiresAt).toBeTruthy();
    await expect.poll(() => introspectionStatus(rotated.clientSecret), { timeout: 5000 }).toBe(200);
    for (const secret of [client_secret, rotated.clientSecret]) {
      const c = await discover(server.issuer, client_id, secret);
      await expect(oidc.tokenIntrospection(c, 'x')).resolves.toMatchObject({ active: false });
    }
    await fails(['clients', 'rotate-secret', client_id, '--overlap', 'soon'], /--overlap must be a whole number/);

    expect(await run('clients', 'delete', client_id)).toEqual({ deleted: client_id });
    await fails(['clients', 'show', client_id], /no client with id/);
  }, 90_000); // some twenty CLI processes, one after the other

  it('creates an admin client whose token the admin API accepts', async () => {
    const { client: { clientId: client_id }, clientSecret: client_secret } = await run<{ client: { clientId: string }; clientSecret: string }>('clients', 'create', '--name', 'ops', '--admin');
    const config = await discover(server.issuer, client_id, client_secret);
    const { access_token } = await oidc.clientCredentialsGrant(config, { scope: 'admin' });
    const res = await fetch(new URL('/admin/v1/clients', server.issuer), { headers: { authorization: `Bearer ${access_token}` } });
    expect(res.status).toBe(200);
    await fails(['clients', 'create', '--name', 'x', '--admin', '--public'], /admin client is confidential/);
  });

  it('manages an API', async () => {
    const api = await run<{ id: string }>('resources', 'create', '--identifier', 'https://cli-api.example.com', '--scope', 'a b');
    expect((await run<{ items: { identifier: string }[] }>('resources', 'list')).items.map((r) => r.identifier)).toContain('https://cli-api.example.com');
    expect(await run('resources', 'show', api.id)).toMatchObject({ identifier: 'https://cli-api.example.com', scopes: ['a', 'b'] });
    expect(await run('resources', 'update', api.id, '--scope', 'a b c', '--access-token-ttl', '120', '--signing-alg', 'EdDSA')).toMatchObject({
      scopes: ['a', 'b', 'c'],
      accessTokenTtl: 120,
      signingAlg: 'EdDSA',
    });
    await fails(['resources', 'update', api.id, '--access-token-ttl', '10'], /at least 30 seconds/);
    await fails(['resources', 'update', api.id, '--scope', 'openid'], /OpenID Connect scopes/);
    expect(await run('resources', 'delete', api.id)).toEqual({ deleted: api.id });
    await fails(['resources', 'show', api.id], /no API with id/);
  }, 60_000); // nine CLI processes, one after the other

  it('describes an API’s scopes: repeatable --scope, lists of names or one described scope each', async () => {
    const created = await idp(
      ['resources', 'create', '--identifier', 'https://cli-docs.example.com', '--name', 'Docs', '--scope', 'docs:read:Read your documents', '--scope', 'write share', '--scope', 'read: Documents'],
      server.env,
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('docs:read  Read your documents');
    expect(created.stdout).toContain('read  Documents');
    const api = await run<{ id: string }>('resources', 'show', 'https://cli-docs.example.com');
    expect(api).toMatchObject({ scopes: ['docs:read', 'write', 'share', 'read'], scopeDescriptions: { 'docs:read': 'Read your documents', read: 'Documents' } });
    expect(Object.keys((api as unknown as { scopeDescriptions: object }).scopeDescriptions)).toEqual(['docs:read', 'read']);
    expect((await idp(['resources', 'show', api.id], server.env)).stdout).toContain('docs:read: Read your documents');

    // Names with colons and no description: separate --scope options.
    expect(await run('resources', 'update', api.id, '--scope', 'docs:read', '--scope', 'docs:write:Change your documents', '--scope', 'a:b')).toMatchObject({
      scopes: ['docs:read', 'docs:write', 'a:b'],
      scopeDescriptions: { 'docs:write': 'Change your documents' },
    });
    expect((await run<{ scopeDescriptions: object }>('resources', 'show', api.id)).scopeDescriptions).not.toHaveProperty('docs:read');

    await fails(['resources', 'update', api.id, '--scope', 'read:   '], /--scope: must not be empty/);
    await fails(['resources', 'update', api.id, '--scope', 'read:Read\u0007 your documents'], /--scope: must not contain control characters/);
    await fails(['resources', 'create', '--identifier', 'https://cli-long.example.com', '--scope', `read:${'x'.repeat(201)} more`], /--scope: must be at most 200 characters/);
    await fails(['resources', 'create', '--identifier', 'https://cli-oidc.example.com', '--scope', 'openid:Sign you in'], /--scope: OpenID Connect scopes/);
    expect((await run<{ scopes: string[] }>('resources', 'show', api.id)).scopes).toEqual(['docs:read', 'docs:write', 'a:b']);
    const help = await idp(['resources', 'create', '--help'], server.env);
    expect(help.stdout.replace(/\s+/g, ' ')).toContain('named by that word up to its last colon');
  }, 60_000);

  it('manages a client’s links to its logo, privacy policy, terms and home page', async () => {
    const links = { logoUri: 'https://cli-app.example.com/logo.png', policyUri: 'https://cli-app.example.com/privacy', tosUri: 'https://cli-app.example.com/terms', clientUri: 'https://cli-app.example.com/' };
    const { client } = await run<{ client: { clientId: string } }>(
      'clients', 'create', '--name', 'Linked CLI App', '--redirect-uri', REDIRECT_URI,
      '--logo-uri', links.logoUri, '--policy-uri', links.policyUri, '--tos-uri', links.tosUri, '--client-uri', links.clientUri,
    );
    expect(client).toMatchObject(links);
    expect(await run('clients', 'update', client.clientId, '--no-logo-uri', '--tos-uri', 'https://cli-app.example.com/tos')).toMatchObject({
      ...links,
      logoUri: null,
      tosUri: 'https://cli-app.example.com/tos',
    });
    expect((await idp(['clients', 'show', client.clientId], server.env)).stdout).toContain(`policyUri: ${links.policyUri}`);
    expect((await idp(['clients', 'update', '--help'], server.env)).stdout).toContain('--no-policy-uri');
  });

  it('marks a client as requiring a second factor and unmarks it; the server sees it on its next configuration refresh', async () => {
    const { client } = await run<{ client: { clientId: string; requireMfa: boolean } }>('clients', 'create', '--name', 'MFA CLI App', '--redirect-uri', REDIRECT_URI, '--require-mfa');
    expect(client.requireMfa).toBe(true);
    expect(await run('clients', 'show', client.clientId)).toMatchObject({ requireMfa: true });
    expect((await idp(['clients', 'show', client.clientId], server.env)).stdout).toContain('requireMfa: true');
    expect((await run<{ items: { clientId: string; requireMfa: boolean }[] }>('clients', 'list', '--name', 'MFA CLI App')).items).toEqual([expect.objectContaining({ clientId: client.clientId, requireMfa: true })]);
    // The CLI is another process: the server's cached copy of the client follows within CONFIG_REFRESH_SECONDS.
    const { clients } = server.current.services;
    await expect.poll(() => clients.requiresMfa(client.clientId), { timeout: 5000 }).toBe(true);
    expect(await run('clients', 'update', client.clientId, '--require-mfa', 'false')).toMatchObject({ requireMfa: false });
    await expect.poll(() => clients.requiresMfa(client.clientId), { timeout: 5000 }).toBe(false);
    expect(await run('clients', 'update', client.clientId, '--require-mfa', 'true')).toMatchObject({ requireMfa: true });
    await expect.poll(() => clients.requiresMfa(client.clientId), { timeout: 5000 }).toBe(true);

    await fails(['clients', 'update', client.clientId, '--require-mfa', 'yes'], /--require-mfa must be true or false/);
    await fails(['clients', 'create', '--name', 'ops-mfa', '--admin', '--require-mfa'], /--require-mfa does not apply/);
    expect(await run('clients', 'show', client.clientId)).toMatchObject({ requireMfa: true });
  }, 60_000);

  it('manages a user: update, grants, sessions, password, disable and delete', async () => {
    const app = await seed(server.env, { redirectUri: REDIRECT_URI });
    const { id } = await run<{ id: string }>('users', 'create', '--email', 'dora@example.com', '--password', 'dora password');
    expect((await run<{ total: number }>('users', 'list', '--q', 'dora')).total).toBe(1);
    expect(await run('users', 'update', id, '--name', 'Dora', '--email-verified', 'true')).toMatchObject({ name: 'Dora', emailVerified: true });
    await fails(['users', 'update', id, '--email-verified', 'maybe'], /--email-verified must be true or false/);
    await fails(['users', 'update', id, '--email', app.email], /already exists/);

    const config = await discover(server.issuer, app.clientId, app.clientSecret);
    const ua = new UserAgent();
    const { tokens } = await loginAndExchange(ua, config, { login: { email: 'dora@example.com', password: 'dora password' } });
    const grants = await run<{ items: { grantId: string; clientId: string }[] }>('users', 'grants', id);
    expect(grants.items).toEqual([expect.objectContaining({ clientId: app.clientId })]);
    expect(await run('users', 'revoke-grants', id, '--grant', grants.items[0]!.grantId)).toEqual({ revoked: 1 });
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await fails(['users', 'revoke-grants', id, '--grant', 'nope'], /holds no grant/);
    expect(await run('users', 'revoke-sessions', id)).toEqual({ revoked: 1 });

    expect(await run('users', 'disable', id)).toMatchObject({ disabled: true });
    await expect(loginAndExchange(new UserAgent(), config, { login: { email: 'dora@example.com', password: 'dora password' } })).rejects.toThrow();
    expect(await run('users', 'enable', id)).toMatchObject({ disabled: false });

    const pw = await idp(['users', 'set-password', id, '--password-stdin', '--json'], server.env, 'a brand new password\n');
    expect(pw.code).toBe(0);
    await expect(loginAndExchange(new UserAgent(), config, { login: { email: 'dora@example.com', password: 'a brand new password' } })).resolves.toBeDefined();
    await fails(['users', 'set-password', id, '--password', 'short'], /at least 8 characters/);

    expect(await run('users', 'delete', id)).toEqual({ deleted: id });
    await fails(['users', 'show', id], /no user with id/);
  }, 90_000); // some twenty CLI processes, one after the other

  it('manages upstream identity providers, with the client secret read from stdin and never shown', async () => {
    const created = await idp(
      ['providers', 'create', '--id', 'acme', '--name', 'Acme SSO', '--issuer', 'https://sso.acme.example', '--client-id', 'abc', '--client-secret-stdin', '--hosted-domain', 'acme.example', '--json'],
      server.env,
      'the-upstream-secret\n',
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.json()).toMatchObject({ id: 'acme', buttonLabel: 'Continue with Acme SSO', hostedDomains: ['acme.example'], enabled: true });
    expect(created.stdout).not.toContain('the-upstream-secret');
    expect((await run<{ items: { id: string }[] }>('providers', 'list')).items.map((p) => p.id)).toContain('acme');
    expect(await run('providers', 'update', 'acme', '--enabled', 'false', '--button-label', 'Acme')).toMatchObject({ enabled: false, buttonLabel: 'Acme' });
    expect(await run('providers', 'show', 'acme')).toMatchObject({ id: 'acme', issuer: 'https://sso.acme.example' });
    await fails(['providers', 'create', '--id', 'Bad Id', '--name', 'x', '--issuer', 'https://x.example', '--client-id', 'a', '--client-secret', 'b'], /lower-case slug/);
    await fails(['providers', 'create', '--id', 'plain', '--name', 'x', '--issuer', 'http://x.example', '--client-id', 'a', '--client-secret', 'b'], /must use https/);
    await fails(['providers', 'create', '--id', 'nosecret', '--preset', 'google', '--client-id', 'a'], /client secret is required/);
    expect(await run('providers', 'delete', 'acme')).toEqual({ deleted: 'acme' });
    await fails(['providers', 'show', 'acme'], /no identity provider with id acme/);
  });

  it('lists keys, reads the audit trail and creates initial access tokens', async () => {
    const keys = await run<{ items: { alg: string }[]; total: number }>('keys', 'list');
    expect(keys.items.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    expect(keys.total).toBe(3);
    const iat = await run<{ initialAccessToken: string; expiresAt: string; uses: number }>('clients', 'initial-access-token', 'create', '--expires-in', '300');
    expect(iat.initialAccessToken.length).toBeGreaterThan(20);
    expect(iat.uses).toBe(1);
    await fails(['clients', 'initial-access-token', 'create', '--expires-in', '5'], /--expires-in must be a whole number from 60 to 31536000/);
    const audit = await run<{ items: { action: string; actor: string }[] }>('audit', 'list', '--action', 'initial_access_token.created');
    expect(audit.items[0]).toMatchObject({ action: 'initial_access_token.created', actor: expect.stringMatching(/^cli:.+@.+/) });
  });
});

describe('the CLI speaks the admin API’s JSON', () => {
  it('prints what the admin API returns, finds users by email and APIs by identifier, and reports errors in the API’s shape', async () => {
    const api = await adminApi(server);
    const user = await run<{ id: string }>('users', 'create', '--email', 'erin@example.com', '--password', 'erin password', '--name', 'Erin');
    expect(await run('users', 'show', 'Erin@Example.com')).toEqual((await api.call('GET', `/admin/v1/users/${user.id}`)).body);
    expect(await run('users', 'list', '--q', 'erin', '--limit', '1')).toEqual((await api.call('GET', '/admin/v1/users?q=erin&limit=1')).body);
    expect(await run('users', 'list', '--q', 'erin', '--limit', '1')).toMatchObject({ items: [{ id: user.id }], total: 1, limit: 1, offset: 0 });

    const resource = await run<{ id: string }>('resources', 'create', '--identifier', 'https://contract.example.com', '--scope', 'read');
    expect(await run('resources', 'show', 'https://contract.example.com')).toEqual((await api.call('GET', `/admin/v1/resources/${resource.id}`)).body);
    expect(await run('keys', 'list')).toEqual((await api.call('GET', '/admin/v1/keys')).body);

    const missing = await idp(['users', 'show', 'nobody@example.com', '--json'], server.env);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(JSON.parse(missing.stderr)).toEqual({ error: 'not_found', error_description: expect.stringContaining('nobody@example.com') });
    const refused = await idp(['users', 'create', '--email', 'bad', '--password', 'long enough', '--json'], server.env);
    const viaApi = await api.call('POST', '/admin/v1/users', { email: 'bad', password: 'long enough' });
    expect(JSON.parse(refused.stderr).error).toBe((viaApi.body as { error: string }).error);
    expect(JSON.parse(refused.stderr).error_description).toMatch(/^--email: /);
  }, 60_000); // a dozen CLI processes, one after the other

  it('prints its version', async () => {
    const res = await idp(['--version'], server.env);
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
