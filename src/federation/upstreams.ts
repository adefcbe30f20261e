import { z } from 'zod';
import type { IdentityProvider, PrismaClient } from '../db/index.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import type { Config } from '../config.ts';
import { decrypt, encrypt } from '../lib/crypto.ts';
import { badRequest, conflict, isUniqueViolation, notFound } from '../lib/errors.ts';
import { LOOPBACK_HOSTS } from '../lib/constants.ts';
import type { ConfigCache } from '../lib/config-cache.ts';
import { parseInput } from '../lib/validation.ts';

const GOOGLE = {
  id: 'google',
  name: 'Google',
  issuer: 'https://accounts.google.com',
  scopes: 'openid email profile',
  buttonLabel: 'Continue with Google',
} as const;

const PURPOSE = 'identity-provider-secrets';

/** An upstream provider as the login flow uses it, secret decrypted. */
export interface Upstream {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes: string;
  buttonLabel: string;
  hostedDomains: string[];
  /** Changes whenever the configuration does, so that cached discovery is never stale. */
  version: string;
}

/** What the admin API and the CLI show: never the client secret. */
export interface ProviderView {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  scopes: string;
  buttonLabel: string;
  hostedDomains: string[];
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const issuerSchema = z
  .string()
  .max(2048)
  .refine((v) => URL.canParse(v) && !v.includes('#') && !new URL(v).search, 'must be an absolute URL without query or fragment')
  .refine((v) => {
    const url = new URL(v);
    return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname));
  }, 'must use https (plain http only on a loopback host)')
  .transform((v) => v.replace(/\/+$/, ''));

const domainsSchema = z
  .union([z.string().transform((s) => s.split(/[\s,]+/).filter(Boolean)), z.array(z.string())])
  .pipe(z.array(z.string().max(253).regex(/^[a-z0-9.-]+$/i, 'must be a domain name')).max(50))
  .transform((list) => [...new Set(list.map((d) => d.toLowerCase()))]);

const scopesSchema = z
  .string()
  .max(1000)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E ]*$/, 'scope names are printable ASCII')
  .transform((s) => [...new Set(s.split(' ').filter(Boolean))].join(' '))
  .refine((s) => s.split(' ').includes('openid'), 'must include openid');

const fields = {
  name: z.string().trim().min(1).max(100),
  issuer: issuerSchema,
  clientId: z.string().min(1).max(500),
  clientSecret: z.string().min(1).max(500),
  scopes: scopesSchema,
  buttonLabel: z.string().trim().min(1).max(100),
  hostedDomains: domainsSchema,
  enabled: z.boolean(),
};

export const createProviderSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'must be a lower-case slug (letters, digits, dashes; at most 40)'),
    preset: z.enum(['google']).optional().describe('fills issuer, scopes, name and button label with Google’s'),
    name: fields.name.optional(),
    issuer: fields.issuer.optional(),
    clientId: fields.clientId,
    clientSecret: fields.clientSecret,
    scopes: fields.scopes.optional(),
    buttonLabel: fields.buttonLabel.optional(),
    hostedDomains: fields.hostedDomains.default([]),
    enabled: fields.enabled.default(true),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (!p.preset && !p.issuer) ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'is required (or use preset: google)' });
    if (!p.preset && !p.name) ctx.addIssue({ code: 'custom', path: ['name'], message: 'is required (or use preset: google)' });
  });

export const updateProviderSchema = z.object(fields).partial().strict();

export type CreateProviderInput = z.input<typeof createProviderSchema>;
export type UpdateProviderInput = z.input<typeof updateProviderSchema>;

function toView(row: IdentityProvider): ProviderView {
  const { clientSecretEnc: _secret, hostedDomains, ...rest } = row;
  return { ...rest, hostedDomains: hostedDomains.split(' ').filter(Boolean) };
}

/** The config cache's entry for the enabled providers' buttons. */
const BUTTONS = 'upstream-buttons';

/**
 * Upstream OpenID Connect providers are data: rows configured through the admin API and the
 * CLI, plus Google when GOOGLE_CLIENT_ID/SECRET are set. Client secrets are encrypted at rest.
 * The login page's buttons are kept by the config cache, so every change here tells it.
 */
