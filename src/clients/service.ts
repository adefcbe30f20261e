import { z } from 'zod';
import { containsText, likeSafePiece, LITERAL_SEARCH_SCAN_LIMIT, type Client, type Dialect, type PrismaClient } from '../db/index.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import type { GrantService } from '../grants/service.ts';
import type { ConfigCache } from '../lib/config-cache.ts';
import { type ClaimMappings, claimMappingsSchema, readClaimMappings } from '../lib/claims.ts';
import { LOOPBACK_HOSTS } from '../lib/constants.ts';
import { hashSecret, isSecretHash, randomId, randomToken, verifySecret } from '../lib/crypto.ts';
import { badRequest, notFound } from '../lib/errors.ts';
import { parseInput } from '../lib/validation.ts';
import { ADMIN_API, ADMIN_SCOPES, OIDC_SCOPES } from '../lib/scopes.ts';

/** The device authorization grant (RFC 8628 §3.4). */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT] as const;

/** The longest refresh-token reuse interval a client may have: long enough for parallel refreshes, short enough to keep reuse detection. */
export const REFRESH_REUSE_MAX_SECONDS = 60;

/** A client's refresh-token reuse interval in seconds, as registered (0: strict rotation). */
export function refreshTokenReuseInterval(metadata: Record<string, unknown>): number {
  const seconds = metadata.refresh_token_reuse_interval;
  return typeof seconds === 'number' && Number.isInteger(seconds) && seconds > 0 ? Math.min(seconds, REFRESH_REUSE_MAX_SECONDS) : 0;
}

const FORBIDDEN_SCHEMES = new Set(['javascript:', 'data:', 'file:', 'vbscript:', 'blob:']);

/** Every URI in client metadata: absolute, no script-bearing scheme, bounded. */
function uriIssues(value: string): string[] {
  if (!URL.canParse(value)) return [`${value} is not an absolute URI`];
  const url = new URL(value);
  const issues: string[] = [];
  if (FORBIDDEN_SCHEMES.has(url.protocol)) issues.push(`${value} uses a forbidden scheme`);
  if (value.includes('#')) issues.push(`${value} must not contain a fragment`);
  if (value.includes('*')) issues.push(`${value} must not contain a wildcard`);
  if (url.username || url.password) issues.push(`${value} must not contain credentials`);
  return issues;
}

/**
 * The registration policy, applied on every path that writes a client (CLI, admin API, dynamic
 * registration). Redirect URIs are compared by exact string match, so they must be exact:
 * https, plain http only on a loopback host, or a private-use scheme for native apps.
 */
export function redirectUriIssues(value: string): string[] {
  const issues = uriIssues(value);
  if (issues.length) return issues;
  const url = new URL(value);
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) return [`${value} must use https (plain http is only allowed for localhost)`];
  if (url.protocol !== 'https:' && url.protocol !== 'http:' && !/^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(url.protocol)) {
    return [`${value} must use https, http on a loopback host, or a private-use scheme in reverse-domain form (com.example.app:/callback)`];
  }
  return [];
}

/**
 * Where a client receives logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.2): we POST
 * to it from the server, so https, or plain http on a loopback host (development), as for
 * redirect URIs; no fragment.
 */
function backchannelLogoutUriIssues(value: string): string[] {
  const issues = uriIssues(value);
  if (issues.length) return issues;
  const url = new URL(value);
  if (url.protocol === 'https:') return [];
  if (url.protocol === 'http:') return LOOPBACK_HOSTS.has(url.hostname) ? [] : [`${value} must use https (plain http is only allowed for localhost)`];
  return [`${value} must use https (or http on a loopback host)`];
}

/** Characters a URL given as a link must not hold (the URL parser would drop or re-encode them silently). */
const LINK_UNSAFE = /[\p{Cc}\s]/u;

/**
 * A link shown to people on the consent and sign-in pages (logo, privacy policy, terms of
 * service, home page): an absolute https URL without credentials, at most 2048 characters.
 * Plain http is refused everywhere, in development too.
 */
export function linkUriIssues(value: string): string[] {
  if (value.length > 2048) return ['must be at most 2048 characters'];
  if (LINK_UNSAFE.test(value)) return ['must not contain spaces or control characters'];
  const url = URL.parse(value);
  if (!url) return ['must be an absolute https URL'];
  if (url.protocol !== 'https:') return [`must use https (${JSON.stringify(url.protocol.slice(0, 20))} is not allowed)`];
  if (url.username || url.password) return ['must not contain credentials'];
  return [];
}

/** The client metadata that links to the app's pages, in the admin API's names and the registered (RFC 7591) ones. */
export const CLIENT_LINKS = { logoUri: 'logo_uri', policyUri: 'policy_uri', tosUri: 'tos_uri', clientUri: 'client_uri' } as const;
type LinkField = keyof typeof CLIENT_LINKS;
const LINK_FIELDS = Object.keys(CLIENT_LINKS) as LinkField[];

const linkSchema = z.string().superRefine((value, ctx) => {
  for (const message of linkUriIssues(value)) ctx.addIssue({ code: 'custom', message });
});

/** Members of a JWK that only a private or symmetric key has: a client registers its public keys only. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** A client's public keys (RFC 7517 JWK Set), for private_key_jwt (RFC 7523) and signed request objects. */
const jwksSchema = z
  .object({
    keys: z
      .array(
        z
          .object({ kty: z.enum(['RSA', 'EC', 'OKP'], { error: 'kty must be RSA, EC or OKP (an asymmetric key)' }), kid: z.string().max(200).optional() })
          .catchall(z.unknown())
          .refine((jwk) => !PRIVATE_JWK_MEMBERS.some((member) => member in jwk), 'must be a public key: a private key never leaves the client'),
      )
      .min(1, 'must hold at least one key')
      .max(10, 'at most 10 keys'),
  })
  .strict();

const backchannelLogoutUriSchema = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  .superRefine((value, ctx) => {
    for (const message of backchannelLogoutUriIssues(value)) ctx.addIssue({ code: 'custom', message });
  });

const redirectUriSchema = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  .superRefine((value, ctx) => {
    for (const message of redirectUriIssues(value)) ctx.addIssue({ code: 'custom', message });
  });

const originSchema = z
  .string()
  .max(2048)
  .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol) && new URL(value).origin === value, 'must be an origin such as https://app.example.com (scheme, host and port only)');

