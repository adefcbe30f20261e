// Custom claims: a claim mapping (an API's, into access tokens; a client's, into ID tokens and
// userinfo) can never set a claim the provider sets itself or a standard OpenID Connect claim,
// nor an API's own roles claim; only an admin maps claims; attribute paths read what the person
// holds, nothing inherited. RFC 9068 §2.2; OpenID Connect Core §2, §5.1.
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { idp } from '../helpers/cli.ts';
import { loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { UserAgent } from '../helpers/user-agent.ts';
import { securityContext } from './setup.ts';

const ctx = securityContext();
let admin: AdminApi;
beforeAll(async () => {
  admin = await adminApi(ctx.server);
});

const API = 'https://api.example.com';
type Refusal = { error: string; error_description: string };

const RESERVED = [
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope', 'cnf', 'acr', 'amr', 'auth_time', 'nonce', 'sid', 'azp', 'at_hash', 'c_hash', 's_hash', 'events',
  'email', 'email_verified', 'name', 'given_name', 'family_name', 'preferred_username', 'phone_number', 'phone_number_verified', 'address', 'updated_at', 'picture', 'locale',
];

async function apiId(): Promise<string> {
  const list = await admin.call<{ items: { id: string; identifier: string }[] }>('GET', '/admin/v1/resources');
  return list.body.items.find((r) => r.identifier === API)!.id;
}

describe('reserved claims', () => {
  it('SEC-CL-01 a mapping that sets a reserved claim (iss, sub, aud, exp, scope, client_id, cnf, acr, nonce, …; email, name, …) is refused with a 400 naming it: an API (create, update) and a client (create, update); nothing changes', async () => {
    for (const claim of RESERVED) await refusedEverywhere(claim);
  }, 60_000);

  async function refusedEverywhere(claim: string) {
    const mappings = { department: 'attributes.department', [claim]: 'attributes.department' };
    const expected = new RegExp(`claimMappings\\.${claim}: ${claim} is a reserved claim`);
    const id = await apiId();
    const before = (await admin.call<{ claimMappings: Record<string, string> }>('GET', `/admin/v1/resources/${id}`)).body.claimMappings;
    const attempts = [
      await admin.call<Refusal>('POST', '/admin/v1/resources', { identifier: `https://reserved-${claim.replace(/_/g, '-')}.example.com`, claimMappings: mappings }),
      await admin.call<Refusal>('PATCH', `/admin/v1/resources/${id}`, { claimMappings: mappings }),
      await admin.call<Refusal>('POST', '/admin/v1/clients', { name: 'Mapper', redirectUris: [REDIRECT_URI], claimMappings: mappings }),
      await admin.call<Refusal>('PATCH', `/admin/v1/clients/${ctx.app.clientId}`, { claimMappings: mappings }),
    ];
    for (const res of attempts) {
      expect(res.status, claim).toBe(400);
      expect(res.body.error).toBe('invalid_request');
      expect(res.body.error_description).toMatch(expected);
    }
    expect((await admin.call<{ claimMappings: Record<string, string> }>('GET', `/admin/v1/resources/${id}`)).body.claimMappings).toEqual(before);
    expect((await admin.call<{ claimMappings: Record<string, string> }>('GET', `/admin/v1/clients/${ctx.app.clientId}`)).body.claimMappings).toEqual({});
  }

  it('SEC-CL-01 the CLI refuses a mapping that sets a reserved claim, naming it, for an API and a client', async () => {
    for (const args of [
      ['resources', 'update', API, '--claim', 'sub=attributes.employee_id'],
      ['resources', 'create', '--identifier', 'https://reserved-cli.example.com', '--claim', 'email=attributes.mail'],
      ['clients', 'update', ctx.app.clientId, '--claim', 'iss=attributes.issuer'],
      ['clients', 'create', '--name', 'Mapper', '--redirect-uri', REDIRECT_URI, '--claim', 'given_name=name'],
    ]) {
      const res = await idp(args, ctx.server.env);
      expect(res.code, args.join(' ')).toBe(1);
      const claim = args.at(-1)!.split('=')[0]!;
      expect(res.stderr).toContain(`idp: --claim: ${claim} is a reserved claim`);
    }
  }, 30_000);

  it('SEC-CL-02 `roles` cannot be mapped on an API whose roles claim is on, whichever is set first; on another API, or a client, it can', async () => {
    const created = await admin.call<Refusal>('POST', '/admin/v1/resources', { identifier: 'https://roles-claim.example.com', rolesClaim: true, claimMappings: { roles: 'attributes.groups' } });
    expect(created.status).toBe(400);
    expect(created.body.error_description).toMatch(/claimMappings\.roles: roles is a reserved claim of this API \(rolesClaim is on/);

    const api = await admin.call<{ id: string }>('POST', '/admin/v1/resources', { identifier: 'https://roles-claim.example.com', claimMappings: { roles: 'attributes.groups' } });
    expect(api.status).toBe(201);
    const turnOn = await admin.call<Refusal>('PATCH', `/admin/v1/resources/${api.body.id}`, { rolesClaim: true });
    expect(turnOn.status).toBe(400);
    expect(turnOn.body.error_description).toMatch(/claimMappings\.roles: roles is a reserved claim of this API/);
    expect((await admin.call('PATCH', `/admin/v1/resources/${api.body.id}`, { rolesClaim: true, claimMappings: { groups: 'roles' } })).status).toBe(200);
    const cli = await idp(['resources', 'update', 'https://roles-claim.example.com', '--claim', 'roles=attributes.groups'], ctx.server.env);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('idp: --claim: roles is a reserved claim of this API');
    // A client's ID token has no roles claim of its own.
    expect((await admin.call('PATCH', `/admin/v1/clients/${ctx.app.clientId}`, { claimMappings: { roles: 'roles' } })).status).toBe(200);
    expect((await admin.call('PATCH', `/admin/v1/clients/${ctx.app.clientId}`, { claimMappings: {} })).status).toBe(200);
  });

  it.each([
    ['an empty name', { '': 'email' }, /claimMappings: a claim name must not be empty/],
    ['a name with a space', { 'my claim': 'email' }, /claimMappings\.my claim: a claim name must not contain whitespace or control characters/],
    ['a name with a control character', { 'dept\u0000': 'email' }, /a claim name must not contain whitespace or control characters/],
    ['a name with a bidirectional override', { 'dept\u202e': 'email' }, /a claim name must not contain whitespace or control characters/],
    ['a name of 101 characters', { ['x'.repeat(101)]: 'email' }, /a claim name must be at most 100 characters/],
    ['21 claims', Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`claim${i}`, 'email'])), /claimMappings: at most 20 claims/],
    ['an unknown source', { dept: 'password' }, /claimMappings\.dept: must be email, email_verified, name, roles, attributes, or attributes\.<key>/],
    ['an attribute path of 6 keys', { dept: 'attributes.a.b.c.d.e.f' }, /claimMappings\.dept: must be email/],
    ['not an object', ['email'], /claimMappings: must be an object of claim names and their sources/],
  ])('SEC-CL-03 a mapping with %s is refused with a 400', async (_what, claimMappings, message) => {
    const res = await admin.call<Refusal>('PATCH', `/admin/v1/resources/${await apiId()}`, { claimMappings });
    expect(res.status).toBe(400);
    expect(res.body.error_description).toMatch(message);
  });

  it('SEC-CL-03 a namespaced URI is a claim name', async () => {
    const res = await admin.call<{ claimMappings: Record<string, string> }>('PATCH', `/admin/v1/resources/${await apiId()}`, { claimMappings: { 'https://example.com/claims/department': 'attributes.department' } });
    expect(res.status).toBe(200);
    expect(res.body.claimMappings).toEqual({ 'https://example.com/claims/department': 'attributes.department' });
  });
});