export function createUpstreamService(prisma: PrismaClient, audit: AuditService, cache: ConfigCache, config: Pick<Config, 'google'>, encryptionSecret: () => Promise<string>) {
  async function find(id: string): Promise<IdentityProvider> {
    const row = await prisma.identityProvider.findUnique({ where: { id } });
    if (!row) throw notFound(`no identity provider with id ${id}`);
    return row;
  }

  const fromEnv = (): Upstream | undefined =>
    config.google && {
      ...GOOGLE,
      issuer: config.google.issuer,
      clientId: config.google.clientId,
      clientSecret: config.google.clientSecret,
      hostedDomains: [...config.google.hostedDomains],
      version: 'env',
    };

  const reservedByEnv = (id: string) => {
    if (config.google && id === GOOGLE.id) throw conflict('the google provider is configured by GOOGLE_* environment variables; change it there');
  };

  return {
    async create(input: CreateProviderInput, who: Actor): Promise<ProviderView> {
      const p = parseInput(createProviderSchema, input);
      reservedByEnv(p.id);
      const preset = p.preset === 'google' ? GOOGLE : undefined;
      try {
        const row = await prisma.identityProvider.create({
          data: {
            id: p.id,
            name: p.name ?? preset!.name,
            issuer: p.issuer ?? preset!.issuer,
            clientId: p.clientId,
            clientSecretEnc: encrypt(p.clientSecret, await encryptionSecret(), PURPOSE),
            scopes: p.scopes ?? preset?.scopes ?? 'openid email profile',
            buttonLabel: p.buttonLabel ?? preset?.buttonLabel ?? `Continue with ${p.name}`,
            hostedDomains: p.hostedDomains.join(' '),
            enabled: p.enabled,
          },
        });
        await cache.changed();
        await audit.record(who, 'identity_provider.created', row.id, { issuer: row.issuer });
        return toView(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`an identity provider with id ${p.id} already exists`);
        throw err;
      }
    },

    async list(): Promise<ProviderView[]> {
      return (await prisma.identityProvider.findMany({ orderBy: { createdAt: 'asc' } })).map(toView);
    },

    async get(id: string): Promise<ProviderView> {
      return toView(await find(id));
    },

    async update(id: string, patch: UpdateProviderInput, who: Actor): Promise<ProviderView> {
      const p = parseInput(updateProviderSchema, patch);
      if (!Object.keys(p).length) throw badRequest('nothing to update');
      await find(id);
      const { clientSecret, hostedDomains, ...rest } = p;
      const row = await prisma.identityProvider.update({
        where: { id },
        data: {
          ...rest,
          ...(clientSecret ? { clientSecretEnc: encrypt(clientSecret, await encryptionSecret(), PURPOSE) } : {}),
          ...(hostedDomains ? { hostedDomains: hostedDomains.join(' ') } : {}),
        },
      });
      await cache.changed();
      await audit.record(who, 'identity_provider.updated', id, { fields: Object.keys(p) });
      return toView(row);
    },

    async delete(id: string, who: Actor): Promise<void> {
      await find(id);
      await prisma.identityProvider.deleteMany({ where: { id } });
      await cache.changed();
      await audit.record(who, 'identity_provider.deleted', id);
    },

    /** The buttons on the login page, in order: Google from the environment first. No secret is read. Google's follows its own guidelines. */
    async buttons(): Promise<{ id: string; label: string; google: boolean }[]> {
      const env = fromEnv();
      const rows = (await cache.get(BUTTONS, () => prisma.identityProvider.findMany({ where: { enabled: true }, orderBy: { createdAt: 'asc' }, select: { id: true, buttonLabel: true, issuer: true } }))) ?? [];
      const fromDb = rows.filter((r) => !env || r.id !== env.id).map((r) => ({ id: r.id, label: r.buttonLabel, google: r.issuer === GOOGLE.issuer }));
      return env ? [{ id: env.id, label: env.buttonLabel, google: true }, ...fromDb] : fromDb;
    },

    /** One enabled provider, its client secret decrypted, for the upstream leg of a sign-in. */
    async findEnabled(id: string): Promise<Upstream | undefined> {
      const env = fromEnv();
      if (env?.id === id) return env;
      const r = await prisma.identityProvider.findUnique({ where: { id } });
      if (!r?.enabled) return undefined;
      return {
        id: r.id,
        name: r.name,
        issuer: r.issuer,
        clientId: r.clientId,
        clientSecret: decrypt(r.clientSecretEnc, await encryptionSecret(), PURPOSE),
        scopes: r.scopes,
        buttonLabel: r.buttonLabel,
        hostedDomains: r.hostedDomains.split(' ').filter(Boolean),
        version: r.updatedAt.toISOString(),
      };
    },
  };
}

export type UpstreamService = ReturnType<typeof createUpstreamService>;
