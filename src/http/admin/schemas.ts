import { z } from 'zod';
import { MAIL_STATUSES } from '../../mail/outbox.ts';

/** Response schemas: what the admin API shows. They list fields explicitly, so nothing else (no secret, no hash) can leak. */
const timestamp = z.iso.datetime();

export const errorSchema = z.object({ error: z.string(), error_description: z.string() }).meta({ id: 'Error' });

export const clientSchema = z
  .object({
    clientId: z.string(),
    name: z.string(),
    applicationType: z.enum(['web', 'native']).describe('native: loopback redirect URIs match any port (RFC 8252 §7.3)'),
    public: z.boolean(),
    grantTypes: z.array(z.string()),
    redirectUris: z.array(z.string()),
    postLogoutRedirectUris: z.array(z.string()),
    allowedOrigins: z.array(z.string()),
    scope: z.string().describe('the OpenID Connect scopes it may ask for'),
    apis: z.record(z.string(), z.array(z.string())).describe('API identifier → the scopes of that API it may receive'),
    admin: z.boolean().describe('an admin client: client_credentials tokens for the admin API'),
    firstParty: z.boolean().describe('the operator’s own app: its users are not asked for consent (the grant is recorded all the same)'),
    dynamic: z.boolean().describe('registered through dynamic client registration (RFC 7591); such a client cannot be first-party'),
    logoUri: z.string().nullable().describe("the app's logo, shown on the consent page (https)"),
    policyUri: z.string().nullable().describe("the app's privacy policy, linked from the consent page (https)"),
    tosUri: z.string().nullable().describe("the app's terms of service, linked from the consent page (https)"),
    clientUri: z.string().nullable().describe("the app's home page (https)"),
    disabled: z.boolean(),
    previousSecretExpiresAt: timestamp.nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Client' });

export const clientWithSecretSchema = z
  .object({ client: clientSchema, clientSecret: z.string().optional().describe('Shown once; only a hash is stored.') })
  .meta({ id: 'ClientWithSecret' });

export const resourceSchema = z
  .object({
    id: z.string(),
    identifier: z.string(),
    name: z.string().nullable(),
    scopes: z.array(z.string()),
    scopeDescriptions: z.record(z.string(), z.string()).describe('scope name → what the scope lets an app do, shown on the consent page; scopes without a description are absent'),
    accessTokenTtl: z.number().int(),
    signingAlg: z.string(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'Api' });

export const userSchema = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string().nullable(),
    emailVerified: z.boolean(),
    disabled: z.boolean(),
    hasPassword: z.boolean(),
    termsAcceptedAt: timestamp.nullable().describe('when the person accepted the terms of use (TERMS_URL) at sign-up or on their invitation; null when they were not asked'),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'User' });

export const grantSchema = z
  .object({
    grantId: z.string(),
    clientId: z.string(),
    clientName: z.string().nullable(),
    scopes: z.array(z.string()),
    apis: z.record(z.string(), z.array(z.string())),
    createdAt: timestamp,
    expiresAt: timestamp.nullable(),
  })
  .meta({ id: 'Grant' });

export const providerSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    issuer: z.string(),
    clientId: z.string(),
    scopes: z.string(),
    buttonLabel: z.string(),
    hostedDomains: z.array(z.string()),
    enabled: z.boolean(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'IdentityProvider' });

export const identitySchema = z
  .object({
    id: z.string(),
    providerId: z.string(),
    issuer: z.string(),
    subject: z.string(),
    email: z.string().nullable(),
    emailVerified: z.boolean(),
    createdAt: timestamp,
    lastLoginAt: timestamp.nullable(),
  })
  .meta({ id: 'FederatedIdentity' });

export const keySchema = z
  .object({
    kid: z.string(),
    alg: z.string(),
    state: z.string().describe('next: published, signs from activatesAt; active: signs; retired: published until removeAfter'),
    createdAt: timestamp,
    activatesAt: timestamp.nullable(),
    retiredAt: timestamp.nullable(),
    removeAfter: timestamp.nullable(),
  })
  .meta({ id: 'SigningKey' });

export const auditEventSchema = z
  .object({
    id: z.string(),
    at: timestamp,
    actor: z.string(),
    action: z.string(),
    target: z.string().nullable(),
    ip: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ id: 'AuditEvent' });

export const mailMessageSchema = z
  .object({
    id: z.string(),
    kind: z.string().describe('what the message is for: password_reset, verify_email, …'),
    recipient: z.string(),
    subject: z.string(),
    status: z.enum(MAIL_STATUSES).describe('pending: waiting for its next attempt; sent: accepted by the SMTP server (its body is erased); failed: MAIL_MAX_ATTEMPTS attempts failed, until an admin retries it'),
    attempts: z.number().int(),
    nextAttemptAt: timestamp.describe('when a pending message is tried next'),
    lastError: z.string().nullable().describe('why the last attempt failed (the SMTP server’s answer, or the connection error)'),
    createdAt: timestamp,
    sentAt: timestamp.nullable(),
  })
  .meta({ id: 'MailMessage' });

export const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), total: z.number().int(), limit: z.number().int(), offset: z.number().int() });

/** A list that is not paged: the same envelope, without limit and offset. */
export const all = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), total: z.number().int() });

export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
};

export const idParam = z.object({ id: z.string().min(1).max(200) });

type Jsonify<T> = T extends Date ? string : T extends (infer U)[] ? Jsonify<U>[] : T extends object ? { [K in keyof T]: Jsonify<T[K]> } : T;

/** Dates become ISO strings, as the response schemas describe them. */
export const json = <T>(value: T): Jsonify<T> => JSON.parse(JSON.stringify(value)) as Jsonify<T>;
