import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ResourceServer, PrismaClient } from '../db/index.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import type { ConfigCache } from '../lib/config-cache.ts';
import { type ClaimMappings, claimMappingsSchema, readClaimMappings } from '../lib/claims.ts';
import { API_SIGNING_ALGS } from '../lib/constants.ts';
import { badRequest, conflict, isUniqueViolation, notFound } from '../lib/errors.ts';
import { parseInput } from '../lib/validation.ts';
import { ADMIN_API, ADMIN_SCOPE_DESCRIPTIONS, ADMIN_SCOPES, OIDC_SCOPES } from '../lib/scopes.ts';

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

/**
 * Characters a line of text shown to people must not hold: control characters, line and
 * paragraph separators, and bidirectional overrides and isolates (which could make a description
 * read differently from what it says).
 */
const UNSAFE_TEXT = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;

/** What a scope lets an app do, in words the consent page shows: one line of plain text. */
const scopeDescription = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .refine((s) => !UNSAFE_TEXT.test(s), 'must not contain control characters');

/** One scope an API defines, with what it lets an app do (optional). */
export interface ScopeDefinition {
  name: string;
  description?: string | undefined;
}

const describedScope = z
  .object({ name: scopeToken, description: scopeDescription.optional().describe('what the scope lets an app do, shown on the consent page (1 to 200 characters)') })
  .strict();

/** A scope name, or a name with its description. */
const scopeItem = z.union([scopeToken, describedScope], { error: 'must be a scope name or a {"name", "description"} object' });

/**
 * A space-separated string of names (CLI), or an array (JSON) whose items are names or
 * `{ "name", "description" }` objects, mixed as one likes. Always a de-duplicated list of
 * definitions after parsing (itself valid input: the admin API's body is parsed twice).
 */
const scopesSchema = z
  .union([z.string().max(4000).transform((s) => s.split(/\s+/).filter(Boolean)).pipe(z.array(scopeToken).max(200)), z.array(scopeItem).max(200)], {
    error: 'must be a space-separated string of scope names, or an array of names and {"name", "description"} objects',
  })
  .transform((items): ScopeDefinition[] => items.map((item) => (typeof item === 'string' ? { name: item } : item)))
  .superRefine((list, ctx) => {
    const described = new Map<string, string>();
    for (const { name, description } of list) {
      if (description === undefined) continue;
      if (described.has(name) && described.get(name) !== description) ctx.addIssue({ code: 'custom', message: `${name} is given twice with different descriptions` });
      described.set(name, description);
    }
  })
  .transform((list) => {
    const byName = new Map<string, ScopeDefinition>();
    for (const { name, description } of list) {
      const seen = byName.get(name);
      if (!seen) byName.set(name, description === undefined ? { name } : { name, description });
      else if (description !== undefined) seen.description = description;
    }
    return [...byName.values()];
  });

const SCOPES_HELP =
  'The scopes the API defines: a space-separated string of names, or an array whose items are names or {"name", "description"} objects (mixed allowed). A description says what the scope lets an app do; the consent page shows it.';

const CLAIM_MAPPINGS_HELP =
  'claims added to a person’s access tokens: claim name → source (email, email_verified, name, roles, attributes, or attributes.<key>[.<key>…]); at most 20, never a reserved claim (iss, sub, scope, email, …), nor roles while rolesClaim is on';

const ttlSchema = z.number().int().min(30, 'must be at least 30 seconds').max(24 * 3600, 'must be at most 86400 seconds (24 h)');

export const createResourceSchema = z
  .object({
    identifier: identifierSchema,
    name: z.string().trim().min(1).max(200).optional(),
    scopes: scopesSchema.default([]).describe(SCOPES_HELP),
    accessTokenTtl: ttlSchema.optional(),
    signingAlg: z.enum(API_SIGNING_ALGS).default('RS256'),
    enforceRoles: z.boolean().default(false).describe("a person's access token, or a machine client's own, carries only the scopes their roles grant"),
    rolesClaim: z.boolean().default(false).describe('access tokens carry a `roles` claim: the names of the person’s roles, or of the machine client’s'),
    claimMappings: claimMappingsSchema.default({}).describe(CLAIM_MAPPINGS_HELP),
  })
  .strict();

