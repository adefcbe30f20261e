import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { createdClient, createPerson, idp, idpOk } from './helpers/cli.ts';
import { createTestDatabase } from './helpers/database.ts';
import { startServer, type TestServer } from './helpers/server.ts';

type Role = { id: string; name: string; description: string | null; permissions: Record<string, string[]>; builtIn: boolean; requireMfa: boolean };
type Page<T> = { items: T[]; total: number };

const API = 'https://orders.example.com';
const PASSWORD = 'a long enough password';

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
const person = (roles: string[] = []) => createPerson(server.env, PASSWORD, roles);
const machineClientArgs = (name: string) => ['clients', 'create', '--name', name, '--grant-type', 'client_credentials', '--scope', ''];
const clientRoles = async (clientId: string) => (JSON.parse(await cli(['clients', 'roles', 'list', clientId, '--json'])) as { items: Role[] }).items.map((r) => r.name);

describe('roles through the CLI', () => {
  it("makes the first administrator on a fresh database, before the server ever started (the README's first step)", async () => {
    const fresh = await createTestDatabase();
    try {
      const env = { ...server.env, DATABASE_URL: fresh.url };
      const made = await createPerson(env, PASSWORD, ['idp-admin']);
      const roles = JSON.parse(await idpOk(['users', 'roles', 'list', made.email, '--json'], env)) as { items: Role[] };
      expect(roles.items.map((r) => r.name)).toEqual(['idp-admin']);
    } finally {
      await fresh.drop();
    }
  });

  it('ships idp-admin and idp-viewer, which cannot be deleted or have their permissions changed', async () => {
    const list = JSON.parse(await cli(['roles', 'list', '--json'])) as Page<Role>;
    const builtIn = Object.fromEntries(list.items.filter((r) => r.builtIn).map((r) => [r.name, r.permissions]));
    expect(builtIn).toEqual({ 'idp-admin': { 'urn:idp:admin': ['admin', 'admin:read'] }, 'idp-viewer': { 'urn:idp:admin': ['admin:read'] } });

    const del = await idp(['roles', 'delete', 'idp-admin'], server.env);
    expect(del.code).not.toBe(0);
    expect(del.stderr).toMatch(/built in/);
    const update = await idp(['roles', 'update', 'idp-viewer', '--permission', 'urn:idp:admin admin'], server.env);
    expect(update.code).not.toBe(0);
    expect(update.stderr).toMatch(/built in/);
    // Its description may change.
    await cli(['roles', 'update', 'idp-viewer', '--description', 'Read-only operators']);
    expect((JSON.parse(await cli(['roles', 'show', 'idp-viewer', '--json'])) as Role).description).toBe('Read-only operators');
    // And keeps it when the server starts again (which makes sure the built-in roles are as they must be).
    await server.restart();
    expect((JSON.parse(await cli(['roles', 'show', 'idp-viewer', '--json'])) as Role).description).toBe('Read-only operators');
  });

  it('creates, shows, updates and deletes a role, and gives it to and takes it from a user', async () => {
    const created = JSON.parse(await cli(['roles', 'create', '--name', 'clerk', '--description', 'Takes orders', '--permission', `${API} orders:read orders:write`, '--json'])) as Role;
    expect(created).toMatchObject({ name: 'clerk', description: 'Takes orders', permissions: { [API]: ['orders:read', 'orders:write'] }, builtIn: false });
    const dup = await idp(['roles', 'create', '--name', 'clerk'], server.env);
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toMatch(/already exists/);

    const user = await person(['clerk']);
    expect((JSON.parse(await cli(['users', 'roles', 'list', user.email, '--json'])) as { items: Role[] }).items.map((r) => r.name)).toEqual(['clerk']);
    await cli(['users', 'roles', 'add', user.email, 'idp-viewer']);
    await cli(['users', 'roles', 'add', user.email, 'idp-viewer']);
    expect((JSON.parse(await cli(['users', 'roles', 'list', user.id, '--json'])) as { items: Role[] }).items.map((r) => r.name)).toEqual(['clerk', 'idp-viewer']);
    await cli(['users', 'roles', 'remove', user.email, 'idp-viewer']);
    const again = await idp(['users', 'roles', 'remove', user.email, 'idp-viewer'], server.env);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/does not have the role/);

    const renamed = JSON.parse(await cli(['roles', 'update', 'clerk', '--name', 'order-clerk', '--permission', `${API} orders:read`, '--json'])) as Role;
    expect(renamed).toMatchObject({ id: created.id, name: 'order-clerk', permissions: { [API]: ['orders:read'] } });
    await cli(['roles', 'delete', 'order-clerk']);
    expect((JSON.parse(await cli(['users', 'roles', 'list', user.email, '--json'])) as { items: Role[] }).items).toEqual([]);
  }, 60_000);

  it('makes a role require a second factor and back, built-in roles too, kept across a start; roles.requiresMfa says whether a person has such a role', async () => {
    const show = async (role: string) => JSON.parse(await cli(['roles', 'show', role, '--json'])) as Role;
    const created = JSON.parse(await cli(['roles', 'create', '--name', 'treasurer', '--require-mfa', '--json'])) as Role;
    expect(created).toMatchObject({ name: 'treasurer', requireMfa: true });
    expect(await cli(['roles', 'show', 'treasurer'])).toContain('second factor required at sign-in');
    expect(JSON.parse(await cli(['roles', 'create', '--name', 'teller', '--json'])) as Role).toMatchObject({ requireMfa: false });

    const { roles } = server.current.services;
    const user = await person(['teller']);
    expect(await roles.requiresMfa(user.id)).toBe(false);
    await cli(['users', 'roles', 'add', user.email, 'treasurer']);
    expect(await roles.requiresMfa(user.id)).toBe(true);
    expect((await cli(['roles', 'update', 'treasurer', '--require-mfa', 'false', '--json']))).toContain('"requireMfa":false');
    expect(await roles.requiresMfa(user.id)).toBe(false);
    expect((await show('treasurer')).requireMfa).toBe(false);
    const bad = await idp(['roles', 'update', 'treasurer', '--require-mfa', 'maybe'], server.env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--require-mfa must be true or false/);

    // A built-in role may require a second factor (not its permissions), and still does after a start.
    expect(JSON.parse(await cli(['roles', 'update', 'idp-viewer', '--require-mfa', 'true', '--json'])) as Role).toMatchObject({ name: 'idp-viewer', builtIn: true, requireMfa: true });
    await cli(['users', 'roles', 'add', user.email, 'idp-viewer']);
    expect(await roles.requiresMfa(user.id)).toBe(true);
    await server.restart();
    expect((await show('idp-viewer')).requireMfa).toBe(true);
    expect(await server.current.services.roles.requiresMfa(user.id)).toBe(true);
    expect((await show('idp-admin')).requireMfa).toBe(false);
    await cli(['roles', 'update', 'idp-viewer', '--require-mfa', 'false']);
    expect(await server.current.services.roles.requiresMfa(user.id)).toBe(false);
    expect(await server.current.services.roles.requiresMfa('no-such-user')).toBe(false);
  }, 60_000);

  it('gives a machine client roles at creation and later, takes them, and refuses built-in and admin clients', async () => {
    await cli(['roles', 'create', '--name', 'shipper', '--permission', `${API} orders:write`]);
    const created = JSON.parse(await cli([...machineClientArgs('Shipping job'), '--role', 'shipper', '--role', 'idp-viewer', '--json'])) as { client: { clientId: string }; clientSecret: string; roles: string[] };
    expect(created.roles).toEqual(['shipper', 'idp-viewer']);
    expect(created.clientSecret).toBeTruthy();
    const { clientId } = created.client;
    expect(await clientRoles(clientId)).toEqual(['idp-viewer', 'shipper']);

    await cli(['clients', 'roles', 'remove', clientId, 'idp-viewer']);
    const again = await idp(['clients', 'roles', 'remove', clientId, 'idp-viewer'], server.env);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/does not have the role/);
    const given = JSON.parse(await cli(['clients', 'roles', 'add', clientId, 'idp-viewer', '--json'])) as Role;
    expect(given).toMatchObject({ name: 'idp-viewer', builtIn: true });
    await cli(['clients', 'roles', 'add', clientId, 'idp-viewer']);
    expect(await clientRoles(clientId)).toEqual(['idp-viewer', 'shipper']);
    expect(await cli(['clients', 'roles', 'list', clientId])).toBe('idp-viewer\nshipper\n');

    for (const [args, message] of [
      [['clients', 'roles', 'add', 'idp-account', 'shipper'], /idp-account is a built-in client/],
      [['clients', 'roles', 'add', clientId, 'no-such-role'], /no role no-such-role/],
      [['clients', 'roles', 'list', 'no-such-client'], /no client with id no-such-client/],
      [['clients', 'create', '--name', 'ops2', '--admin', '--role', 'shipper'], /--role does not apply/],
    ] as const) {
      const res = await idp([...args], server.env);
      expect(res.code, args.join(' ')).toBe(1);
      expect(res.stderr).toMatch(message);
    }

    // A role deleted is gone from the client; a client deleted takes its roles with it.
    await cli(['roles', 'delete', 'shipper']);
    expect(await clientRoles(clientId)).toEqual(['idp-viewer']);
    await cli(['clients', 'delete', clientId]);
    expect((await idp(['clients', 'roles', 'list', clientId], server.env)).code).not.toBe(0);
  }, 60_000);

  it('creates no client when a role given to clients create does not exist', async () => {
    const res = await idp([...machineClientArgs('Typo job'), '--role', 'idp-veiwer'], server.env);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/no role idp-veiwer/);
    expect((JSON.parse(await cli(['clients', 'list', '--name', 'Typo job', '--json'])) as Page<unknown>).total).toBe(0);
  });

  it('creates nobody when a role given to users create does not exist', async () => {
    const email = 'typo@example.com';
    const res = await idp(['users', 'create', '--email', email, '--password-stdin', '--role', 'idp-admn'], server.env, `${PASSWORD}\n`);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/no role idp-admn/);
    const shown = await idp(['users', 'show', email], server.env);
    expect(shown.code).not.toBe(0);
  });
});

