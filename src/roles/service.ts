import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Actor, AuditService } from '../audit/service.ts';
import type { PrismaClient, Role } from '../db/index.ts';
import { ACCOUNT_CLIENT_ID, CONSOLE_CLIENT_ID } from '../clients/service.ts';
import { badRequest, conflict, isUniqueViolation, notFound } from '../lib/errors.ts';
import { ADMIN_API } from '../lib/scopes.ts';
import { parseInput } from '../lib/validation.ts';

/** The roles every installation has: the admin API's two levels. */
const BUILT_IN_ROLES = {
  'idp-admin': { description: 'Manage this identity provider (the admin API and console)', permissions: { [ADMIN_API]: ['admin', 'admin:read'] } },
  'idp-viewer': { description: 'View this identity provider’s configuration, change nothing', permissions: { [ADMIN_API]: ['admin:read'] } },
} as const satisfies Record<string, { description: string; permissions: Record<string, string[]> }>;

const roleName = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits, and . _ : - (not first)');

const scopeName = z
  .string()
  .max(128)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'scope names are printable ASCII without spaces, quotes or backslashes');

/**
 * API identifier → scopes granted there: an object (JSON), or (CLI) "identifier scope scope…"
 * lines, one per API.
 */
const permissionsSchema = z
  .union([
    z.record(z.string().min(1).max(2048), z.array(scopeName).max(200)),
    z
      .array(z.string().max(4000))
      .max(100)
      .transform((lines, ctx) => {
        const out: Record<string, string[]> = {};
        for (const line of lines) {
          const [identifier, ...scopes] = line.trim().split(/\s+/);
          if (!identifier || !scopes.length) ctx.addIssue({ code: 'custom', message: `"${line}" must be an API identifier followed by its scopes` });
          else out[identifier] = [...(out[identifier] ?? []), ...scopes];
        }
        return out;
      }),
  ])
  .refine((p) => Object.keys(p).length <= 100, 'at most 100 APIs');

export const createRoleSchema = z
  .object({
    name: roleName,
    description: z.string().trim().max(500).optional(),
    permissions: permissionsSchema.default({}).describe('API identifier → the scopes of that API the role grants'),
    requireMfa: z.boolean().default(false).describe('people with this role must sign in with a second factor (those without one are taken through adding one)'),
  })
  .strict();

export const updateRoleSchema = z
  .object({
    name: roleName,
    description: z.string().trim().max(500).nullable(),
    permissions: permissionsSchema.describe('API identifier → the scopes of that API the role grants (replaces them all)'),
    requireMfa: z.boolean().describe('people with this role must sign in with a second factor (built-in roles too)'),
  })
  .partial()
  .strict();

export type CreateRoleInput = z.input<typeof createRoleSchema>;
export type UpdateRoleInput = z.input<typeof updateRoleSchema>;

export interface RoleView {
  id: string;
  name: string;
  description: string | null;
  permissions: Record<string, string[]>;
  builtIn: boolean;
  /** People with this role must sign in with a second factor. */
  requireMfa: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** A role's permissions read back: only arrays of strings, on an object without a prototype. */
function permissionsOf(stored: string): Record<string, string[]> {
  const out = Object.create(null) as Record<string, string[]>;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    return out;
  }
  if (!parsed || typeof parsed !== 'object') return out;
  for (const [identifier, scopes] of Object.entries(parsed)) {
    if (Array.isArray(scopes)) out[identifier] = scopes.filter((s): s is string => typeof s === 'string');
  }
  return out;
}

const toView = (r: Role): RoleView => ({ id: r.id, name: r.name, description: r.description, permissions: permissionsOf(r.permissions), builtIn: r.builtIn, requireMfa: r.requireMfa, createdAt: r.createdAt, updatedAt: r.updatedAt });

/** Sorted, de-duplicated scopes per API, as stored. */
const normalised = (permissions: Record<string, string[]>) => JSON.stringify(Object.fromEntries(Object.entries(permissions).map(([api, scopes]) => [api, [...new Set(scopes)].sort()])));

/** What roles give their holder: the role names, sorted, and per API the scopes granted. */
export interface RoleGrants {
  names: string[];
  scopes: (api: string) => Set<string>;
}

function grantsFrom(roles: { name: string; permissions: string }[]): RoleGrants {
  const byApi = new Map<string, Set<string>>();
  for (const role of roles) {
    for (const [api, scopes] of Object.entries(permissionsOf(role.permissions))) {
      const set = byApi.get(api) ?? new Set<string>();
      for (const s of scopes) set.add(s);
      byApi.set(api, set);
    }
  }
  return { names: roles.map((r) => r.name).sort(), scopes: (api) => byApi.get(api) ?? new Set() };
}