export const updateResourceSchema = z
  .object({
    name: z.string().trim().min(1).max(200).nullable(),
    scopes: scopesSchema.describe(`${SCOPES_HELP} Replaces the API's scopes and their descriptions together: a scope given without a description loses the one it had.`),
    accessTokenTtl: ttlSchema,
    signingAlg: z.enum(API_SIGNING_ALGS),
    enforceRoles: z.boolean(),
    rolesClaim: z.boolean(),
    claimMappings: claimMappingsSchema.describe(`${CLAIM_MAPPINGS_HELP}. Replaces the API's mappings.`),
  })
  .partial()
  .strict();

export type CreateResourceInput = z.input<typeof createResourceSchema>;
export type UpdateResourceInput = z.input<typeof updateResourceSchema>;

export interface ResourceView {
  id: string;
  identifier: string;
  name: string | null;
  scopes: string[];
  /** Scope name → what it lets an app do; scopes without a description are absent (own keys only). */
  scopeDescriptions: Record<string, string>;
  accessTokenTtl: number;
  signingAlg: string;
  enforceRoles: boolean;
  rolesClaim: boolean;
  /** Claim name → source: claims added to a person's access tokens (src/lib/claims.ts). */
  claimMappings: ClaimMappings;
  createdAt: Date;
  updatedAt: Date;
}

/** What the consent page says of an API an app asks for: its name, and what its scopes let the app do. */
export interface ApiDescription {
  identifier: string;
  name: string | null;
  /** Scope name → description; scopes without a description are absent (own keys only). */
  scopeDescriptions: Record<string, string>;
}

const scopeNames = (list: ScopeDefinition[]) => list.map((s) => s.name).join(' ');

/** The stored form of the descriptions: a JSON object, name → description. */
const storedDescriptions = (list: ScopeDefinition[]) => JSON.stringify(Object.fromEntries(list.flatMap((s) => (s.description === undefined ? [] : [[s.name, s.description]]))));

/**
 * The descriptions of these scopes, read back: an object without a prototype, so that a scope
 * named like an Object method (`constructor`) never reads as described when it is not.
 */
function descriptionsOf(scopes: string[], stored: string): Record<string, string> {
  const descriptions = Object.create(null) as Record<string, string>;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    return descriptions;
  }
  if (!parsed || typeof parsed !== 'object') return descriptions;
  for (const name of scopes) {
    const description: unknown = Object.hasOwn(parsed, name) ? (parsed as Record<string, unknown>)[name] : undefined;
    if (typeof description === 'string') descriptions[name] = description;
  }
  return descriptions;
}