const OIDC_SCOPE_LIST = [...OIDC_SCOPES].join(', ');

/** The OpenID Connect scopes a client may ask for. API scopes are allowed per API (`apis`). */
const scopeSchema = z
  .string()
  .max(2000)
  .transform((s) => [...new Set(s.split(' ').filter(Boolean))])
  .superRefine((scopes, ctx) => {
    for (const scope of scopes.filter((s) => !OIDC_SCOPES.has(s))) {
      ctx.addIssue({
        code: 'custom',
        message: `${JSON.stringify(scope.slice(0, 100))} is not an OpenID Connect scope (${OIDC_SCOPE_LIST}); API scopes are allowed per API: apis {"<API identifier>": ["${scope.slice(0, 100)}"]}, or --api "<API identifier> ${scope.slice(0, 100)}" in the CLI`,
      });
    }
  })
  .transform((scopes) => scopes.join(' '));

const apiScopeName = z
  .string()
  .max(128)
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'scope names are printable ASCII without spaces, quotes or backslashes');

/** API identifier → the scopes of that API the client may receive (RFC 8707 resource indicators). */
const apisSchema = z
  .record(z.string().min(1).max(2048), z.array(apiScopeName).max(200).transform((list) => [...new Set(list)]))
  .refine((apis) => Object.keys(apis).length <= 50, 'at most 50 APIs');

const clientFields = {
  name: z.string().trim().min(1, 'must not be empty').max(200),
  redirectUris: z.array(redirectUriSchema).max(50),
  postLogoutRedirectUris: z.array(redirectUriSchema).max(50),
  allowedOrigins: z.array(originSchema).max(50),
  grantTypes: z.array(z.enum(GRANT_TYPES)).min(1).max(GRANT_TYPES.length),
  scope: scopeSchema,
  apis: apisSchema,
  applicationType: z.enum(['web', 'native']),
  /** The operator's own app: its users are not asked for consent (the grant is still recorded). */
  firstParty: z.boolean(),
  /** People signing in to it must use a second factor (and are taken through adding one). */
  requireMfa: z.boolean().describe('people signing in to this app must use a second factor (those without one are taken through adding one)'),
  /** Public keys the client signs its assertions with (private_key_jwt, RFC 7523): no secret is issued. */
  jwks: jwksSchema.describe('public keys (a JWK Set) the client signs its authentication assertions with (private_key_jwt, RFC 7523); no secret is issued'),
  /** Where the client publishes those keys instead (https). */
  jwksUri: linkSchema.describe('where the client publishes its public keys (an https URL), instead of jwks'),
  /** false: a legacy confidential app that cannot send PKCE may skip it (RFC 9700 §2.1.1 asks it of every client). */
  requirePkce: z.boolean().describe('false: a legacy confidential app that cannot send PKCE may skip it (public clients always use it)'),
  /** RFC 9126 §6: its authorization requests must come through PAR. */
  requirePushedAuthorizationRequests: z.boolean().describe('its authorization requests must be pushed first (PAR, RFC 9126); a plain one is refused'),
  /** RFC 9101 §10.5: its authorization requests must be signed request objects. */
  requireSignedRequestObject: z.boolean().describe('its authorization requests must be signed request objects (JAR, RFC 9101), signed with a key it registered'),
  /** RFC 9449 §5.2: its access tokens must be DPoP-bound (sender-constrained); a request without a proof is refused. */
  dpopBoundAccessTokens: z.boolean().describe('its access tokens must be DPoP-bound (RFC 9449): a token request without a DPoP proof is refused'),
  /**
   * Seconds after a refresh-token rotation in which the rotated-out token may be presented again
   * (two tabs or threads refreshing at once) and get the same successor; 0: strict rotation.
   */
  refreshTokenReuseInterval: z
    .number()
    .int()
    .min(0)
    .max(REFRESH_REUSE_MAX_SECONDS)
    .describe(`seconds (0–${REFRESH_REUSE_MAX_SECONDS}) after a refresh-token rotation in which the rotated-out token may be presented again by this client and gets the same successor, while that is unused; 0 (default): presenting it again revokes the grant`),
  /** OpenID Connect Back-Channel Logout 1.0: where it is told that a session it signed in to has ended. */
  backchannelLogoutUri: backchannelLogoutUriSchema.describe('where the app receives logout tokens when a session it signed in to ends (OpenID Connect Back-Channel Logout; https, or http on a loopback host)'),
  backchannelLogoutSessionRequired: z.boolean().describe('the app needs the sid claim in logout tokens (it is always sent)'),
  /** Claims added to its ID tokens and userinfo responses (src/lib/claims.ts); admin only. */
  claimMappings: claimMappingsSchema.describe(
    'claims added to its ID tokens and userinfo responses: claim name → source (email, email_verified, name, roles, attributes, or attributes.<key>[.<key>…]); at most 20, never a reserved claim (iss, sub, email, …)',
  ),
  /**
   * Its ID tokens carry the person's claims of the granted scopes (email, email_verified, name,
   * updated_at), as userinfo does; otherwise they carry them only when the access token is for an API.
   */
  idTokenUserClaims: z
    .boolean()
    .describe('its ID tokens carry the person’s claims of the granted scopes (email, email_verified, name, updated_at), as userinfo does: for apps that read the user from the ID token (Auth.js)'),
  logoUri: linkSchema.describe("the app's logo, shown on the consent page (an https URL)"),
  policyUri: linkSchema.describe("the app's privacy policy, linked from the consent page (an https URL)"),
  tosUri: linkSchema.describe("the app's terms of service, linked from the consent page (an https URL)"),
  clientUri: linkSchema.describe("the app's home page (an https URL)"),
};

interface ClientShape {
  public: boolean;
  requireSignedRequestObject?: boolean | undefined;
  requirePkce?: boolean | undefined;
  refreshTokenReuseInterval?: number | undefined;
  jwks?: unknown;
  jwksUri?: string | undefined;
  redirectUris: string[];
  grantTypes: string[];
  applicationType?: 'web' | 'native' | undefined;
}

/** A native app's redirect URIs may use private-use schemes; a web app's may not. */
const isWebUri = (uri: string) => /^https?:/.test(uri);

/**
 * A native app (RFC 8252) receives its code on a private-use scheme, a claimed https URI, or
 * plain http on a loopback address at whatever port it could open (§7.3): its loopback redirect
 * URIs match any port. A web app's redirect URIs match exactly.
 */
