import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { PrismaClient } from '../db/index.ts';
import type { ResourceServer } from '../generated/prisma/client.ts';
import { conflict, isUniqueViolation } from '../lib/errors.ts';
import { parseInput } from '../lib/validation.ts';

export const SIGNING_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;

const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'scope names are printable ASCII without spaces, quotes or backslashes').max(128);

/** RFC 8707: an absolute URI without a fragment. */
const identifierSchema = z
  .string()
  .max(2048)
  .refine((value) => URL.canParse(value), 'must be an absolute URI')
  .refine((value) => !value.includes('#'), 'must not contain a fragment');

const createResourceInput = z.object({
  identifier: identifierSchema,
  name: z.string().trim().min(1).max(200).optional(),
  scopes: z
    .string()
    .transform((s) => s.split(/\s+/).filter(Boolean))
    .pipe(z.array(scopeToken).max(200))
    .transform((list) => [...new Set(list)]),
  accessTokenTtl: z.number().int().min(30, 'must be at least 30 seconds').max(24 * 3600, 'must be at most 86400 seconds (24 h)').optional(),
  signingAlg: z.enum(SIGNING_ALGS).default('RS256'),
});

export type CreateResourceInput = z.input<typeof createResourceInput>;

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

export function createResourceService(prisma: PrismaClient, defaults: { accessTokenTtl: number }) {
  return {
    async create(input: CreateResourceInput): Promise<ResourceView> {
      const data = parseInput(createResourceInput, input);
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
        return toView(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`an API with identifier ${data.identifier} already exists`);
        throw err;
      }
    },

    async findByIdentifier(identifier: string): Promise<ResourceView | null> {
      const row = await prisma.resourceServer.findUnique({ where: { identifier } });
      return row ? toView(row) : null;
    },
  };
}

export type ResourceService = ReturnType<typeof createResourceService>;