/**
 * Roles: named sets of API scopes given to people and to machine clients. An API that enforces
 * roles (and the admin API, always, for people) issues a person only the scopes of that API their
 * roles grant, and a client's own tokens (client_credentials) only what the client's roles grant;
 * the admin API checks a person's roles again on every request.
 */
export function createRoleService(prisma: PrismaClient, audit: AuditService) {
  /** A role by id or by name. */
  async function find(idOrName: string): Promise<Role> {
    const row = (await prisma.role.findUnique({ where: { id: idOrName } })) ?? (await prisma.role.findUnique({ where: { name: idOrName } }));
    if (!row) throw notFound(`no role ${idOrName}`);
    return row;
  }

  async function userExists(userId: string) {
    if (!(await prisma.user.findUnique({ where: { id: userId }, select: { id: true } }))) throw notFound(`no user ${userId}`);
  }

  async function findClient(clientId: string) {
    const row = await prisma.client.findUnique({ where: { id: clientId }, select: { admin: true } });
    if (!row) throw notFound(`no client with id ${clientId}`);
    return row;
  }

  return {
    /** idp-admin and idp-viewer, as this version defines them (run at every start; writes only on a change). */
    async ensureBuiltIns(): Promise<void> {
      for (const [name, role] of Object.entries(BUILT_IN_ROLES)) {
        const permissions = normalised(role.permissions);
        const existing = await prisma.role.findUnique({ where: { name } });
        // Their permissions are fixed; their description and requireMfa are the admin's to change.
        if (existing?.builtIn && existing.permissions === permissions) continue;
        await prisma.role.upsert({
          where: { name },
          create: { id: randomUUID(), name, description: role.description, permissions, builtIn: true },
          update: { permissions, builtIn: true },
        });
      }
    },

    async create(input: CreateRoleInput, who: Actor): Promise<RoleView> {
      const data = parseInput(createRoleSchema, input);
      try {
        const row = await prisma.role.create({ data: { id: randomUUID(), name: data.name, description: data.description ?? null, permissions: normalised(data.permissions), requireMfa: data.requireMfa } });
        await audit.record(who, 'role.created', row.id, { name: row.name, requireMfa: row.requireMfa });
        return toView(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`a role named ${data.name} already exists`);
        throw err;
      }
    },

    async list(q: { limit: number; offset: number }): Promise<{ items: RoleView[]; total: number }> {
      const [rows, total] = await Promise.all([prisma.role.findMany({ orderBy: [{ name: 'asc' }], take: q.limit, skip: q.offset }), prisma.role.count()]);
      return { items: rows.map(toView), total };
    },

    async get(idOrName: string): Promise<RoleView> {
      return toView(await find(idOrName));
    },

    async update(idOrName: string, patch: UpdateRoleInput, who: Actor): Promise<RoleView> {
      const data = parseInput(updateRoleSchema, patch);
      const role = await find(idOrName);
      if (role.builtIn && (data.name !== undefined || data.permissions !== undefined)) throw badRequest(`${role.name} is built in: its name and permissions cannot change`);
      try {
        const row = await prisma.role.update({
          where: { id: role.id },
          data: { ...(data.name !== undefined ? { name: data.name } : {}), ...(data.description !== undefined ? { description: data.description } : {}), ...(data.permissions ? { permissions: normalised(data.permissions) } : {}),
            ...(data.requireMfa !== undefined ? { requireMfa: data.requireMfa } : {}),
          },
        });
        await audit.record(who, 'role.updated', role.id, { fields: Object.keys(data), ...(data.requireMfa === undefined ? {} : { requireMfa: data.requireMfa }) });
        return toView(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`a role named ${data.name} already exists`);
        throw err;
      }
    },

    async delete(idOrName: string, who: Actor): Promise<void> {
      const role = await find(idOrName);
      if (role.builtIn) throw badRequest(`${role.name} is built in and cannot be deleted`);
      await prisma.role.deleteMany({ where: { id: role.id } });
      await audit.record(who, 'role.deleted', role.id, { name: role.name });
    },

    /** The roles of a person, by name. */
    async ofUser(userId: string): Promise<RoleView[]> {
      await userExists(userId);
      const rows = await prisma.userRole.findMany({ where: { userId }, include: { role: true }, orderBy: { role: { name: 'asc' } } });
      return rows.map((r) => toView(r.role));
    },

    /** Gives a person a role (by id or name); giving it again changes nothing. */
    async assign(userId: string, idOrName: string, who: Actor): Promise<RoleView> {
      await userExists(userId);
      const role = await find(idOrName);
      const key = { userId_roleId: { userId, roleId: role.id } };
      if (await prisma.userRole.findUnique({ where: key })) return toView(role);
      try {
        await prisma.userRole.create({ data: { userId, roleId: role.id } });
      } catch (err) {
        // Given at the same moment by another request: it is given.
        if (isUniqueViolation(err)) return toView(role);
        throw err;
      }
      await audit.record(who, 'user.role_added', userId, { role: role.name });
      return toView(role);
    },

    /** Takes a role from a person; 404 when they did not have it. */
    async unassign(userId: string, idOrName: string, who: Actor): Promise<void> {
      await userExists(userId);
      const role = await find(idOrName);
      // One click in the console would lock the administrator out (and perhaps everyone).
      if (role.name === 'idp-admin' && who.actor === `user:${userId}`) throw conflict('you cannot take away your own idp-admin role here: ask another administrator, or use the idp CLI');
      const { count } = await prisma.userRole.deleteMany({ where: { userId, roleId: role.id } });
      if (!count) throw notFound(`user ${userId} does not have the role ${role.name}`);
      await audit.record(who, 'user.role_removed', userId, { role: role.name });
    },

    /**
     * Whether any role of the person requires a second factor at sign-in (Role.requireMfa). One
     * query, read from the database on every call (roles are not cached), so a change applies to
     * the very next sign-in.
     */
    async requiresMfa(userId: string): Promise<boolean> {
      return (await prisma.userRole.count({ where: { userId, role: { requireMfa: true } } })) > 0;
    },

    /** What a person's roles give, on every token issued to them for an API that enforces roles. One query. */
    async grantsOf(userId: string): Promise<RoleGrants> {
      const rows = await prisma.userRole.findMany({ where: { userId }, select: { role: { select: { name: true, permissions: true } } } });
      return grantsFrom(rows.map((r) => r.role));
    },

    /** The roles of a machine client, by name. */
    async ofClient(clientId: string): Promise<RoleView[]> {
      await findClient(clientId);
      const rows = await prisma.clientRole.findMany({ where: { clientId }, include: { role: true }, orderBy: { role: { name: 'asc' } } });
      return rows.map((r) => toView(r.role));
    },

    /**
     * Gives a machine client a role (by id or name); giving it again changes nothing. Neither the
     * built-in clients, which sign people in, nor an admin client, whose admin API access roles do
     * not change, take one.
     */
    async assignToClient(clientId: string, idOrName: string, who: Actor): Promise<RoleView> {
      if (clientId === ACCOUNT_CLIENT_ID || clientId === CONSOLE_CLIENT_ID) throw badRequest(`${clientId} is a built-in client that signs people in: it cannot be given roles`);
      if ((await findClient(clientId)).admin) throw badRequest(`client ${clientId} is an admin client: roles do not change its admin API access (a token asked for with admin:read alone is read-only)`);
      const role = await find(idOrName);
      const key = { clientId_roleId: { clientId, roleId: role.id } };
      if (await prisma.clientRole.findUnique({ where: key })) return toView(role);
      try {
        await prisma.clientRole.create({ data: { clientId, roleId: role.id } });
      } catch (err) {
        // Given at the same moment by another request: it is given.
        if (isUniqueViolation(err)) return toView(role);
        throw err;
      }
      await audit.record(who, 'client.role_added', clientId, { role: role.name });
      return toView(role);
    },

    /** Takes a role from a machine client; 404 when it did not have it. */
    async unassignFromClient(clientId: string, idOrName: string, who: Actor): Promise<void> {
      await findClient(clientId);
      const role = await find(idOrName);
      const { count } = await prisma.clientRole.deleteMany({ where: { clientId, roleId: role.id } });
      if (!count) throw notFound(`client ${clientId} does not have the role ${role.name}`);
      await audit.record(who, 'client.role_removed', clientId, { role: role.name });
    },

    /** What a machine client's roles give, on every token it gets for itself (client_credentials) for an API that enforces roles. One query. */
    async grantsOfClient(clientId: string): Promise<RoleGrants> {
      const rows = await prisma.clientRole.findMany({ where: { clientId }, select: { role: { select: { name: true, permissions: true } } } });
      return grantsFrom(rows.map((r) => r.role));
    },
  };
}

export type RoleService = ReturnType<typeof createRoleService>;