const applicationTypeOf = (c: ClientShape): 'web' | 'native' => c.applicationType ?? (c.redirectUris.every(isWebUri) ? 'web' : 'native');

function checkConsistency(c: ClientShape, ctx: z.RefinementCtx) {
  const type = applicationTypeOf(c);
  if (type === 'web' && !c.redirectUris.every(isWebUri)) {
    ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: 'private-use schemes are for native apps (applicationType native); a web app uses https, or http on a loopback host' });
  }
  if (type === 'native') {
    for (const uri of c.redirectUris.filter((u) => u.startsWith('https:') && LOOPBACK_HOSTS.has(new URL(u).hostname))) {
      ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: `${uri}: a native app receives codes on loopback addresses over plain http (any port), not https` });
    }
  }
  if (c.grantTypes.includes('authorization_code') && c.redirectUris.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['redirectUris'], message: 'at least one redirect URI is required for the authorization_code grant' });
  }
  if (c.jwks && c.jwksUri) ctx.addIssue({ code: 'custom', path: ['jwksUri'], message: 'give jwks or jwksUri, not both' });
  if (c.requireSignedRequestObject && !c.jwks && !c.jwksUri) ctx.addIssue({ code: 'custom', path: ['requireSignedRequestObject'], message: 'a client signs its request objects with keys it registers: give jwks or jwksUri' });
  if (c.public && c.requirePkce === false) ctx.addIssue({ code: 'custom', path: ['requirePkce'], message: 'a public client always uses PKCE: it has no secret to protect its code' });
  if (c.refreshTokenReuseInterval && !c.grantTypes.includes('refresh_token')) {
    ctx.addIssue({ code: 'custom', path: ['refreshTokenReuseInterval'], message: 'a reuse interval needs the refresh_token grant' });
  }
  if (c.public && (c.jwks || c.jwksUri)) ctx.addIssue({ code: 'custom', path: ['jwks'], message: 'a public client does not authenticate: its keys are not used' });
  if (c.public && c.grantTypes.includes('client_credentials')) {
    ctx.addIssue({ code: 'custom', path: ['grantTypes'], message: 'a public client cannot use client_credentials (it has no secret)' });
  }
  // A refresh token is issued with a person's tokens: a code's, or a device's (RFC 8628 §3.5).
  if (c.grantTypes.includes('refresh_token') && !c.grantTypes.includes('authorization_code') && !c.grantTypes.includes(DEVICE_CODE_GRANT)) {
    ctx.addIssue({ code: 'custom', path: ['grantTypes'], message: `refresh_token requires authorization_code or ${DEVICE_CODE_GRANT}` });
  }
}

export const createClientSchema = z
  .object({
    name: clientFields.name,
    redirectUris: clientFields.redirectUris.default([]),
    postLogoutRedirectUris: clientFields.postLogoutRedirectUris.default([]),
    allowedOrigins: clientFields.allowedOrigins.default([]),
    public: z.boolean().default(false),
    grantTypes: clientFields.grantTypes.default(['authorization_code', 'refresh_token']),
    scope: clientFields.scope.default('openid profile email offline_access'),
    apis: clientFields.apis.default({}),
    applicationType: clientFields.applicationType.optional(),
    firstParty: clientFields.firstParty.default(false),
    requireMfa: clientFields.requireMfa.default(false),
    requirePkce: clientFields.requirePkce.default(true),
    requirePushedAuthorizationRequests: clientFields.requirePushedAuthorizationRequests.default(false),
    dpopBoundAccessTokens: clientFields.dpopBoundAccessTokens.default(false),
    refreshTokenReuseInterval: clientFields.refreshTokenReuseInterval.default(0),
    requireSignedRequestObject: clientFields.requireSignedRequestObject.default(false),
    backchannelLogoutUri: clientFields.backchannelLogoutUri.optional(),
    backchannelLogoutSessionRequired: clientFields.backchannelLogoutSessionRequired.default(false),
    claimMappings: clientFields.claimMappings.default({}),
    idTokenUserClaims: clientFields.idTokenUserClaims.default(false),
    jwks: clientFields.jwks.optional(),
    jwksUri: clientFields.jwksUri.optional(),
    logoUri: clientFields.logoUri.optional(),
    policyUri: clientFields.policyUri.optional(),
    tosUri: clientFields.tosUri.optional(),
    clientUri: clientFields.clientUri.optional(),
  })
  .strict()
  .superRefine(checkConsistency);

export const updateClientSchema = z
  .object({
    name: clientFields.name,
    redirectUris: clientFields.redirectUris,
    postLogoutRedirectUris: clientFields.postLogoutRedirectUris,
    allowedOrigins: clientFields.allowedOrigins,
    grantTypes: clientFields.grantTypes,
    scope: clientFields.scope,
    apis: clientFields.apis,
    applicationType: clientFields.applicationType,
    firstParty: clientFields.firstParty,
    requireMfa: clientFields.requireMfa,
    requirePkce: clientFields.requirePkce,
    requirePushedAuthorizationRequests: clientFields.requirePushedAuthorizationRequests,
    dpopBoundAccessTokens: clientFields.dpopBoundAccessTokens,
    refreshTokenReuseInterval: clientFields.refreshTokenReuseInterval,
    requireSignedRequestObject: clientFields.requireSignedRequestObject,
    // null removes it.
    backchannelLogoutUri: clientFields.backchannelLogoutUri.nullable(),
    backchannelLogoutSessionRequired: clientFields.backchannelLogoutSessionRequired,
    claimMappings: clientFields.claimMappings,
    idTokenUserClaims: clientFields.idTokenUserClaims,
    jwks: clientFields.jwks,
    jwksUri: clientFields.jwksUri,
    // null removes a link.
    logoUri: clientFields.logoUri.nullable(),
    policyUri: clientFields.policyUri.nullable(),
    tosUri: clientFields.tosUri.nullable(),
    clientUri: clientFields.clientUri.nullable(),
  })
  .partial()
  .strict();

export type CreateClientInput = z.input<typeof createClientSchema>;
export type UpdateClientInput = z.input<typeof updateClientSchema>;

/** Registered metadata in oidc-provider's (RFC 7591) vocabulary, never holding a secret. */
export type ClientMetadata = Record<string, unknown> & {
  client_id: string;
  client_name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  allowed_origins: string[];
  grant_types: string[];
  token_endpoint_auth_method: string;
  /** OpenID Connect scopes only. */
  scope: string;
  /** API identifier → the API's scopes this client may receive; absent in registrations stored before it existed. */
  resource_scopes?: Record<string, string[]>;
};