function toView(r: ResourceServer): ResourceView {
  const scopes = r.scopes.split(' ').filter(Boolean);
  return {
    id: r.id,
    identifier: r.identifier,
    name: r.name,
    scopes,
    scopeDescriptions: descriptionsOf(scopes, r.scopeDescriptions),
    accessTokenTtl: r.accessTokenTtl,
    signingAlg: r.signingAlg,
    // The admin API always enforces roles for people (an admin client's access comes from its admin flag).
    enforceRoles: r.enforceRoles || r.identifier === ADMIN_API,
    rolesClaim: r.rolesClaim,
    claimMappings: readClaimMappings(r.claimMappings),
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

export function createResourceService(prisma: PrismaClient, audit: AuditService, cache: ConfigCache, defaults: { accessTokenTtl: number }) {
  async function find(id: string): Promise<ResourceServer> {
    const row = await prisma.resourceServer.findUnique({ where: { id } });
    if (!row) throw notFound(`no API with id ${id}`);
    return row;
  }

  /** The API's own `roles` claim (rolesClaim) is not mapped over. */
  const checkRolesClaim = (rolesClaim: boolean, mappings: ClaimMappings) => {
    if (rolesClaim && Object.hasOwn(mappings, 'roles')) {
      throw badRequest('claimMappings.roles: roles is a reserved claim of this API (rolesClaim is on, so its tokens carry the role names as roles); map it under another name, or turn rolesClaim off');
    }
  };

  const reserved = (row: ResourceServer) => {
    if (row.identifier === ADMIN_API) throw badRequest(`${ADMIN_API} is the admin API itself and cannot be changed or deleted`);
  };

  return {
    async create(input: CreateResourceInput, who: Actor): Promise<ResourceView> {
      const data = parseInput(createResourceSchema, input);
      if (data.identifier === ADMIN_API) throw conflict(`${ADMIN_API} is reserved for the admin API`);
      checkRolesClaim(data.rolesClaim, data.claimMappings);
      try {
        const row = await prisma.resourceServer.create({
          data: {
            id: randomUUID(),
            identifier: data.identifier,
            name: data.name ?? null,
            scopes: scopeNames(data.scopes),
            scopeDescriptions: storedDescriptions(data.scopes),
            accessTokenTtl: data.accessTokenTtl ?? defaults.accessTokenTtl,
            signingAlg: data.signingAlg,
            enforceRoles: data.enforceRoles,
            rolesClaim: data.rolesClaim,
            claimMappings: JSON.stringify(data.claimMappings),
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
      const definitions = [...ADMIN_SCOPES].map((name) => ({ name, description: ADMIN_SCOPE_DESCRIPTIONS[name] }));
      const scopes = scopeNames(definitions);
      const scopeDescriptions = storedDescriptions(definitions);
      // Run at every start: writes (and makes every instance forget its cached copy) only when
      // a new version brings new admin scopes or new words for them.
      const existing = await prisma.resourceServer.findUnique({ where: { identifier: ADMIN_API }, select: { scopes: true, scopeDescriptions: true } });
      if (existing?.scopes === scopes && existing.scopeDescriptions === scopeDescriptions) return;
      await prisma.resourceServer.upsert({
        where: { identifier: ADMIN_API },
        create: { id: randomUUID(), identifier: ADMIN_API, name: 'Admin API', scopes, scopeDescriptions, accessTokenTtl: 5 * 60, signingAlg: 'RS256' },
        update: { scopes, scopeDescriptions },
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
      const current = await find(id);
      reserved(current);
      checkRolesClaim(data.rolesClaim ?? current.rolesClaim, data.claimMappings ?? readClaimMappings(current.claimMappings));
      const { scopes, claimMappings, ...rest } = data;
      // New scopes replace the descriptions too: a scope given without one loses the one it had.
      const row = await prisma.resourceServer.update({
        where: { id },
        data: {
          ...rest,
          ...(scopes ? { scopes: scopeNames(scopes), scopeDescriptions: storedDescriptions(scopes) } : {}),
          ...(claimMappings ? { claimMappings: JSON.stringify(claimMappings) } : {}),
        },
      });
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

    /**
     * For the consent page: the name of each of these APIs and what its scopes let an app do, in
     * the order asked, unknown identifiers left out. Read through the same cache as token
     * requests (which have usually just read these APIs when the page shows): what it does not
     * hold is read in one query, and kept.
     */
    async describe(identifiers: string[]): Promise<ApiDescription[]> {
      const missing: string[] = [];
      let rows: Promise<Map<string, ResourceServer>> | undefined;
      // Every miss of this call is known once the lookups below have been made (synchronously):
      // the query runs after them, once, for all of them.
      const load = async (identifier: string) => {
        missing.push(identifier);
        rows ??= Promise.resolve().then(async () => {
          const found = await prisma.resourceServer.findMany({ where: { identifier: { in: missing } } });
          return new Map(found.map((r) => [r.identifier, r]));
        });
        const row = (await rows).get(identifier);
        return row ? toView(row) : null;
      };
      const views = await Promise.all([...new Set(identifiers)].map((identifier) => cache.get<ResourceView>(`api:${identifier}`, () => load(identifier))));
      return views.flatMap((api) => (api ? [{ identifier: api.identifier, name: api.name, scopeDescriptions: api.scopeDescriptions }] : []));
    },
  };
}

export type ResourceService = ReturnType<typeof createResourceService>;