describe('who maps claims, and what an attribute path reads', () => {
  it('SEC-CL-04 a registrant cannot map claims (dynamic registration): only an admin can', async () => {
    const iat = (await idp(['clients', 'initial-access-token', 'create', '--json'], ctx.server.env)).json<{ initialAccessToken: string }>().initialAccessToken;
    const res = await fetch(new URL('/register', ctx.server.issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` },
      body: JSON.stringify({ client_name: 'Greedy', redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'], claim_mappings: { department: 'attributes.department' } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Refusal).error).toBe('invalid_client_metadata');
    // The initial access token was not used up by the refused registration.
    const again = await fetch(new URL('/register', ctx.server.issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` },
      body: JSON.stringify({ client_name: 'Modest', redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], response_types: ['code'] }),
    });
    expect(again.status).toBe(201);
  });

  it('SEC-CL-05 an attribute path reads only what the person holds: inherited names (constructor, __proto__, toString) give no claim', async () => {
    expect(
      (
        await admin.call('PATCH', `/admin/v1/resources/${await apiId()}`, {
          claimMappings: { c: 'attributes.constructor', p: 'attributes.__proto__', t: 'attributes.toString', l: 'attributes.department.length', own: 'attributes.department' },
        })
      ).status,
    ).toBe(200);
    expect((await admin.call('PATCH', `/admin/v1/users/${ctx.app.userId}`, { attributes: { department: 'Sales' } })).status).toBe(200);
    const { tokens } = await loginAndExchange(new UserAgent(), ctx.config, { scope: 'openid read', resource: API, login: { email: ctx.app.email, password: ctx.app.password } });
    const claims = decodeJwt(tokens.access_token);
    expect(claims.own).toBe('Sales');
    for (const inherited of ['c', 'p', 't', 'l']) expect(claims).not.toHaveProperty(inherited);
  });
});
