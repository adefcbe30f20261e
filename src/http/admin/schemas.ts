import { z } from 'zod';
import { MAIL_STATUSES } from '../../mail/outbox.ts';

/**
 * A value the OpenAPI document shows for a field or a request body (JSON Schema `examples`), so
 * that the samples of the docs page read like real data, not like what Swagger UI makes up from
 * the type alone (negative counts, dates thousands of years away). Documentation only: what the
 * API accepts and returns stays the same.
 */
export const example = <T extends z.ZodType>(schema: T, value: z.input<T>): T => schema.meta({ examples: [value] });

/** A response with the words the OpenAPI document gives it (the docs page shows them instead of "Default Response"). */
export const described = <T extends z.ZodType>(schema: T, description: string): T => schema.meta({ description });

/** Response schemas: what the admin API shows. They list fields explicitly, so nothing else (no secret, no hash) can leak. */
export const timestamp = example(z.iso.datetime(), '2026-12-01T09:30:00.000Z');

/** How many of something there are: never negative. */
export const count = z.number().int().min(0);

const MAX_LIMIT = 200;
const MAX_OFFSET = 1_000_000;

const CLIENT_ID = 'pX2k9QvTm4LwZ7cRb8sNyD';
const EMAIL = 'alice@example.com';
const API = 'https://api.example.com';
const uuid = (value: string) => example(z.string(), value);

const errorSchema = z
  .object({ error: example(z.string(), 'invalid_request'), error_description: example(z.string(), 'body.name: must not be empty') })
  .meta({ id: 'Error' });

const ERRORS = {
  400: 'Invalid request: the error says which field and why',
  401: 'Missing or invalid access token',
  403: 'The token lacks the needed scope',
} as const;

/**
 * The error responses of a route, each with its words: 400, 401 and 403 on every route, and the
 * others a route may answer with what they mean there, e.g. `errorResponses({ 404: 'No such client' })`.
 */
export const errorResponses = <S extends { 404?: string; 409?: string }>(specific: S) => {
  const describe = (words: string) => described(errorSchema, words);
  const own = Object.fromEntries(Object.entries(specific).map(([status, words]) => [status, describe(String(words))])) as { [K in keyof S]-?: typeof errorSchema };
  return { 400: describe(ERRORS[400]), 401: describe(ERRORS[401]), 403: describe(ERRORS[403]), ...own };
};

