import { z } from 'zod';
import type { PrismaClient } from '../db/index.ts';
import { hashSecret, randomToken } from '../lib/crypto.ts';
import { parseInput } from '../lib/validation.ts';

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Redirect URIs are compared by exact string match, so they must be exact: absolute, no
 * fragment, https, plain http only on a loopback address, or a private-use scheme for native apps.
 */
const redirectUriSchema = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  .superRefine((value, ctx) => {
    if (!URL.canParse(value)) return void ctx.addIssue({ code: 'custom', message: `${value} is not an absolute URI` });
    const url = new URL(value);
    if (value.includes('#')) ctx.addIssue({ code: 'custom', message: `${value} must not contain a fragment` });
    if (value.includes('*')) ctx.addIssue({ code: 'custom', message: `${value} must not contain a wildcard` });
    if (['javascript:', 'data:', 'file:', 'vbscript:'].includes(url.protocol)) {
      ctx.addIssue({ code: 'custom', message: `${value} uses a forbidden scheme` });
    } else if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
      ctx.addIssue({ code: 'custom', message: `${value} must use https (plain http is only allowed for localhost)` });
    } else if (url.username || url.password) {
      ctx.addIssue({ code: 'custom', message: `${value} must not contain credentials` });
    }
  });

const originSchema = z
  .string()
  .max(2048)
  .refine((value) => URL.canParse(value) && new URL(value).origin === value, 'must be an origin such as https://app.example.com (scheme, host and port only)');

const scopeSchema = z
  .string()
  .max(2000)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E ]*$/, 'scope names are printable ASCII without quotes or backslashes')
  .transform((s) => [...new Set(s.split(' ').filter(Boolean))].join(' '));

const createClientInput = z
  .object({
    name: z.string().trim().min(1, 'must not be empty').max(200),
    redirectUris: z.array(redirectUriSchema).max(50).default([]),
    postLogoutRedirectUris: z.array(redirectUriSchema).max(50).default([]),
    allowedOrigins: z.array(originSchema).max(50).default([]),
    public: z.boolean().default(false),
    grantTypes: z.array(z.enum(GRANT_TYPES)).min(1).max(3).default(['authorization_code', 'refresh_token']),
    scope: scopeSchema.default('openid profile email offline_access'),
  })
  .superRefine((c, ctx) => {
    if (c.grantTypes.includes('authorization_code') && c.redirectUris.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: 'at least one redirect URI is required for the authorization_code grant' });
    }
    if (c.public && c.grantTypes.includes('client_credentials')) {
      ctx.addIssue({ code: 'custom', path: ['grantTypes'], message: 'a public client cannot use client_credentials (it has no secret)' });
    }
    if (c.grantTypes.includes('refresh_token') && !c.grantTypes.includes('authorization_code')) {
      ctx.addIssue({ code: 'custom', path: ['grantTypes'], message: 'refresh_token requires authorization_code' });
    }
  });

export type CreateClientInput = z.input<typeof createClientInput>;

/** Registered metadata in oidc-provider's (RFC 7591) vocabulary, never holding a secret. */
export type ClientMetadata = Record<string, unknown> & { client_id: string; client_name: string };

/** The origins of a client's http(s) redirect URIs, plus any origins registered explicitly. */
export function clientOrigins(metadata: { redirect_uris?: string[]; allowed_origins?: string[] }): Set<string> {
  const origins = new Set<string>(metadata.allowed_origins ?? []);
  for (const uri of metadata.redirect_uris ?? []) {
    if (/^https?:/.test(uri)) origins.add(new URL(uri).origin);
  }
  return origins;
}

export interface CreatedClient {
  clientId: string;
  /** Shown once, never stored: only its hash is kept. Absent for public clients. */
  clientSecret?: string;
  metadata: ClientMetadata;
}

export function createClientService(prisma: PrismaClient) {
  return {
    async create(input: CreateClientInput): Promise<CreatedClient> {
      const c = parseInput(createClientInput, input);
      const clientId = randomToken(16);
      const secret = c.public ? undefined : randomToken(32);
      const usesCode = c.grantTypes.includes('authorization_code');
      const nativeRedirect = c.redirectUris.some((u) => !/^https?:/.test(u));
      const metadata: ClientMetadata = {
        client_id: clientId,
        client_name: c.name,
        application_type: nativeRedirect ? 'native' : 'web',
        grant_types: c.grantTypes,
        response_types: usesCode ? ['code'] : [],
        redirect_uris: c.redirectUris,
        post_logout_redirect_uris: c.postLogoutRedirectUris,
        token_endpoint_auth_method: c.public ? 'none' : 'client_secret_basic',
        scope: c.scope,
        allowed_origins: c.allowedOrigins,
      };
      await prisma.client.create({
        data: {
          id: clientId,
          name: c.name,
          metadata: JSON.stringify(metadata),
          secretHash: secret ? hashSecret(secret) : null,
          origins: { create: [...clientOrigins(metadata as never)].map((origin) => ({ origin })) },
        },
      });
      return { clientId, ...(secret ? { clientSecret: secret } : {}), metadata };
    },

    /** Whether any enabled client registered this browser origin (CORS preflights name no client). */
    async isRegisteredOrigin(origin: string): Promise<boolean> {
      const hit = await prisma.clientOrigin.findFirst({ where: { origin, client: { disabled: false } }, select: { clientId: true } });
      return hit !== null;
    },
  };
}

export type ClientService = ReturnType<typeof createClientService>;
