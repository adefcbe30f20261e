import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Config } from '../../config.ts';
import { count, described, errorResponses, example } from './schemas.ts';

/** What the settings route reads: the configuration, and the languages of the messages catalogue. */
export interface ServerSettings {
  config: Pick<Config, 'issuer' | 'brand' | 'signup' | 'passwords' | 'ttl' | 'defaultLocale' | 'keys' | 'google' | 'auditRetentionDays' | 'mfa'>;
  locales: readonly string[];
}

const seconds = (value: number, words: string) => example(count, value).describe(`${words}, in seconds`);
const url = (value: string) => example(z.string().nullable(), value);

/** What an admin may see of the configuration: never a secret (no client secret, no SMTP URL, no key material). */
const settingsSchema = z
  .object({
    issuer: example(z.string(), 'https://login.example.com').describe('ISSUER'),
    brand: z
      .object({
        productName: example(z.string().nullable(), 'Example Sign-in').describe('PRODUCT_NAME'),
        colour: example(z.string(), '#2563eb').describe('BRAND_COLOR'),
        logoUrl: url('/assets/logo.svg').describe('BRAND_LOGO_URL'),
        faviconUrl: url('/assets/favicon.svg').describe('BRAND_FAVICON_URL'),
        supportUrl: url('https://example.com/help').describe('SUPPORT_URL'),
        termsUrl: url('https://example.com/terms').describe('TERMS_URL'),
        privacyUrl: url('https://example.com/privacy').describe('PRIVACY_URL'),
      })
      .describe('what the pages show of the brand (null: not set)'),
    signup: z
      .object({
        mode: z.enum(['closed', 'invite', 'open']).describe('SIGNUP: closed (admins create accounts), invite (people an admin invited), open (anyone)'),
        emailDomains: example(z.array(z.string()), ['example.com']).describe('SIGNUP_EMAIL_DOMAINS (empty: any)'),
        requireVerifiedEmail: z.boolean().describe('REQUIRE_VERIFIED_EMAIL'),
        verificationTtl: seconds(86_400, 'EMAIL_VERIFICATION_TTL: how long a verification link works'),
        passwordMinLength: example(count, 8).describe('PASSWORD_MIN_LENGTH'),
      })
      .describe('who may create an account, and how'),
    mfa: z
      .enum(['optional', 'required'])
      .describe('MFA: the second factor at sign-in; optional (people who set one up, and applications or roles that require one), required (everyone)'),
    tokens: z
      .object({
        accessToken: seconds(600, 'ACCESS_TOKEN_TTL: access tokens (an API may set its own)'),
        idToken: seconds(600, 'ID_TOKEN_TTL: ID tokens'),
        refreshToken: seconds(1_209_600, 'REFRESH_TOKEN_TTL: refresh tokens, from the sign-in'),
        refreshTokenIdle: seconds(604_800, 'REFRESH_TOKEN_IDLE_TTL: a refresh token unused for this long expires'),
        authorizationCode: seconds(60, 'AUTHORIZATION_CODE_TTL: authorization codes'),
        session: seconds(1_209_600, 'SESSION_TTL: sign-in sessions'),
      })
      .describe('lifetimes'),
    languages: z.object({
      default: example(z.string(), 'en').describe('DEFAULT_LOCALE'),
      available: example(z.array(z.string()), ['en', 'ko']).describe('the languages with a messages file'),
    }),
    keys: z.object({
      prepublicationSeconds: seconds(900, 'KEY_PREPUBLICATION_SECONDS: how long a new signing key is published before it signs'),
      rotationDays: example(z.number().min(0), 0).describe('KEY_ROTATION_DAYS: automatic rotation when the newest key is this old (0: only on demand)'),
    }),
    google: z
      .object({
        configured: z.boolean().describe('GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET are set'),
        hostedDomains: example(z.array(z.string()), []).describe('GOOGLE_HOSTED_DOMAINS'),
      })
      .describe('"Continue with Google" from the environment (not listed under /providers)'),
    auditRetentionDays: example(count, 90).describe('AUDIT_RETENTION_DAYS'),
  })
  .meta({ id: 'Settings' });

export const settingsRoutes: FastifyPluginAsyncZod<{ settings: ServerSettings }> = async (app, { settings: { config, locales } }) => {
  const { brand, signup, ttl, keys, google } = config;
  const settings: z.infer<typeof settingsSchema> = {
    issuer: config.issuer,
    brand: {
      productName: brand.productName ?? null,
      colour: brand.colour,
      logoUrl: brand.logoUrl ?? null,
      faviconUrl: brand.faviconUrl ?? null,
      supportUrl: brand.supportUrl ?? null,
      termsUrl: brand.termsUrl ?? null,
      privacyUrl: brand.privacyUrl ?? null,
    },
    signup: { mode: signup.mode, emailDomains: [...signup.emailDomains], requireVerifiedEmail: signup.requireVerifiedEmail, verificationTtl: signup.verificationTtl, passwordMinLength: config.passwords.minLength },
    mfa: config.mfa,
    tokens: { accessToken: ttl.accessToken, idToken: ttl.idToken, refreshToken: ttl.refreshToken, refreshTokenIdle: ttl.refreshTokenIdle, authorizationCode: ttl.authorizationCode, session: ttl.session },
    languages: { default: config.defaultLocale, available: [...locales] },
    keys: { prepublicationSeconds: keys.prepublicationSeconds, rotationDays: keys.rotationDays },
    google: { configured: Boolean(google), hostedDomains: [...(google?.hostedDomains ?? [])] },
    auditRetentionDays: config.auditRetentionDays,
  };

  app.get('/settings', {
    config: { scope: 'admin:read' },
    schema: {
      tags: ['settings'],
      summary: 'The server’s configuration an admin may see (set by environment variables; read-only)',
      description: 'Each field names the environment variable that sets it; a change applies when the server restarts. Secrets are never shown.',
      response: { 200: described(settingsSchema, 'The settings'), ...errorResponses({}) },
    },
    handler: async () => settings,
  });
};