describe('roles through the admin API', () => {
  it('manages roles and assignments, audited with the admin client as actor; bad input is a 4xx', async () => {
    const created = await admin.call<Role>('POST', '/admin/v1/roles', { name: 'auditor', permissions: { [API]: ['orders:read'] } });
    expect(created.status).toBe(201);
    expect((await admin.call('POST', '/admin/v1/roles', { name: 'has space' })).status).toBe(400);
    expect((await admin.call('POST', '/admin/v1/roles', { name: 'auditor' })).status).toBe(409);
    expect((await admin.call<Role>('GET', '/admin/v1/roles/auditor')).body.id).toBe(created.body.id);
    expect((await admin.call('GET', '/admin/v1/roles/nobody')).status).toBe(404);

    const user = await person();
    expect((await admin.call<Role>('PUT', `/admin/v1/users/${user.id}/roles/auditor`)).status).toBe(200);
    expect((await admin.call<{ items: Role[] }>('GET', `/admin/v1/users/${user.id}/roles`)).body.items.map((r) => r.name)).toEqual(['auditor']);
    expect((await admin.call('PUT', '/admin/v1/users/no-such-user/roles/auditor')).status).toBe(404);
    expect((await admin.call('DELETE', `/admin/v1/users/${user.id}/roles/auditor`)).status).toBe(204);
    expect((await admin.call('DELETE', `/admin/v1/roles/${created.body.id}`)).status).toBe(204);
    expect((await admin.call('DELETE', '/admin/v1/roles/idp-admin')).status).toBe(400);

    // A read-only token reads roles and changes none.
    const readOnly = await admin.token('admin:read');
    expect((await admin.call('GET', '/admin/v1/roles', undefined, readOnly)).status).toBe(200);
    expect((await admin.call('POST', '/admin/v1/roles', { name: 'nope' }, readOnly)).status).toBe(403);

    const audit = await admin.call<{ items: { action: string; actor: string; target: string }[] }>('GET', '/admin/v1/audit?limit=200');
    const actions = audit.body.items.filter((e) => e.target === user.id || e.target === created.body.id).map((e) => [e.action, e.actor]);
    expect(actions).toEqual(
      expect.arrayContaining([
        ['role.created', `client:${admin.clientId}`],
        ['user.role_added', `client:${admin.clientId}`],
        ['user.role_removed', `client:${admin.clientId}`],
        ['role.deleted', `client:${admin.clientId}`],
      ]),
    );
  });

  it('creates and updates roles that require a second factor, built-in ones included; bad values are a 400; changes are audited with the value', async () => {
    const created = await admin.call<Role>('POST', '/admin/v1/roles', { name: 'approver', requireMfa: true });
    expect(created.status).toBe(201);
    expect(created.body.requireMfa).toBe(true);
    expect((await admin.call<Role>('GET', '/admin/v1/roles/approver')).body.requireMfa).toBe(true);
    expect((await admin.call<Page<Role>>('GET', '/admin/v1/roles?limit=200')).body.items.find((r) => r.name === 'approver')).toMatchObject({ requireMfa: true });
    // Left out on update: kept.
    expect((await admin.call<Role>('PATCH', '/admin/v1/roles/approver', { description: 'Approves payments' })).body).toMatchObject({ description: 'Approves payments', requireMfa: true });
    expect((await admin.call<Role>('PATCH', '/admin/v1/roles/approver', { requireMfa: false })).body.requireMfa).toBe(false);

    for (const value of ['true', 1, null]) {
      const bad = await admin.call('PATCH', '/admin/v1/roles/approver', { requireMfa: value });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).toMatch(/requireMfa/);
    }
    const badCreate = await admin.call('POST', '/admin/v1/roles', { name: 'approver-2', requireMfa: 'yes' });
    expect(badCreate.status).toBe(400);
    expect(JSON.stringify(badCreate.body)).toMatch(/requireMfa/);
    expect((await admin.call('GET', '/admin/v1/roles/approver-2')).status).toBe(404);
    expect((await admin.call<Role>('GET', '/admin/v1/roles/approver')).body.requireMfa).toBe(false);

    // A built-in role: requireMfa may change, its permissions still may not.
    const builtIn = await admin.call<Role>('PATCH', '/admin/v1/roles/idp-viewer', { requireMfa: true });
    expect(builtIn.status).toBe(200);
    expect(builtIn.body).toMatchObject({ name: 'idp-viewer', builtIn: true, requireMfa: true, permissions: { 'urn:idp:admin': ['admin:read'] } });
    expect((await admin.call('PATCH', '/admin/v1/roles/idp-viewer', { requireMfa: false, permissions: {} })).status).toBe(400);
    expect((await admin.call<Role>('PATCH', '/admin/v1/roles/idp-viewer', { requireMfa: false })).body.requireMfa).toBe(false);

    const audit = await admin.call<{ items: { action: string; target: string; details: Record<string, unknown> }[] }>('GET', '/admin/v1/audit?limit=200');
    const ofRole = (id: string) => audit.body.items.filter((e) => e.target === id).map((e) => [e.action, e.details]);
    expect(ofRole(created.body.id)).toEqual(
      expect.arrayContaining([
        ['role.created', { name: 'approver', requireMfa: true }],
        ['role.updated', { fields: ['description'] }],
        ['role.updated', { fields: ['requireMfa'], requireMfa: false }],
      ]),
    );
    expect(ofRole(builtIn.body.id)).toEqual(expect.arrayContaining([['role.updated', { fields: ['requireMfa'], requireMfa: true }]]));
  });

  it('gives machine clients roles and takes them, audited with the admin client as actor; built-in and admin clients take none', async () => {
    await admin.call('POST', '/admin/v1/roles', { name: 'batch', permissions: { [API]: ['orders:read'] } });
    const job = createdClient(await idp([...machineClientArgs('Batch job'), '--json'], server.env));
    const path = `/admin/v1/clients/${job.clientId}/roles`;
    expect((await admin.call<{ items: Role[] }>('GET', path)).body.items).toEqual([]);
    const given = await admin.call<Role>('PUT', `${path}/batch`);
    expect(given.status).toBe(200);
    expect(given.body).toMatchObject({ name: 'batch', permissions: { [API]: ['orders:read'] } });
    expect((await admin.call('PUT', `${path}/${given.body.id}`)).status).toBe(200);
    expect((await admin.call<{ items: Role[] }>('GET', path)).body.items.map((r) => r.name)).toEqual(['batch']);

    const unknown = await admin.call<{ error_description: string }>('PUT', `${path}/no-such-role`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error_description).toBe('no role no-such-role');
    expect((await admin.call('GET', '/admin/v1/clients/no-such-client/roles')).status).toBe(404);
    const builtIn = await admin.call<{ error_description: string }>('PUT', '/admin/v1/clients/idp-console/roles/batch');
    expect(builtIn.status).toBe(400);
    expect(builtIn.body.error_description).toMatch(/idp-console is a built-in client/);
    expect((await admin.call('PUT', `/admin/v1/clients/${admin.clientId}/roles/batch`)).status).toBe(400);

    // A read-only token reads a client's roles and changes none.
    const readOnly = await admin.token('admin:read');
    expect((await admin.call('GET', path, undefined, readOnly)).status).toBe(200);
    expect((await admin.call('PUT', `${path}/idp-viewer`, undefined, readOnly)).status).toBe(403);
    expect((await admin.call('DELETE', `${path}/batch`, undefined, readOnly)).status).toBe(403);

    expect((await admin.call('DELETE', `${path}/batch`)).status).toBe(204);
    expect((await admin.call('DELETE', `${path}/batch`)).status).toBe(404);
    const audit = await admin.call<{ items: { action: string; actor: string }[] }>('GET', `/admin/v1/audit?target=${job.clientId}`);
    expect(audit.body.items.map((e) => [e.action, e.actor])).toEqual(
      expect.arrayContaining([
        ['client.role_added', `client:${admin.clientId}`],
        ['client.role_removed', `client:${admin.clientId}`],
      ]),
    );
    expect(audit.body.items.filter((e) => e.action === 'client.role_added')).toHaveLength(1);
  });
});