export const clientSchema = z
  .object({
    clientId: example(z.string(), CLIENT_ID),
    name: example(z.string(), 'My App'),
    applicationType: z.enum(['web', 'native']).describe('native: loopback redirect URIs match any port (RFC 8252 §7.3)'),
    public: z.boolean(),
    grantTypes: example(z.array(z.string()), ['authorization_code', 'refresh_token']),
    redirectUris: example(z.array(z.string()), ['https://app.example.com/callback']),
    postLogoutRedirectUris: example(z.array(z.string()), ['https://app.example.com/']),
    allowedOrigins: example(z.array(z.string()), []),
    scope: example(z.string(), 'openid profile email offline_access').describe('the OpenID Connect scopes it may ask for'),
    apis: example(z.record(z.string(), z.array(z.string())), { [API]: ['read'] }).describe('API identifier → the scopes of that API it may receive'),
    admin: z.boolean().describe('an admin client: client_credentials tokens for the admin API'),
    firstParty: z.boolean().describe('the operator’s own app: its users are not asked for consent (the grant is recorded all the same)'),
    requireMfa: z.boolean().describe('people signing in to this app must use a second factor (those without one are taken through adding one)'),
    tokenEndpointAuthMethod: example(z.string(), 'client_secret_basic').describe('none (public), client_secret_basic or client_secret_post (a secret), or private_key_jwt (its own keys)'),
    jwks: example(z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).nullable(), null).describe('its public keys, for private_key_jwt (RFC 7523)'),
    jwksUri: example(z.string().nullable(), null).describe('where it publishes its public keys (https), instead of jwks'),
    requirePkce: z.boolean().describe('false: a legacy confidential app that may skip PKCE'),
    requirePushedAuthorizationRequests: z.boolean().describe('its authorization requests must be pushed first (PAR, RFC 9126)'),
    dpopBoundAccessTokens: z.boolean().describe('its access tokens must be DPoP-bound (RFC 9449)'),
    refreshTokenReuseInterval: example(z.number().int(), 0).describe('seconds after a refresh-token rotation in which the rotated-out token gets the same successor again; 0: strict rotation'),
    requireSignedRequestObject: z.boolean().describe('its authorization requests must be signed request objects (JAR, RFC 9101)'),
    backchannelLogoutUri: example(z.string().nullable(), null).describe('where it receives logout tokens when a session it signed in to ends (OpenID Connect Back-Channel Logout 1.0)'),
    backchannelLogoutSessionRequired: z.boolean().describe('it needs the sid claim in logout tokens (always sent)'),
    claimMappings: example(z.record(z.string(), z.string()), { department: 'attributes.department' }).describe('claim name → source: claims added to its ID tokens and userinfo responses'),
    idTokenUserClaims: z.boolean().describe('its ID tokens carry the person’s claims of the granted scopes (email, email_verified, name, updated_at), as userinfo does'),
    dynamic: z.boolean().describe('registered through dynamic client registration (RFC 7591); such a client cannot be first-party'),
    logoUri: example(z.string().nullable(), 'https://app.example.com/logo.png').describe("the app's logo, shown on the consent page (https)"),
    policyUri: example(z.string().nullable(), 'https://app.example.com/privacy').describe("the app's privacy policy, linked from the consent page (https)"),
    tosUri: example(z.string().nullable(), 'https://app.example.com/terms').describe("the app's terms of service, linked from the consent page (https)"),
    clientUri: example(z.string().nullable(), 'https://app.example.com').describe("the app's home page (https)"),
    disabled: z.boolean(),
    previousSecretExpiresAt: timestamp.nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Client' });

export const clientWithSecretSchema = z
  .object({ client: clientSchema, clientSecret: example(z.string(), 'kV3u9yQe0Rz7sT1wLm4pXb8cNa2fHd6gJi5oUr0tYqE').optional().describe('Shown once; only a hash is stored.') })
  .meta({ id: 'ClientWithSecret' });

export const resourceSchema = z
  .object({
    id: uuid('5a8e2c71-0f3b-4d9a-b6e4-2c7d1f9a3e58'),
    identifier: example(z.string(), API),
    name: example(z.string().nullable(), 'Documents'),
    scopes: example(z.array(z.string()), ['read', 'write']),
    scopeDescriptions: example(z.record(z.string(), z.string()), { read: 'Read your documents', write: 'Change your documents' }).describe('scope name → what the scope lets an app do, shown on the consent page; scopes without a description are absent'),
    accessTokenTtl: example(z.number().int(), 600).describe('seconds its access tokens live'),
    signingAlg: example(z.string(), 'RS256'),
    enforceRoles: z.boolean().describe("a person's access token, or a machine client's own, carries only the scopes their roles grant (always true of the admin API, for people)"),
    rolesClaim: z.boolean().describe('access tokens carry a `roles` claim: the names of the person’s roles, or of the machine client’s'),
    claimMappings: example(z.record(z.string(), z.string()), { 'https://example.com/department': 'attributes.department' }).describe('claim name → source: claims added to a person’s access tokens'),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Api' });

export const roleSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    permissions: z.record(z.string(), z.array(z.string())).describe('API identifier → the scopes of that API the role grants'),
    builtIn: z.boolean().describe('idp-admin or idp-viewer: name and permissions fixed, cannot be deleted'),
    requireMfa: z.boolean().describe('people with this role must sign in with a second factor (those without one are taken through adding one)'),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Role' });

export const userSchema = z
  .object({
    id: uuid('9b2f4e6a-1c3d-4a5b-8e7f-0d1c2b3a4f5e'),
    email: example(z.string(), EMAIL),
    name: example(z.string().nullable(), 'Alice'),
    emailVerified: z.boolean(),
    disabled: z.boolean(),
    hasPassword: z.boolean(),
    termsAcceptedAt: timestamp.nullable().describe('when the person accepted the terms of use (TERMS_URL) at sign-up or on their invitation; null when they were not asked'),
    attributes: example(z.record(z.string(), z.unknown()), { department: 'Sales', employee: { number: 4711 } }).describe('custom attributes, which claim mappings put into tokens'),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'User' });

export const grantSchema = z
  .object({
    grantId: example(z.string(), 'Hq4sV8nX2bT6yK0wP3rJ7mC1dF5gL9zA'),
    clientId: example(z.string(), CLIENT_ID),
    clientName: example(z.string().nullable(), 'My App'),
    scopes: example(z.array(z.string()), ['openid', 'profile', 'email', 'offline_access']),
    apis: example(z.record(z.string(), z.array(z.string())), { [API]: ['read'] }),
    createdAt: timestamp,
    expiresAt: timestamp.nullable(),
  })
  .meta({ id: 'Grant' });

export const providerSchema = z
  .object({
    id: example(z.string(), 'google'),
    name: example(z.string(), 'Google'),
    issuer: example(z.string(), 'https://accounts.google.com'),
    clientId: example(z.string(), '123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com'),
    scopes: example(z.string(), 'openid email profile'),
    buttonLabel: example(z.string(), 'Continue with Google'),
    hostedDomains: example(z.array(z.string()), ['example.com']),
    enabled: z.boolean(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'IdentityProvider' });

export const identitySchema = z
  .object({
    id: uuid('3c7a9e1f-5b2d-4f8c-a6e0-7d4b1c9f2a63'),
    providerId: example(z.string(), 'google'),
    issuer: example(z.string(), 'https://accounts.google.com'),
    subject: example(z.string(), '109876543210987654321'),
    email: example(z.string().nullable(), EMAIL),
    emailVerified: z.boolean(),
    createdAt: timestamp,
    lastLoginAt: timestamp.nullable(),
  })
  .meta({ id: 'FederatedIdentity' });

const factorSchema = z
  .object({
    id: uuid('5e1b8d3a-7c4f-4a2e-9b6d-2f8a0c3e1d74'),
    type: example(z.enum(['totp', 'passkey']), 'totp').describe('totp: an authenticator app; passkey: a WebAuthn credential'),
    name: example(z.string(), 'Phone').describe('the name the person gave it; may be empty'),
    createdAt: timestamp,
    lastUsedAt: timestamp.nullable(),
  })
  .meta({ id: 'SecondFactor' });

export const keySchema = z
  .object({
    kid: uuid('e4d1a7b2-6c9f-4e3a-8b5d-1f0c7a2e9d64'),
    alg: example(z.string(), 'RS256'),
    state: example(z.string(), 'active').describe('next: published, signs from activatesAt; active: signs; retired: published until removeAfter'),
    createdAt: timestamp,
    activatesAt: timestamp.nullable(),
    retiredAt: timestamp.nullable(),
    removeAfter: timestamp.nullable(),
  })
  .meta({ id: 'SigningKey' });

export const auditEventSchema = z
  .object({
    id: uuid('7f3b5d9e-2a4c-4e6f-b8a1-c3e5d7f9a1b2'),
    at: timestamp,
    actor: example(z.string(), `client:${CLIENT_ID}`),
    action: example(z.string(), 'client.created'),
    target: example(z.string().nullable(), CLIENT_ID),
    ip: example(z.string().nullable(), '203.0.113.7'),
    details: example(z.record(z.string(), z.unknown()).nullable(), { name: 'My App' }),
  })
  .meta({ id: 'AuditEvent' });

export const mailMessageSchema = z
  .object({
    id: uuid('1d6f8b3a-9e2c-4a7d-b5f1-8c0e3a6d9b24'),
    kind: example(z.string(), 'verify_email').describe('what the message is for: password_reset, verify_email, …'),
    recipient: example(z.string(), EMAIL),
    subject: example(z.string(), 'Verify your email address'),
    status: z.enum(MAIL_STATUSES).describe('pending: waiting for its next attempt; sent: accepted by the SMTP server (its body is erased); failed: MAIL_MAX_ATTEMPTS attempts failed, until an admin retries it'),
    attempts: example(count, 1),
    nextAttemptAt: timestamp.describe('when a pending message is tried next'),
    lastError: example(z.string().nullable(), '421 4.3.2 Service not available, try again later').describe('why the last attempt failed (the SMTP server’s answer, or the connection error)'),
    createdAt: timestamp,
    sentAt: timestamp.nullable(),
  })
  .meta({ id: 'MailMessage' });

const total = example(count, 1).describe('how many there are in all (with the filters given)');

export const page = <T extends z.ZodType>(item: T) =>
  z.object({
    items: z.array(item),
    total,
    limit: example(z.number().int().min(1).max(MAX_LIMIT), 50).describe('the most items a page holds'),
    offset: example(z.number().int().min(0).max(MAX_OFFSET), 0).describe('how many items come before this page'),
  });

/** A list that is not paged: the same envelope, without limit and offset. */
export const all = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), total });

export const factorsSchema = all(factorSchema)
  .extend({ recoveryCodesLeft: example(count, 10).describe('unused recovery codes') })
  .meta({ id: 'SecondFactors' });

export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(50),
  offset: z.coerce.number().int().min(0).max(MAX_OFFSET).default(0),
};

export const idParam = z.object({ id: z.string().min(1).max(200) });

type Jsonify<T> = T extends Date ? string : T extends (infer U)[] ? Jsonify<U>[] : T extends object ? { [K in keyof T]: Jsonify<T[K]> } : T;

/** Dates become ISO strings, as the response schemas describe them. */
export const json = <T>(value: T): Jsonify<T> => JSON.parse(JSON.stringify(value)) as Jsonify<T>;
