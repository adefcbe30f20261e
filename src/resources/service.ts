import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ResourceServer, PrismaClient } from '../db/index.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import type { ConfigCache } from '../lib/config-cache.ts';
import { API_SIGNING_ALGS } from '../lib/constants.ts';
import { badRequest, conflict, isUniqueViolation, notFound } from '../lib/errors.ts';
import { parseInput } from '../lib/validation.ts';
import { ADMIN_API, ADMIN_SCOPES, OIDC_SCOPES } from '../lib/scopes.ts';

const scopeToken = z
  .string()
  .max(128)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'scope names are printable ASCII without spaces, quotes or backslashes')
  .refine((s) => !OIDC_SCOPES.has(s), 'OpenID Connect scopes (openid, profile, email, offline_access) cannot be API scopes');

/** RFC 8707: an absolute URI without a fragment. */
const identifierSchema = z
  .string()
  .max(2048)
  .refine((value) => URL.canParse(value), 'must be an absolute URI')
  .refine((value) => !value.includes('#'), 'must not contain a fragment')
  .refine((value) => !/^\s*(javascript|data|vbscript):/i.test(value), 'uses a forbidden scheme');

/** A space-separated string (CLI) or an array (JSON); always a de-duplicated array after parsing. */
const scopesSchema = z
  .union([z.string().max(4000).transform((s) => s.split(/\s+/).filter(Boolean)), z.array(z.string())])
  .pipe(z.array(scopeToken).max(200))
  .transform((list) => [...new Set(list)]);

const ttlSchema = z.number().int().min(30, 'must be at least 30 seconds').max(24 * 3600, 'must be at most 86400 seconds (24 h)');

export const createResourceSchema = z
  .object({
    identifier: identifierSchema,
    name: z.string().trim().min(1).max(200).optional(),
    scopes: scopesSchema.default([]),
    accessTokenTtl: ttlSchema.optional(),
    signingAlg: z.enum(API_SIGNING_ALGS).default('RS256'),
  })
  .strict();

export const updateResourceSchema = z
  .object({ name: z.string().trim().min(1).max(200).nullable(), scopes: scopesSchema, accessTokenTtl: ttlSchema, signingAlg: z.enum(API_SIGNING_ALGS) })
  .partial()
  .strict();

export type CreateResourceInput = z.input<typeof createResourceSchema>;
export type UpdateResourceInput = z.input<typeof updateResourceSchema>;

export interface ResourceView {
  id: string;
  identifier: string;
  name: string | null;
  scopes: string[];
  accessTokenTtl: number;
  signingAlg: string;
  createdAt: Date;
  updatedAt: Date;
}

function toView(r: ResourceServer): ResourceView {
  return { ...r, scopes: r.scopes.split(' ').filter(Boolean) };
}

export function createResourceService(prisma: PrismaClient, audit: AuditService, cache: ConfigCache, defaults: { accessTokenTtl: number }) {
  async function find(id: string): Promise<ResourceServer> {
    const row = await prisma.resourceServer.findUnique({ where: { id } });
    if (!row) throw notFound(`no API with id ${id}`);
    return row;
  }

  const reserved = (row: ResourceServer) => {
    if (row.identifier === ADMIN_API) throw badRequest(`${ADMIN_API} is the admin API itself and cannot be changed or deleted`);
  };

  return {
    async create(input: CreateResourceInput, who: Actor): Promise<ResourceView> {
      const data = parseInput(createResourceSchema, input);
      if (data.identifier === ADMIN_API) throw conflict(`${ADMIN_API} is reserved for the admin API`);
      try {
        const row = await prisma.resourceServer.create({
          data: {
            id: randomUUID(),
            identifier: data.identifier,
            name: data.name ?? null,
            scopes: data.scopes.join(' '),
            accessTokenTtl: data.accessTokenTtl ?? defaults.accessTokenTtl,
            signingAlg: data.signingAlg,
          },
        });
        await audit.record(who, 'resource.created', row.id, { identifier: row.identifier });
        return toView(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`an API with identifier ${data.identifier} already exists`);
        throw err;
      }
    },

    /** The admin API is registered like any other API, so its tokens are ordinary JWT access tokens. */
    async ensureAdminApi(): Promise<void> {
      const scopes = [...ADMIN_SCOPES].join(' ');
      // Run at every start: writes (and makes every instance forget its cached copy) only when
      // a new version brings new admin scopes.
      const existing = await prisma.resourceServer.findUnique({ where: { identifier: ADMIN_API }, select: { scopes: true } });
      if (existing?.scopes === scopes) return;
      await prisma.resourceServer.upsert({
        where: { identifier: ADMIN_API },
        create: { id: randomUUID(), identifier: ADMIN_API, name: 'Admin API', scopes, accessTokenTtl: 5 * 60, signingAlg: 'RS256' },
        update: { scopes },
      });
      if (existing) await cache.changed();
    },

    async list(q: { limit: number; offset: number }): Promise<{ items: ResourceView[]; total: number }> {
      const [rows, total] = await Promise.all([
        prisma.resourceServer.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: q.limit, skip: q.offset }),
        prisma.resourceServer.count(),
      ]);
      return { items: rows.map(toView), total };
    },

    async get(id: string): Promise<ResourceView> {
      return toView(await find(id));
    },

    async update(id: string, patch: UpdateResourceInput, who: Actor): Promise<ResourceView> {
      const data = parseInput(updateResourceSchema, patch);
      reserved(await find(id));
      const { scopes, ...rest } = data;
      const row = await prisma.resourceServer.update({ where: { id }, data: { ...rest, ...(scopes ? { scopes: scopes.join(' ') } : {}) } });
      await cache.changed();
      await audit.record(who, 'resource.updated', id, { fields: Object.keys(data) });
      return toView(row);
    },

    async delete(id: string, who: Actor): Promise<void> {
      const row = await find(id);
      reserved(row);
      await prisma.resourceServer.deleteMany({ where: { id } });
      await cache.changed();
      await audit.record(who, 'resource.deleted', id, { identifier: row.identifier });
    },

    /** The longest access-token lifetime of any API (how long a retired signing key must stay published). */
    async longestAccessTokenTtl(): Promise<number> {
      return (await prisma.resourceServer.aggregate({ _max: { accessTokenTtl: true } }))._max.accessTokenTtl ?? 0;
    },

    /** Every API's identifier and scopes (for upgrades of stored client registrations). */
    async listAll(): Promise<{ identifier: string; scopes: string[] }[]> {
      const rows = await prisma.resourceServer.findMany({ select: { identifier: true, scopes: true } });
      return rows.map((r) => ({ identifier: r.identifier, scopes: r.scopes.split(' ').filter(Boolean) }));
    },

    /** On every token request for an API: served from the process's cache. */
    findByIdentifier(identifier: string): Promise<ResourceView | null> {
      return cache.get(`api:${identifier}`, async () => {
        const row = await prisma.resourceServer.findUnique({ where: { identifier } });
        return row ? toView(row) : null;
      });
    },
  };
}

export type ResourceService = ReturnType<typeof createResourceService>;