/** What the admin API and the CLI show of a client: never a secret or a hash. */
export interface ClientView {
  clientId: string;
  name: string;
  /** `native`: its loopback redirect URIs match any port (RFC 8252 §7.3). */
  applicationType: 'web' | 'native';
  public: boolean;
  grantTypes: string[];
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  allowedOrigins: string[];
  /** The OpenID Connect scopes it may ask for. */
  scope: string;
  /** The APIs it may get access tokens for, each with the scopes it may receive there. */
  apis: Record<string, string[]>;
  /** An admin client: client_credentials tokens for the admin API. */
  admin: boolean;
  /** The operator's own app: its users are not asked for consent. */
  firstParty: boolean;
  /** People signing in to it must use a second factor. */
  requireMfa: boolean;
  /** How it authenticates at the token endpoint: none (public), client_secret_basic/_post, or private_key_jwt. */
  tokenEndpointAuthMethod: string;
  /** Its public keys (private_key_jwt), or where it publishes them; null otherwise. */
  jwks: { keys: Record<string, unknown>[] } | null;
  jwksUri: string | null;
  /** false: it may skip PKCE (a legacy confidential app). */
  requirePkce: boolean;
  /** Its authorization requests must be pushed first (PAR, RFC 9126). */
  requirePushedAuthorizationRequests: boolean;
  /** Its access tokens must be DPoP-bound (RFC 9449). */
  dpopBoundAccessTokens: boolean;
  /** Its authorization requests must be signed request objects (JAR, RFC 9101). */
  requireSignedRequestObject: boolean;
  /** Seconds after a rotation in which its rotated-out refresh token gets the same successor again; 0: strict. */
  refreshTokenReuseInterval: number;
  /** Where it receives logout tokens (OpenID Connect Back-Channel Logout 1.0), or null. */
  backchannelLogoutUri: string | null;
  /** It needs the sid claim in logout tokens. */
  backchannelLogoutSessionRequired: boolean;
  /** Claim name → source: claims added to its ID tokens and userinfo responses. */
  claimMappings: ClaimMappings;
  /** Its ID tokens carry the person's claims of the granted scopes, as userinfo does. */
  idTokenUserClaims: boolean;
  /** Registered through dynamic client registration (RFC 7591), not by an admin. */
  dynamic: boolean;
  /** Links to the app's logo, privacy policy, terms of service and home page (https URLs), or null. */
  logoUri: string | null;
  policyUri: string | null;
  tosUri: string | null;
  clientUri: string | null;
  disabled: boolean;
  /** Set while a rotated-out secret is still accepted. */
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface CreatedClient {
  client: ClientView;
  /** Shown once, never stored: only its hash is kept. Absent for public clients. */
  clientSecret?: string;
}

/** The origins of a client's http(s) redirect URIs, plus any origins registered explicitly. */
export function clientOrigins(metadata: { redirect_uris?: string[]; allowed_origins?: string[] }): Set<string> {
  const origins = new Set<string>(metadata.allowed_origins ?? []);
  for (const uri of metadata.redirect_uris ?? []) {
    if (/^https?:/.test(uri)) origins.add(new URL(uri).origin);
  }
  return origins;
}

/**
 * The registered links that are valid https URLs; any other (stored before links had to be https)
 * is left out, so that no page ever links to it.
 */
export function clientLinks(metadata: Record<string, unknown>): Partial<Record<(typeof CLIENT_LINKS)[LinkField], string>> {
  const links: Partial<Record<(typeof CLIENT_LINKS)[LinkField], string>> = {};
  for (const key of Object.values(CLIENT_LINKS)) {
    const value = metadata[key];
    if (typeof value === 'string' && !linkUriIssues(value).length) links[key] = value;
  }
  return links;
}

function buildMetadata(clientId: string, c: z.output<typeof createClientSchema>, extra: Record<string, unknown> = {}): ClientMetadata {
  const usesCode = c.grantTypes.includes('authorization_code');
  // The links are what `c` says: one it leaves out is removed.
  const others = Object.fromEntries(
    Object.entries(extra).filter(([key]) => !Object.values<string>(CLIENT_LINKS).includes(key) && !['jwks', 'jwks_uri', 'require_pkce', 'refresh_token_reuse_interval', 'backchannel_logout_uri', 'backchannel_logout_session_required', 'claim_mappings', 'id_token_user_claims'].includes(key)),
  );
  const keys = c.jwks ? { jwks: c.jwks } : c.jwksUri ? { jwks_uri: c.jwksUri } : {};
  // As registered (a registrant names it; an existing client keeps it); otherwise keys mean private_key_jwt.
  const registeredMethod = typeof extra.token_endpoint_auth_method === 'string' ? extra.token_endpoint_auth_method : undefined;
  const authMethod = c.public ? 'none' : (registeredMethod ?? (c.jwks || c.jwksUri ? 'private_key_jwt' : 'client_secret_basic'));
  const links = Object.fromEntries(LINK_FIELDS.flatMap((field) => (c[field] === undefined ? [] : [[CLIENT_LINKS[field], c[field]]])));
  return {
    ...others,
    ...links,
    ...keys,
    client_id: clientId,
    client_name: c.name,
    application_type: applicationTypeOf(c),
    grant_types: c.grantTypes,
    response_types: usesCode ? ['code'] : [],
    redirect_uris: c.redirectUris,
    post_logout_redirect_uris: c.postLogoutRedirectUris,
    token_endpoint_auth_method: authMethod,
    scope: c.scope,
    resource_scopes: c.apis,
    allowed_origins: c.allowedOrigins,
    // Only an opt-out is stored: every other client requires PKCE.
    ...(c.requirePkce ? {} : { require_pkce: false }),
    require_pushed_authorization_requests: c.requirePushedAuthorizationRequests,
    dpop_bound_access_tokens: c.dpopBoundAccessTokens,
    // Only a grace is stored: every other client rotates strictly.
    ...(c.refreshTokenReuseInterval ? { refresh_token_reuse_interval: c.refreshTokenReuseInterval } : {}),
    require_signed_request_object: c.requireSignedRequestObject,
    ...(c.backchannelLogoutUri ? { backchannel_logout_uri: c.backchannelLogoutUri, backchannel_logout_session_required: c.backchannelLogoutSessionRequired } : {}),
    ...(Object.keys(c.claimMappings).length ? { claim_mappings: c.claimMappings } : {}),
    ...(c.idTokenUserClaims ? { id_token_user_claims: true } : {}),
  };
}

function toClientView(row: Client): ClientView {
  const m = JSON.parse(row.metadata) as ClientMetadata;
  const links = clientLinks(m);
  return {
    clientId: row.id,
    name: row.name,
    applicationType: m.application_type === 'native' ? 'native' : 'web',
    public: m.token_endpoint_auth_method === 'none',
    grantTypes: m.grant_types ?? [],
    redirectUris: m.redirect_uris ?? [],
    postLogoutRedirectUris: m.post_logout_redirect_uris ?? [],
    allowedOrigins: m.allowed_origins ?? [],
    scope: m.scope ?? '',
    apis: m.resource_scopes ?? {},
    admin: row.admin,
    firstParty: row.firstParty,
    requireMfa: row.requireMfa,
    tokenEndpointAuthMethod: m.token_endpoint_auth_method ?? 'client_secret_basic',
    jwks: (m.jwks as { keys: Record<string, unknown>[] } | undefined) ?? null,
    jwksUri: typeof m.jwks_uri === 'string' ? m.jwks_uri : null,
    requirePkce: m.require_pkce !== false,
    requirePushedAuthorizationRequests: m.require_pushed_authorization_requests === true,
    dpopBoundAccessTokens: m.dpop_bound_access_tokens === true,
    requireSignedRequestObject: m.require_signed_request_object === true,
    refreshTokenReuseInterval: refreshTokenReuseInterval(m),
    backchannelLogoutUri: typeof m.backchannel_logout_uri === 'string' ? m.backchannel_logout_uri : null,
    backchannelLogoutSessionRequired: m.backchannel_logout_session_required === true,
    claimMappings: readClaimMappings(m.claim_mappings),
    idTokenUserClaims: m.id_token_user_claims === true,
    dynamic: row.dynamic,
    logoUri: links.logo_uri ?? null,
    policyUri: links.policy_uri ?? null,
    tosUri: links.tos_uri ?? null,
    clientUri: links.client_uri ?? null,
    disabled: row.disabled,
    previousSecretExpiresAt: row.previousSecretExpiresAt && row.previousSecretExpiresAt > new Date() ? row.previousSecretExpiresAt : null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export interface ListQuery {
  name?: string;
  limit: number;
  offset: number;
}

export const MAX_SECRET_OVERLAP = 30 * 24 * 3600;

/**
 * The account page's own client (src/http/account/): a public, first-party client of this
 * provider, written at every start (ensureAccountClient) and never changed, disabled or deleted
 * through the admin API or the CLI.
 */
export const ACCOUNT_CLIENT_ID = 'idp-account';
/** Where the account page receives its code, and where it comes back to after signing out of this provider. */
export const ACCOUNT_CLIENT_PATHS = { callback: '/account/callback', signedOut: '/account/signed-out' } as const;

/**
 * The admin console's client: people sign in through it (every sign-in method applies) and get
 * admin API tokens whose scopes their roles (idp-admin, idp-viewer) grant. The only client that
 * reaches the admin API for people; admin clients reach it for themselves (client_credentials).
 */
export const CONSOLE_CLIENT_ID = 'idp-console';
const CONSOLE_CLIENT_PATHS = { callback: '/console/callback', signedOut: '/console/' } as const;

const refuseBuiltIn = (clientId: string) => {
  if (clientId === ACCOUNT_CLIENT_ID) throw badRequest(`${ACCOUNT_CLIENT_ID} is the account page's built-in client: it cannot be changed, disabled or deleted`);
  if (clientId === CONSOLE_CLIENT_ID) throw badRequest(`${CONSOLE_CLIENT_ID} is the admin console's built-in client: it cannot be changed, disabled or deleted`);
};

/** What the client service needs to know of registered APIs. */
export interface ApiCatalogue {
  findByIdentifier(identifier: string): Promise<{ identifier: string; scopes: string[] } | null>;
  listAll(): Promise<{ identifier: string; scopes: string[] }[]>;
}

export function createClientService(
  prisma: PrismaClient,
  grants: GrantService,
  audit: AuditService,
  cache: ConfigCache,
  apis: ApiCatalogue,
  dialect: Dialect,
) {
  async function find(clientId: string): Promise<Client> {
    const row = await prisma.client.findUnique({ where: { id: clientId } });
    if (!row) throw notFound(`no client with id ${clientId}`);
    return row;
  }

  /** Every API named must be registered (and not be the admin API), and define the scopes named. */
  async function checkApis(requested: Record<string, string[]>): Promise<void> {
    for (const [identifier, scopes] of Object.entries(requested)) {
      if (identifier === ADMIN_API) throw badRequest(`apis: ${ADMIN_API} is the admin API; only an admin client (--admin, ?admin=true) can use it`);
      const api = await apis.findByIdentifier(identifier);
      if (!api) throw badRequest(`apis: no API is registered with identifier ${identifier.slice(0, 2048)}`);
      const unknown = scopes.filter((s) => !api.scopes.includes(s));
      if (unknown.length) throw badRequest(`apis.${identifier}: the API does not define ${unknown.join(', ')} (it defines: ${api.scopes.join(' ') || 'no scopes'})`);
    }
  }

  async function write(clientId: string, metadata: ClientMetadata, data: { name: string; secretHash?: string | null; admin?: boolean; firstParty?: boolean; requireMfa?: boolean; dynamic?: boolean; disabled?: boolean }) {
    const origins = [...clientOrigins(metadata)].map((origin) => ({ origin }));
    return prisma.$transaction(async (tx) => {
      await tx.clientOrigin.deleteMany({ where: { clientId } });
      return tx.client.upsert({
        where: { id: clientId },
        create: { id: clientId, metadata: JSON.stringify(metadata), origins: { create: origins }, ...data, secretHash: data.secretHash ?? null },
        update: { metadata: JSON.stringify(metadata), origins: { create: origins }, ...data },
      });
    });
  }

  /**
   * A built-in client as this version and this issuer need it: public (PKCE, no secret), for the
   * authorization code flow, first-party (no consent page), its redirect URIs under the issuer.
   * Run at every start; writes (and makes every instance forget its cached copy) only when
   * something differs, an issuer change say.
   */
  async function ensureBuiltIn(c: { clientId: string; name: string; issuer: string; paths: { callback: string; signedOut: string }; grantTypes: string[]; scope: string }) {
    const metadata: ClientMetadata = {
      client_id: c.clientId,
      client_name: c.name,
      application_type: 'web',
      grant_types: c.grantTypes,
      response_types: ['code'],
      redirect_uris: [`${c.issuer}${c.paths.callback}`],
      post_logout_redirect_uris: [`${c.issuer}${c.paths.signedOut}`],
      token_endpoint_auth_method: 'none',
      scope: c.scope,
      resource_scopes: {},
      allowed_origins: [],
    };
    const existing = await prisma.client.findUnique({ where: { id: c.clientId } });
    const current = existing && existing.metadata === JSON.stringify(metadata) && existing.name === c.name;
    if (current && existing.firstParty && !existing.disabled && !existing.admin && !existing.dynamic && !existing.secretHash) return;
    await write(c.clientId, metadata, { name: c.name, secretHash: null, admin: false, firstParty: true, dynamic: false, disabled: false });
    if (existing) await cache.changed();
  }

  return {
    async create(input: CreateClientInput, who: Actor, opts: { admin?: boolean } = {}): Promise<CreatedClient> {
      if (opts.admin && input.apis && Object.keys(input.apis).length) throw badRequest('apis: an admin client is for the admin API only; register another client for other APIs');
      if (opts.admin && input.firstParty) throw badRequest('firstParty: an admin client signs nobody in, so consent does not apply');
      if (opts.admin && input.requireMfa) throw badRequest('requireMfa: an admin client signs nobody in, so a second factor does not apply');
      if (opts.admin && (input.idTokenUserClaims || (input.claimMappings && Object.keys(input.claimMappings).length))) {
        throw badRequest(`${input.idTokenUserClaims ? 'idTokenUserClaims' : 'claimMappings'}: an admin client signs nobody in, so it gets no ID token to carry claims`);
      }
      // An admin client is a machine: confidential, client_credentials only, for the admin API.
      const c = parseInput(
        createClientSchema,
        opts.admin ? { ...input, public: false, grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [], scope: '', apis: {} } : input,
      );
      await checkApis(c.apis);
      const clientId = randomId();
      // A client that signs with its own keys (private_key_jwt) gets no secret.
      const secret = c.public || c.jwks || c.jwksUri ? undefined : randomToken(32);
      const row = await write(clientId, buildMetadata(clientId, c), { name: c.name, secretHash: secret ? hashSecret(secret) : null, admin: Boolean(opts.admin), firstParty: c.firstParty, requireMfa: c.requireMfa });
      await audit.record(who, 'client.created', clientId, { name: c.name, public: c.public, grantTypes: c.grantTypes, admin: Boolean(opts.admin), firstParty: c.firstParty, requireMfa: c.requireMfa, apis: Object.keys(c.apis) });
      return { client: toClientView(row), ...(secret ? { clientSecret: secret } : {}) };
    },

    /**
     * Stores a client registered through dynamic registration (RFC 7591/7592), which the
     * provider has already validated; our policy is applied on top and the secret is hashed.
     * A registrant never chooses its API access or admin status: what an admin allowed an
     * existing registration is kept across its updates.
     */
    async upsertRegistered(metadata: Record<string, unknown>, who: Actor, gate?: () => Promise<void>): Promise<void> {
      const clientId = String(metadata.client_id);
      const { client_secret: secret, resource_scopes: _apis, api_scopes: _legacy, ...rest } = metadata;
      const existing = await prisma.client.findUnique({ where: { id: clientId }, select: { metadata: true } });
      const c = parseInput(createClientSchema, {
        name: String(metadata.client_name ?? clientId).slice(0, 200),
        redirectUris: metadata.redirect_uris ?? [],
        postLogoutRedirectUris: metadata.post_logout_redirect_uris ?? [],
        allowedOrigins: metadata.allowed_origins ?? [],
        public: metadata.token_endpoint_auth_method === 'none',
        grantTypes: metadata.grant_types ?? ['authorization_code'],
        scope: String(metadata.scope ?? 'openid'),
        applicationType: metadata.application_type === 'native' ? 'native' : 'web',
        apis: existing ? ((JSON.parse(existing.metadata) as ClientMetadata).resource_scopes ?? {}) : {},
        ...(typeof metadata.backchannel_logout_uri === 'string' ? { backchannelLogoutUri: metadata.backchannel_logout_uri } : {}),
        // Its keys: for private_key_jwt, or for signing request objects whatever it authenticates with.
        ...(metadata.jwks !== undefined ? { jwks: metadata.jwks } : {}),
        ...(typeof metadata.jwks_uri === 'string' ? { jwksUri: metadata.jwks_uri } : {}),
        backchannelLogoutSessionRequired: metadata.backchannel_logout_session_required === true,
        // Claim mappings are an admin's (the provider refuses them at registration): kept across the registrant's updates.
        claimMappings: existing ? readClaimMappings((JSON.parse(existing.metadata) as ClientMetadata).claim_mappings) : {},
        idTokenUserClaims: metadata.id_token_user_claims === true,
        // Checked by the provider already (provider.ts); checked again here, as on every path that writes a client.
        ...Object.fromEntries(LINK_FIELDS.map((field) => [field, metadata[CLIENT_LINKS[field]]])),
      });
      assertNoScriptUris(rest);
      // Valid: what must allow the write (an initial access token's use) is taken only now.
      await gate?.();
      // A new registration carries the freshly generated secret; updates never do (see provider.ts).
      await write(clientId, buildMetadata(clientId, c, rest), {
        name: c.name,
        dynamic: true,
        ...(typeof secret === 'string' && !isSecretHash(secret) ? { secretHash: hashSecret(secret) } : {}),
      });
      if (existing) await cache.changed();
      await audit.record(who, existing ? 'client.updated' : 'client.created', clientId, { name: c.name, via: 'dynamic_registration' });
    },

    /**
     * Registrations stored before API access was kept per API: their API scopes become, for each
     * registered API that defines some of them, an allowance of those scopes on that API; the
     * admin API's scopes count only for clients created as admin clients (client_credentials
     * only, no redirect URIs, nothing but admin scopes). Runs at start; a no-op once done.
     */
    async upgradeLegacyRegistrations(): Promise<number> {
      const rows = await prisma.client.findMany({ where: { NOT: { metadata: { contains: '"resource_scopes"' } } } });
      if (!rows.length) return 0;
      const catalogue = (await apis.listAll()).filter((a) => a.identifier !== ADMIN_API);
      for (const row of rows) {
        const m = JSON.parse(row.metadata) as ClientMetadata;
        const scopes = String(m.scope ?? '').split(' ').filter(Boolean);
        const apiScopes = scopes.filter((s) => !OIDC_SCOPES.has(s));
        const admin =
          apiScopes.length > 0 && apiScopes.every((s) => ADMIN_SCOPES.has(s)) && (m.redirect_uris ?? []).length === 0 && JSON.stringify(m.grant_types) === '["client_credentials"]';
        const allowed = admin ? [] : catalogue.map((a) => [a.identifier, a.scopes.filter((s) => apiScopes.includes(s))] as const).filter(([, s]) => s.length);
        const upgraded: ClientMetadata = { ...m, scope: scopes.filter((s) => OIDC_SCOPES.has(s)).join(' '), resource_scopes: Object.fromEntries(allowed) };
        await prisma.client.updateMany({ where: { id: row.id, metadata: row.metadata }, data: { metadata: JSON.stringify(upgraded), admin: row.admin || admin } });
      }
      await cache.changed();
      return rows.length;
    },

    async list(q: ListQuery): Promise<{ items: ClientView[]; total: number }> {
      const { piece, exact } = likeSafePiece(q.name ?? '');
      const where = piece ? { name: containsText(dialect, piece) } : {};
      if (q.name && !exact) {
        const needle = q.name.toLowerCase();
        const rows = await prisma.client.findMany({ where, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: LITERAL_SEARCH_SCAN_LIMIT });
        const matched = rows.filter((c) => c.name.toLowerCase().includes(needle));
        return { items: matched.slice(q.offset, q.offset + q.limit).map(toClientView), total: matched.length };
      }
      const [rows, total] = await Promise.all([
        prisma.client.findMany({ where, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: q.limit, skip: q.offset }),
        prisma.client.count({ where }),
      ]);
      return { items: rows.map(toClientView), total };
    },

    async get(clientId: string): Promise<ClientView> {
      return toClientView(await find(clientId));
    },

    async update(clientId: string, patch: UpdateClientInput, who: Actor): Promise<ClientView> {
      refuseBuiltIn(clientId);
      const changes = parseInput(updateClientSchema, patch);
      const row = await find(clientId);
      const current = toClientView(row);
      const changed = Object.keys(changes).filter((k) => k !== 'name');
      if ((changes.jwks || changes.jwksUri) && row.secretHash) {
        throw badRequest('jwks: this client authenticates with its secret; register a new client to sign with keys (private_key_jwt)');
      }
      if (row.admin && changed.length) {
        throw badRequest(`${changed.join(', ')}: an admin client only uses client_credentials for the admin API; only its name can change`);
      }
      const merged = parseInput(createClientSchema, {
        name: current.name,
        redirectUris: current.redirectUris,
        postLogoutRedirectUris: current.postLogoutRedirectUris,
        allowedOrigins: current.allowedOrigins,
        public: current.public,
        grantTypes: current.grantTypes,
        scope: current.scope,
        apis: current.apis,
        applicationType: current.applicationType,
        firstParty: current.firstParty,
        requireMfa: current.requireMfa,
        requirePkce: current.requirePkce,
        requirePushedAuthorizationRequests: current.requirePushedAuthorizationRequests,
        dpopBoundAccessTokens: current.dpopBoundAccessTokens,
        refreshTokenReuseInterval: current.refreshTokenReuseInterval,
        requireSignedRequestObject: current.requireSignedRequestObject,
        backchannelLogoutSessionRequired: current.backchannelLogoutSessionRequired,
        claimMappings: current.claimMappings,
        idTokenUserClaims: current.idTokenUserClaims,
        ...(current.jwks ? { jwks: current.jwks } : {}),
        ...(current.jwksUri ? { jwksUri: current.jwksUri } : {}),
        ...changes,
        // New keys replace the old ones, whichever way they are given.
        ...(changes.jwks ? { jwksUri: undefined } : {}),
        ...(changes.jwksUri ? { jwks: undefined } : {}),
        // A link set to null is removed; one left out keeps its value.
        ...Object.fromEntries(LINK_FIELDS.map((field) => [field, (changes[field] === undefined ? current[field] : changes[field]) ?? undefined])),
        // Likewise the back-channel logout URI.
        backchannelLogoutUri: (changes.backchannelLogoutUri === undefined ? current.backchannelLogoutUri : changes.backchannelLogoutUri) ?? undefined,
      });
      if (changes.apis) await checkApis(merged.apis);
      // Consent protects people from apps the operator does not vouch for: a registrant is one.
      if (merged.firstParty && row.dynamic) throw badRequest('firstParty: a dynamically registered client cannot be first-party; its users are always asked for consent');
      const updated = await write(clientId, buildMetadata(clientId, merged, JSON.parse(row.metadata) as ClientMetadata), { name: merged.name, firstParty: merged.firstParty, requireMfa: merged.requireMfa });
      await cache.changed();
      await audit.record(who, 'client.updated', clientId, { fields: Object.keys(changes), ...(changes.requireMfa === undefined ? {} : { requireMfa: changes.requireMfa }) });
      return toClientView(updated);
    },

    /** A disabled client cannot authenticate or be used, and loses every grant and token at once. */
    async setDisabled(clientId: string, disabled: boolean, who: Actor): Promise<ClientView> {
      refuseBuiltIn(clientId);
      await find(clientId);
      const row = await prisma.client.update({ where: { id: clientId }, data: { disabled } });
      await cache.changed();
      const revoked = disabled ? await grants.revokeAllForClient(clientId) : 0;
      await audit.record(who, disabled ? 'client.disabled' : 'client.enabled', clientId, disabled ? { grantsRevoked: revoked } : undefined);
      return toClientView(row);
    },

    async delete(clientId: string, who: Actor): Promise<void> {
      refuseBuiltIn(clientId);
      await find(clientId);
      const revoked = await grants.revokeAllForClient(clientId);
      await prisma.client.deleteMany({ where: { id: clientId } });
      await cache.changed();
      await audit.record(who, 'client.deleted', clientId, { grantsRevoked: revoked });
    },

    /**
     * Issues a new secret, shown once. With an overlap, the old secret keeps working until the
     * overlap ends, so that deployments can switch without downtime; without, it stops at once.
     */
    async rotateSecret(clientId: string, overlapSeconds: number, who: Actor): Promise<{ client: ClientView; clientSecret: string }> {
      refuseBuiltIn(clientId);
      const row = await find(clientId);
      if (!row.secretHash) throw badRequest(`client ${clientId} has no secret to rotate: it is a public client, or it signs with its own keys (private_key_jwt)`);
      if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > MAX_SECRET_OVERLAP) {
        throw badRequest(`overlapSeconds: must be a whole number of seconds between 0 and ${MAX_SECRET_OVERLAP}`);
      }
      const secret = randomToken(32);
      const updated = await prisma.client.update({
        where: { id: clientId },
        data: {
          secretHash: hashSecret(secret),
          previousSecretHash: overlapSeconds ? row.secretHash : null,
          previousSecretExpiresAt: overlapSeconds ? new Date(Date.now() + overlapSeconds * 1000) : null,
        },
      });
      await cache.changed();
      await audit.record(who, 'client.secret_rotated', clientId, { overlapSeconds });
      return { client: toClientView(updated), clientSecret: secret };
    },

    /** The account page's client (ACCOUNT_CLIENT_ID): see ensureBuiltIn. */
    async ensureAccountClient(issuer: string, name: string): Promise<void> {
      await ensureBuiltIn({ clientId: ACCOUNT_CLIENT_ID, name, issuer, paths: ACCOUNT_CLIENT_PATHS, grantTypes: ['authorization_code'], scope: 'openid' });
    },

    /** The admin console's client (CONSOLE_CLIENT_ID), likewise; its admin API access comes from its id, never from metadata. */
    async ensureConsoleClient(issuer: string, name: string): Promise<void> {
      await ensureBuiltIn({ clientId: CONSOLE_CLIENT_ID, name, issuer, paths: CONSOLE_CLIENT_PATHS, grantTypes: ['authorization_code', 'refresh_token'], scope: 'openid profile email offline_access' });
    },

    /** Whether `presented` is the client's previous secret, still inside its overlap period. */
    async matchesPreviousSecret(clientId: string, presented: string): Promise<boolean> {
      const row = await prisma.client.findUnique({ where: { id: clientId }, select: { previousSecretHash: true, previousSecretExpiresAt: true } });
      return Boolean(row?.previousSecretHash && row.previousSecretExpiresAt && row.previousSecretExpiresAt > new Date() && verifySecret(presented, row.previousSecretHash));
    },

    /** The enabled client the provider asks for on every request that names one (cached). */
    findEnabled(clientId: string): Promise<Client | null> {
      return cache.get(`client:${clientId}`, async () => {
        const row = await prisma.client.findUnique({ where: { id: clientId } });
        return row && !row.disabled ? row : null;
      });
    },

    /** Whether the client is the operator's own app, whose users are not asked for consent (cached). */
    async isFirstParty(clientId: string): Promise<boolean> {
      return (await this.findEnabled(clientId))?.firstParty ?? false;
    },

    /**
     * Whether people signing in to the client must use a second factor (Client.requireMfa; cached
     * like the rest of the client, so a change made elsewhere is seen within CONFIG_REFRESH_SECONDS).
     * An unknown or disabled client requires nothing here: it cannot sign anyone in anyway.
     */
    async requiresMfa(clientId: string): Promise<boolean> {
      return (await this.findEnabled(clientId))?.requireMfa ?? false;
    },

    /** Whether the client exists, is enabled and is an admin client: read from the database on every admin API call. */
    async adminStatus(clientId: string): Promise<{ enabled: boolean; admin: boolean } | null> {
      const row = await prisma.client.findUnique({ where: { id: clientId }, select: { disabled: true, admin: true } });
      return row && { enabled: !row.disabled, admin: row.admin };
    },

    /** Names of these clients, by id (unknown ids are left out). */
    /** Where each of these clients receives logout tokens, for those that registered it (and are enabled). */
    async backchannelTargets(ids: string[]): Promise<Map<string, { uri: string; alg: string }>> {
      const rows = await prisma.client.findMany({ where: { id: { in: ids }, disabled: false }, select: { id: true, metadata: true } });
      const targets = new Map<string, { uri: string; alg: string }>();
      for (const row of rows) {
        const m = JSON.parse(row.metadata) as ClientMetadata;
        if (typeof m.backchannel_logout_uri !== 'string' || backchannelLogoutUriIssues(m.backchannel_logout_uri).length) continue;
        targets.set(row.id, { uri: m.backchannel_logout_uri, alg: typeof m.id_token_signed_response_alg === 'string' ? m.id_token_signed_response_alg : 'RS256' });
      }
      return targets;
    },

    async names(ids: string[]): Promise<Map<string, string>> {
      const rows = ids.length ? await prisma.client.findMany({ where: { id: { in: ids } }, select: { id: true, name: true } }) : [];
      return new Map(rows.map((c) => [c.id, c.name]));
    },

    /** Whether any enabled client registered this browser origin (CORS preflights name no client; cached). */
    async isRegisteredOrigin(origin: string): Promise<boolean> {
      const hit = await cache.get(`origin:${origin}`, () =>
        prisma.clientOrigin.findFirst({ where: { origin, client: { disabled: false } }, select: { clientId: true } }),
      );
      return hit !== null;
    },
  };
}

/** No script-bearing URI anywhere in the metadata, and no field of absurd size. */
function assertNoScriptUris(metadata: Record<string, unknown>): void {
  const walk = (value: unknown, path: string): void => {
    if (typeof value === 'string') {
      if (value.length > 4096) throw badRequest(`${path}: must be at most 4096 characters`, 'invalid_client_metadata');
      if (/^\s*(javascript|data|vbscript):/i.test(value)) throw badRequest(`${path}: uses a forbidden scheme`, 'invalid_client_metadata');
    } else if (Array.isArray(value)) {
      if (value.length > 100) throw badRequest(`${path}: must have at most 100 entries`, 'invalid_client_metadata');
      value.forEach((v, i) => {
        walk(v, `${path}.${i}`);
      });
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k);
    }
  };
  walk(metadata, '');
}

export type ClientService = ReturnType<typeof createClientService>;
