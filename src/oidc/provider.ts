import { hkdfSync } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { JWK } from 'jose';
import type { MfaPolicy } from '../mfa/policy.ts';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ArtifactStore } from '../artifacts/store.ts';
import type { SessionDevices } from '../account/devices.ts';
import type { AuditService } from '../audit/service.ts';
import type { BackchannelLogout } from '../clients/backchannel-logout.ts';
import type { ClientService } from '../clients/service.ts';
import type { ResourceService } from '../resources/service.ts';
import type { RoleGrants, RoleService } from '../roles/service.ts';
import type { UserService } from '../users/service.ts';
import type { LoginThrottle } from '../users/throttle.ts';
import type { Metrics } from '../metrics.ts';
import { CLIENT_LINKS, clientOrigins, DEVICE_CODE_GRANT, linkUriIssues, REFRESH_REUSE_MAX_SECONDS, refreshTokenReuseInterval } from '../clients/service.ts';
import { claimMappingsSchema, mapClaims, readClaimMappings, type ClaimSubject } from '../lib/claims.ts';
import { problems } from '../lib/validation.ts';
import { ASYMMETRIC_ALGS } from '../lib/constants.ts';
import { randomId, sha256 } from '../lib/crypto.ts';
import { isDatabaseUnavailable, UNAVAILABLE_BODY } from '../lib/db-errors.ts';
import { createAdapterFactory, rememberGrant, type ClientStore } from './adapter.ts';
import { MAPPED_CLAIMS, patchBackchannelLogout, patchClientModel, patchMappedClaims, wrapGrantHandler, type RegisteredMetadata } from './internals.ts';
import { refreshTokenReuse } from './refresh-reuse.ts';
import { ADMIN_API, ADMIN_SCOPES, OIDC_SCOPES } from '../lib/scopes.ts';

/** What the provider needs of the product: narrow ports, each implemented by a service. */
interface ProviderPorts {
  /** The people who sign in (claims for ID tokens and userinfo). */
  accounts: Pick<UserService, 'findActive'>;
  /** The APIs access tokens are issued for. */
  apis: Pick<ResourceService, 'findByIdentifier'>;
  /** What the roles of people and of machine clients grant, for APIs that enforce roles. */
  roles: Pick<RoleService, 'grantsOf' | 'grantsOfClient'>;
  /** Registered clients: read, registered dynamically, and their previous secrets. */
  clients: ClientStore & Pick<ClientService, 'matchesPreviousSecret'>;
  /** Where every protocol artifact and grant is kept. */
  artifacts: ArtifactStore;
  /** Windowed counters shared by every instance (sign-ins started per address). */
  counters: Pick<LoginThrottle, 'hit'>;
  audit: Pick<AuditService, 'record'>;
  /** Which browser and address each browser session is used from (the account page lists them). */
  devices: Pick<SessionDevices, 'signedIn' | 'seen'>;
  /** Who must sign in with a second factor (everyone, per client, per role). */
  mfaPolicy: MfaPolicy;
  /** Back-channel logout: the clients of a session that ended are told (queued, with retries). */
  logouts: Pick<BackchannelLogout, 'sessionsEnded'>;
}

export interface ProviderDeps {
  config: Config;
  jwks: JWK[];
  cookieSecrets: readonly string[];
  ports: ProviderPorts;
  pages: ProviderPages;
  log: Logger;
  metrics?: Metrics;
}

/** The provider's endpoints; the Fastify host hands these paths (and what is below them) to it. */
export const PROVIDER_ROUTES = {
  authorization: '/authorize',
  token: '/token',
  userinfo: '/userinfo',
  jwks: '/jwks',
  revocation: '/token/revocation',
  introspection: '/token/introspection',
  end_session: '/session/end',
  pushed_authorization_request: '/par',
  registration: '/register',
  // RFC 8628: the device asks here for its codes; the person types the user code at /device.
  device_authorization: '/device/auth',
  code_verification: '/device',
} as const;

export const INTERACTION_PATH = '/interaction';

/** The `acr` of a login: with a password here, with a password and a second factor, or through an upstream provider. */
export const ACR = { password: 'urn:idp:acr:password', mfa: 'urn:idp:acr:mfa', federated: 'urn:idp:acr:federated' } as const;

/** Endpoints whose CORS answer depends on the calling client's registered origins. */
export const CLIENT_CORS_ROUTES: ReadonlySet<string> = new Set([
  PROVIDER_ROUTES.token,
  PROVIDER_ROUTES.userinfo,
  PROVIDER_ROUTES.revocation,
  PROVIDER_ROUTES.introspection,
  PROVIDER_ROUTES.pushed_authorization_request,
  PROVIDER_ROUTES.device_authorization,
]);

/**
 * The longest value each authorization request parameter may have (every other: 4096). An
 * anonymous request is stored for the life of its interaction, so its size is bounded before it is.
 */
const PARAM_LIMITS: Readonly<Record<string, number>> = { state: 2048, nonce: 2048, login_hint: 512, ui_locales: 256, acr_values: 512, scope: 2048, id_token_hint: 8192 };
const PARAM_LIMIT = 4096;

function checkParamSizes(ctx: KoaContextWithOIDC) {
  const params = ctx.oidc.params as Record<string, unknown>;
  for (const [name, value] of Object.entries(params)) {
    const limit = PARAM_LIMITS[name] ?? PARAM_LIMIT;
    if (typeof value === 'string' && value.length > limit) {
      // An oversized state is not echoed back either.
      if (name === 'state') params.state = undefined;
      throw new errors.InvalidRequest(`${name} must be at most ${limit} characters`);
    }
  }
}

/**
 * RFC 9700 §2.1.1: a client that does not use PKCE (a legacy confidential client an admin let skip
 * it) is protected from code injection by the OpenID Connect nonce instead, so its authorization
 * requests without a code challenge must be OpenID Connect requests with a nonce.
 */
function checkNonceWithoutPkce(ctx: KoaContextWithOIDC) {
  const { client, params, route } = ctx.oidc;
  if ((route !== 'authorization' && route !== 'pushed_authorization_request') || !client || params?.code_challenge) return;
  if (client.metadata().require_pkce !== false) return;
  const openid = typeof params?.scope === 'string' && params.scope.split(' ').includes('openid');
  if (!openid || typeof params?.nonce !== 'string' || !params.nonce) {
    throw new errors.InvalidRequest('without PKCE (code_challenge), an authorization request must use the openid scope and a nonce');
  }
}

/** Every authorization, pushed and device request, before anything is stored. */
function checkRequest(ctx: KoaContextWithOIDC) {
  checkParamSizes(ctx);
  checkNonceWithoutPkce(ctx);
}

/** A page the provider shows, rendered by the host (src/http/provider-pages.ts). */
interface RenderedPage {
  status: number;
  headers: Record<string, string>;
  html: string;
}

/** What a page needs of the request it answers: its language, and where a language switch comes back to. */
interface PageRequest {
  headers: IncomingHttpHeaders;
  uiLocales?: unknown;
  here?: string | undefined;
}

/** The pages the provider renders itself, which the host writes for it. */
export interface ProviderPages {
  /** The languages the pages speak (discovery's ui_locales_supported), the default first. */
  readonly locales: readonly string[];
  logout(req: PageRequest, form: string, clientName: string | undefined): RenderedPage;
  loggedOut(req: PageRequest, clientName: string | undefined): RenderedPage;
  tooManySignIns(req: PageRequest, retryAfterSeconds: number): RenderedPage;
  /**
   * The device flow's pages (RFC 8628 §3.3): typing the user code (`xsrf`: the provider's hidden
   * CSRF input; `problem`: why the code typed before was refused), approving the app, and the end
   * (`aborted`: the person cancelled or denied). `throttled`: too many codes tried from one address.
   */
  deviceCode(req: PageRequest, form: { action: string; xsrf: string; code?: string | undefined; problem?: DeviceCodeProblem | undefined }): RenderedPage;
  deviceConfirm(req: PageRequest, form: string, clientName: string, userCode: string): RenderedPage;
  deviceDone(req: PageRequest, clientName: string | undefined, aborted: boolean): RenderedPage;
  deviceThrottled(req: PageRequest, retryAfterSeconds: number): RenderedPage;
  /** `internal`: a failure of ours, to be logged. */
  error(req: PageRequest, err: unknown, oauth: { error: string; error_description?: string | undefined }): RenderedPage & { internal: boolean };
}

/** Why a typed user code was refused: unknown (or none typed), expired, already used, or a failure of the form itself. */
type DeviceCodeProblem = 'wrong' | 'expired' | 'used' | 'failed';

/** RFC 8628 §3.2, §3.5: the seconds a device waits between polls; polling faster gets `slow_down`. */
const DEVICE_POLL_INTERVAL = 5;

/** What the provider's refusal of a typed user code means to the person (its re-render errors). */
function deviceCodeProblem(err: Error): DeviceCodeProblem {
  switch (err.name) {
    case 'NotFoundError':
    case 'NoCodeError':
      return 'wrong';
    case 'ExpiredError':
      return 'expired';
    case 'AlreadyUsedError':
      return 'used';
    default:
      return 'failed';
  }
}

/** `comeBack`: the language switcher may reload this page (not an error page, which can show what a request carried). */
const pageRequest = (ctx: Pick<KoaContextWithOIDC, 'req' | 'method' | 'originalUrl'> & { oidc?: KoaContextWithOIDC['oidc'] }, comeBack = false): PageRequest => ({
  headers: ctx.req.headers,
  uiLocales: ctx.oidc?.params?.ui_locales,
  here: comeBack && ctx.method === 'GET' ? ctx.originalUrl : undefined,
});

function send(ctx: { status: number; type: string; body: unknown; set(headers: Record<string, string>): void }, page: RenderedPage) {
  ctx.status = page.status;
  ctx.set(page.headers);
  ctx.type = 'html';
  ctx.body = page.html;
}

const isStringList = (value: unknown) => Array.isArray(value) && value.every((v) => typeof v === 'string');

/** logo_uri, policy_uri, tos_uri, client_uri: links the consent page shows, https only. */
const LINK_METADATA: ReadonlySet<string> = new Set(Object.values(CLIENT_LINKS));

/**
 * Our own client metadata, as the provider sees it. A registrant (RFC 7591/7592) can set browser
 * origins, never its API access, and no field that would make the provider fetch a URL at
 * registration (pairwise subjects are not offered).
 */
function validateExtraMetadata(ctx: KoaContextWithOIDC | undefined, key: string, value: unknown, metadata: Record<string, unknown>) {
  const route = ctx?.oidc?.route;
  if (route === 'registration' || route === 'client_update') {
    if (key === 'resource_scopes' && value !== undefined) throw new errors.InvalidClientMetadata('resource_scopes cannot be registered: API access is allowed by an admin');
    if (key === 'require_pkce' && value !== undefined) throw new errors.InvalidClientMetadata('require_pkce cannot be registered: only an admin may let a legacy client skip PKCE');
    if (key === 'claim_mappings' && value !== undefined) throw new errors.InvalidClientMetadata('claim_mappings cannot be registered: only an admin maps claims into a client’s tokens');
    if (key === 'refresh_token_reuse_interval' && value !== undefined) {
      throw new errors.InvalidClientMetadata('refresh_token_reuse_interval cannot be registered: only an admin may relax refresh-token reuse detection');
    }
    if (key === 'allowed_origins' && metadata.sector_identifier_uri !== undefined) {
      throw new errors.InvalidClientMetadata('sector_identifier_uri is not supported: pairwise subject identifiers are not offered');
    }
  }
  if (value === undefined) return;
  if (LINK_METADATA.has(key)) {
    // Stricter than the provider's own check (http or https): a page must never link to http.
    const [issue] = typeof value === 'string' ? linkUriIssues(value) : ['must be a string'];
    if (issue) throw new errors.InvalidClientMetadata(`${key} ${issue}`);
    return;
  }
  if (key === 'require_pkce' && typeof value !== 'boolean') throw new errors.InvalidClientMetadata('require_pkce must be a boolean');
  if (key === 'id_token_user_claims' && typeof value !== 'boolean') throw new errors.InvalidClientMetadata('id_token_user_claims must be a boolean');
  if (key === 'claim_mappings') {
    const parsed = claimMappingsSchema.safeParse(value);
    if (!parsed.success) throw new errors.InvalidClientMetadata(`claim_mappings: ${problems(parsed.error.issues).map((p) => (p.path.length ? `${p.path.join('.')}: ${p.message}` : p.message)).join('; ')}`);
  }
  if (key === 'refresh_token_reuse_interval' && !(Number.isInteger(value) && (value as number) >= 0 && (value as number) <= REFRESH_REUSE_MAX_SECONDS)) {
    throw new errors.InvalidClientMetadata(`refresh_token_reuse_interval must be a whole number of seconds from 0 to ${REFRESH_REUSE_MAX_SECONDS}`);
  }
  if (key === 'allowed_origins' && !isStringList(value)) throw new errors.InvalidClientMetadata('allowed_origins must be an array of strings');
  if (key === 'resource_scopes' && !(value && typeof value === 'object' && !Array.isArray(value) && Object.values(value).every(isStringList))) {
    throw new errors.InvalidClientMetadata('resource_scopes must map API identifiers to arrays of scopes');
  }
}

/**
 * A refresh token's lifetime at issue: at most the idle lifetime, and never past the absolute
 * one, counted from the first issue of its chain (`iiat`, seconds); at least one second.
 */
export function refreshTokenTtl(now: number, firstIssuedAt: number | undefined, ttl: { refreshToken: number; refreshTokenIdle: number }): number {
  const absoluteLeft = ttl.refreshToken - (now - (firstIssuedAt ?? now));
  return Math.max(1, Math.min(ttl.refreshTokenIdle, absoluteLeft));
}

/**
 * The prompts of a sign-in: the provider's own (login, consent), and `create` (Initiating User
 * Registration via OpenID Connect 1.0): requestable, so that an app may send it, with no check of
 * its own. A sign-in that asks for it opens on the sign-up page instead of the login page
 * (src/http/interactions/signup.ts), or on the login page when sign-up is not open; a browser
 * already signed in goes on with its session, as it would without it.
 */
function signInPrompts(mfaPolicy: MfaPolicy) {
  const policy = interactionPolicy.base();
  policy.get('login')!.checks.add(secondFactorRequested());
  policy.get('login')!.checks.add(secondFactorRequired(mfaPolicy));
  const create = new interactionPolicy.Prompt({ name: 'create', requestable: true });
  create.checks.clear();
  policy.add(create);
  return policy;
}

/**
 * The reasons a sign-in asks a person already signed in with a password alone for their second
 * factor (step-up): the app asked for it (`acr_values`, our check below), or requires it (the
 * `acr` claim as essential in `claims`, the provider's own checks).
 */
export const STEP_UP_REASONS: readonly string[] = ['second_factor_requested', 'second_factor_required', 'essential_acr', 'essential_acrs'];

/**
 * What a finished step-up records when the person has no second factor to give and the app only
 * asked for one (`acr_values` is voluntary, OpenID Connect Core §3.1.2.1): the session goes on as
 * it is, and the ID token's `acr` says so.
 */
export const NO_SECOND_FACTOR = 'noSecondFactor';

/** `acr_values` names `urn:idp:acr:mfa`. */
const asksForMfa = (params: Record<string, unknown>) => typeof params.acr_values === 'string' && params.acr_values.split(' ').includes(ACR.mfa);

/**
 * Whether the `acr` claim is required (essential) with values that `acr` does not meet
 * (OpenID Connect Core §5.5.1.1); `claims` is the request's parameter, a JSON string.
 */
export function essentialAcrUnmet(params: Record<string, unknown>, acr: string): boolean {
  if (typeof params.claims !== 'string') return false;
  let request: unknown;
  try {
    request = (JSON.parse(params.claims) as { id_token?: { acr?: unknown } }).id_token?.acr;
  } catch {
    return false;
  }
  if (!request || typeof request !== 'object') return false;
  const { essential, value, values } = request as { essential?: unknown; value?: unknown; values?: unknown };
  if (essential !== true) return false;
  const wanted = Array.isArray(values) ? values : value !== undefined ? [value] : [];
  return wanted.length > 0 && !wanted.includes(acr);
}

/**
 * The login prompt's own check for `acr_values=urn:idp:acr:mfa`: a session signed in with a
 * password alone is asked for its second factor (src/http/interactions/second-factor.ts). Not
 * again once that interaction is over: with a login (the second factor given), or with
 * {@link NO_SECOND_FACTOR} (the person has none). A result without either (a sign-in still
 * waiting for its code, whose resume address is opened) asks again.
 */
function secondFactorRequested() {
  return new interactionPolicy.Check('second_factor_requested', 'a second factor is requested', 'login_required', (ctx) => {
    const { oidc } = ctx;
    if (!oidc.session?.accountId || oidc.acr !== ACR.password || !asksForMfa(oidc.params as Record<string, unknown>)) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    const result = oidc.result as Record<string, unknown> | undefined;
    if (result?.login || result?.[NO_SECOND_FACTOR] === true) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    return interactionPolicy.Check.REQUEST_PROMPT;
  });
}

/**
 * The login prompt's check for the second-factor policy (src/mfa/policy.ts): a session signed in
 * without a second factor (a password, an upstream provider) is asked for it, or taken through
 * adding one, when the client, a role of the person or the server requires it. Not again once
 * that interaction is over with a login.
 */
function secondFactorRequired(mfaPolicy: MfaPolicy) {
  return new interactionPolicy.Check('second_factor_required', 'a second factor is required', 'login_required', async (ctx) => {
    const { oidc } = ctx;
    const accountId = oidc.session?.accountId;
    if (!accountId || !oidc.client || oidc.acr === ACR.mfa || (oidc.result as Record<string, unknown> | undefined)?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    return (await mfaPolicy.requires(accountId, oidc.client.clientId)) ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
  });
}

/** `prompt` includes `create`: the app asks for the sign-up page. */
export const asksToCreate = (params: Record<string, unknown>) => typeof params.prompt === 'string' && params.prompt.split(' ').includes('create');

/**
 * The person a token request issues to (a code, refresh token or device code of theirs), or
 * undefined: a client's own token (client_credentials), or the authorization endpoint, where
 * consent is asked for what the app may have.
 */
function issuingTo(ctx: KoaContextWithOIDC): string | undefined {
  const { entities } = ctx.oidc;
  return entities.AuthorizationCode?.accountId ?? entities.RefreshToken?.accountId ?? entities.DeviceCode?.accountId ?? entities.BackchannelAuthenticationRequest?.accountId;
}

/** How the person a token request issues to signed in: the `acr` and `amr` its code, refresh token or device code carries. */
function howSignedIn(ctx: KoaContextWithOIDC): { acr: string; amr?: string[] } | undefined {
  const { entities } = ctx.oidc;
  const from = entities.AuthorizationCode ?? entities.RefreshToken ?? entities.DeviceCode ?? entities.BackchannelAuthenticationRequest;
  return from?.acr ? { acr: from.acr, ...(from.amr ? { amr: from.amr } : {}) } : undefined;
}

/** Whose roles an API that enforces them answers to: a person's, or a machine client's for its own tokens. */
interface RoleHolder {
  kind: 'user' | 'client';
  id: string;
}

/**
 * Whose roles a token request's API token answers to: the person it issues to, or the client
 * itself (client_credentials); undefined at the authorization endpoint.
 */
function rolesHolder(ctx: KoaContextWithOIDC): RoleHolder | undefined {
  const person = issuingTo(ctx);
  if (person) return { kind: 'user', id: person };
  const { route, params, client } = ctx.oidc;
  return route === 'token' && params?.grant_type === 'client_credentials' && client ? { kind: 'client', id: client.clientId } : undefined;
}

/** The 32-byte secret DPoP nonces are derived from: from the first cookie key, for its own purpose. */
const dpopNonceSecret = (cookieSecrets: readonly string[]) => Buffer.from(hkdfSync('sha256', cookieSecrets[0] ?? '', '', 'dpop-nonce', 32));

/** Every provider option lives here; each non-default one says why. */
export function createProvider(deps: ProviderDeps): Provider {
  const { config, pages, ports } = deps;
  const { accounts, apis, roles, clients, audit } = ports;
  // The roles of a person, or of a machine client, are read once per request, however often the
  // provider asks (the API's scopes, then the roles claim, for each token it issues).
  const rolesRead = new WeakMap<object, { holder: RoleHolder; grants: Promise<RoleGrants> }>();
  const grantsOf = (ctx: object, holder: RoleHolder) => {
    const seen = rolesRead.get(ctx);
    if (seen?.holder.kind === holder.kind && seen.holder.id === holder.id) return seen.grants;
    const grants = holder.kind === 'user' ? roles.grantsOf(holder.id) : roles.grantsOfClient(holder.id);
    rolesRead.set(ctx, { holder, grants });
    return grants;
  };
  // What claim mappings read of a person (src/lib/claims.ts); their role names as the roles claim has them.
  const claimSubject = (ctx: object, user: { id: string; email: string; emailVerified: boolean; name: string | null; attributes: string }): ClaimSubject => ({
    email: user.email,
    emailVerified: user.emailVerified,
    name: user.name,
    attributes: user.attributes,
    roles: async () => (await grantsOf(ctx, { kind: 'user', id: user.id })).names,
  });
  // The client's full registered metadata (set once the provider exists: see internals.ts).
  let registered: (client: object) => RegisteredMetadata = () => ({});
  const secureCookies = config.secure;
  const prompts = signInPrompts(ports.mfaPolicy);
  const reuse = refreshTokenReuse(ports.artifacts, (client) => refreshTokenReuseInterval(registered(client) as Record<string, unknown>));

  const configuration: Configuration = {
    adapter: createAdapterFactory(ports.artifacts, clients),
    jwks: { keys: deps.jwks as NonNullable<Configuration['jwks']>['keys'] },
    // Keygrip: the first key signs, the others still verify (rotation).
    cookies: {
      keys: [...deps.cookieSecrets],
      // Over https, the prefixes make browsers refuse these cookies from plain http or another
      // (sub)domain; __Host- needs path "/", which the interaction cookies (scoped to their
      // interaction's path, so that sign-ins in two tabs do not overwrite each other) do not
      // have, so they get __Secure-.
      names: secureCookies
        ? { session: '__Host-session', interaction: '__Secure-interaction', resume: '__Secure-interaction_resume' }
        : { session: '_session', interaction: '_interaction', resume: '_interaction_resume' },
      long: { httpOnly: true, sameSite: 'lax', secure: secureCookies },
      short: { httpOnly: true, sameSite: 'lax', secure: secureCookies },
    },
    routes: PROVIDER_ROUTES,
    // Only the authorization code flow: no implicit or hybrid (RFC 9700 §2.1.2).
    responseTypes: ['code'],
    // PKCE for every client, confidential ones too (RFC 9700 §2.1.1); v9 only knows S256.
    // PKCE for every authorization request (RFC 9700 §2.1.1), except from a confidential client an
    // admin let skip it (`requirePkce: false`, for a legacy app that cannot send it); a code
    // challenge, when sent, is always checked.
    pkce: { required: (_ctx, client) => client.tokenEndpointAuthMethod === 'none' || client.metadata().require_pkce !== false },
    // client_secret_jwt would need the plaintext secret, which we never store.
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    // No HMAC algorithms anywhere: they are keyed with the client secret, which we only hold hashed.
    enabledJWA: {
      clientAuthSigningAlgValues: ASYMMETRIC_ALGS,
      requestObjectSigningAlgValues: ASYMMETRIC_ALGS,
      idTokenSigningAlgValues: ASYMMETRIC_ALGS,
      userinfoSigningAlgValues: ASYMMETRIC_ALGS,
      introspectionSigningAlgValues: ASYMMETRIC_ALGS,
      authorizationSigningAlgValues: ASYMMETRIC_ALGS,
    },
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    scopes: [...OIDC_SCOPES],
    // prompt_values_supported (OpenID Connect Discovery 1.0 §3, as Initiating User Registration
    // via OpenID Connect 1.0 §4.2 asks): the provider does not list them itself.
    discovery: { ui_locales_supported: [...pages.locales], prompt_values_supported: ['none', ...prompts.map((p) => p.name)] },
    acrValues: Object.values(ACR),
    // Not an extra parameter: `state` is standard. Its validator runs on every authorization,
    // device and pushed request before anything is stored, and bounds every parameter's size.
    extraParams: { state: checkRequest },
    // allowed_origins: browser origins beyond the redirect URIs'; resource_scopes: the APIs the
    // client may get tokens for, each with the scopes it may receive there (the provider's own
    // `scope` metadata only gates OpenID Connect scopes). The link metadata (logo_uri, …) is
    // standard, listed here only so that our validator sees it: the provider keeps it under its
    // usual names (client.logoUri, client.policyUri, client.tosUri, client.clientUri).
    extraClientMetadata: {
      properties: ['allowed_origins', 'resource_scopes', 'require_pkce', 'refresh_token_reuse_interval', 'claim_mappings', 'id_token_user_claims', ...LINK_METADATA],
      validator: (ctx, key, value, metadata) => validateExtraMetadata(ctx, key, value, metadata as Record<string, unknown>),
    },
    // CORS on token, userinfo, revocation and introspection only for origins the client registered.
    // Our own origin is not a cross-origin caller: the admin API's docs page, served here, gets a
    // token for an admin client (which registers no origin) with a same-origin request, which the
    // browser sends with an Origin header all the same.
    clientBasedCORS(_ctx, origin, client) {
      return origin === config.issuerOrigin || clientOrigins(registered(client)).has(origin);
    },
    claims: {
      // acr and amr tell the client how the user signed in (password, password and a second factor, or an upstream provider).
      openid: ['sub', 'acr', 'amr'],
      email: ['email', 'email_verified'],
      profile: ['name', 'updated_at'],
    },
    // An ID token may carry the claims of every granted scope: which ones it gets is decided in
    // findAccount below, per client, instead of for every client at once.
    conformIdTokenClaims: false,
    // The person's claims for ID tokens and userinfo, which the provider filters by the granted
    // scopes, and the client's mapped claims (claim_mappings), which it adds to both as they are
    // (internals.ts, patchMappedClaims). An ID token carries the scopes' claims (email, name, …)
    // only where it did when the provider's conformIdTokenClaims was on (its access token is for
    // an API, so /userinfo cannot be asked), or where the client wants them (id_token_user_claims:
    // an app that reads the person from the ID token alone, such as Auth.js). Every other ID
    // token holds sub, acr, amr and what the request adds (nonce; auth_time when asked for), as before.
    async findAccount(ctx, sub) {
      const user = await accounts.findActive(sub);
      if (!user) return undefined;
      return {
        accountId: user.id,
        async claims(use) {
          const own = ctx.oidc.client ? (registered(ctx.oidc.client) as RegisteredMetadata & { claim_mappings?: unknown; id_token_user_claims?: unknown }) : undefined;
          const scoped = use !== 'id_token' || own?.id_token_user_claims === true || Boolean(ctx.oidc.entities.AccessToken?.aud);
          const mappings = readClaimMappings(own?.claim_mappings);
          const mapped = Object.keys(mappings).length ? await mapClaims(mappings, claimSubject(ctx, user)) : {};
          return {
            sub: user.id,
            ...(scoped
              ? { email: user.email, email_verified: user.emailVerified, ...(user.name ? { name: user.name } : {}), updated_at: Math.floor(user.updatedAt.getTime() / 1000) }
              : {}),
            ...(Object.keys(mapped).length ? { [MAPPED_CLAIMS]: mapped } : {}),
          };
        },
      };
    },
    // Consent is remembered across browser sessions: a new session reuses the newest grant this
    // person gave this client, so only what it does not cover yet brings the consent page back.
    // A revoked grant is gone, and the next sign-in asks again.
    async loadExistingGrant(ctx) {
      const { client, session, result } = ctx.oidc;
      const known = (result?.consent as { grantId?: string } | undefined)?.grantId ?? session?.grantIdFor(client!.clientId);
      const grant = known ? await ctx.oidc.provider.Grant.find(known) : undefined;
      if (grant || !session?.accountId) return grant;
      const stored = await ports.artifacts.grantFor(session.accountId, client!.clientId);
      if (!stored) return undefined;
      rememberGrant(stored.id, stored);
      return ctx.oidc.provider.Grant.find(stored.id);
    },
    features: {
      // Its built-in login accepts any password.
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // RFC 7591/7592, gated by initial access tokens (`idp clients initial-access-token create`).
      registration: { enabled: true, initialAccessToken: true, idFactory: () => randomId() },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
      // RFC 7662 §2.1, §4: a token is described only to the client it was issued to. (Tokens for
      // an API are JWTs, which resource servers validate themselves and which are not introspected.)
      introspection: { enabled: true, allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId },
      // RFC 7009 §2.1: a client revokes only its own tokens; another's is refused, and stays valid.
      revocation: {
        enabled: true,
        allowedPolicy(_ctx, client, token) {
          if (token.clientId !== client.clientId) throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
          return true;
        },
      },
      userinfo: { enabled: true },
      // RFC 9126: every client may push its authorization request; REQUIRE_PAR makes it the only
      // way for all, `requirePushedAuthorizationRequests` for one client.
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: config.requirePar },
      // RFC 9449: DPoP proofs at the token and userinfo endpoints (and PAR). Every DPoP answer
      // offers a server nonce (DPoP-Nonce, §8; derived from the cookie key, so every instance
      // knows them, each valid for a few minutes); a proof may carry it instead of relying on its
      // clock. DPOP_REQUIRE_NONCE makes it mandatory: a proof without it gets use_dpop_nonce.
      dPoP: { enabled: true, nonceSecret: dpopNonceSecret(deps.cookieSecrets), requireNonce: () => config.dpopRequireNonce },
      // RFC 9101: an authorization request may come as a request object (`request`, by value or
      // pushed), signed with a key the client registered (jwks or jwks_uri) and an asymmetric
      // algorithm; an unsigned one (alg none) or one signed with a shared secret is refused.
      requestObjects: { enabled: true, requireSignedRequestObject: false },
      // OpenID Connect Core §5.5, for one claim only: `acr` in the ID token, so that an app may
      // require the second factor (essential). Any other claim is refused: what an app gets of a
      // person is its scopes, as the person allowed them.
      claimsParameter: {
        enabled: true,
        assertClaimsParameter(_ctx, claims) {
          const onlyAcr = claims.userinfo === undefined && Object.keys(claims.id_token ?? {}).every((claim) => claim === 'acr');
          if (!onlyAcr) throw new errors.InvalidRequest('the claims parameter may only ask for the acr claim of the ID token');
        },
      },
      // RFC 8628: a device without a browser (a TV, a command-line tool) shows a code that the
      // person types at /device, then signs in and consents on our usual pages. The code is 8
      // letters of a 20-letter alphabet without vowels; case and separators are ignored.
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource(ctx, form, _out, err) {
          const req = { ...pageRequest(ctx), here: PROVIDER_ROUTES.code_verification };
          if (err?.name === 'AbortedError') return send(ctx, pages.deviceDone(req, ctx.oidc.client?.clientName ?? undefined, true));
          const xsrf = /<input type="hidden" name="xsrf" value="[0-9a-f]*"\/>/.exec(form)?.[0] ?? '';
          const problem = err ? deviceCodeProblem(err) : undefined;
          const page = pages.deviceCode(req, { action: ctx.oidc.urlFor('code_verification'), xsrf, code: (err as { userCode?: string } | undefined)?.userCode, problem });
          // A refused code is the person's mistake (400, the provider says 200); other failures keep their status.
          send(ctx, problem ? { ...page, status: problem === 'failed' ? Math.max(400, ctx.status) : 400 } : page);
        },
        userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
          send(ctx, pages.deviceConfirm({ ...pageRequest(ctx), here: PROVIDER_ROUTES.code_verification }, form, client.clientName ?? client.clientId, userCode));
        },
        successSource(ctx) {
          send(ctx, pages.deviceDone(pageRequest(ctx), ctx.oidc.client?.clientName ?? undefined, false));
        },
      },
      // OpenID Connect Back-Channel Logout 1.0: clients register backchannel_logout_uri, and
      // discovery says so. The provider's own sending at end_session is replaced by our queue
      // (internals.ts), which every other way a session ends goes through too.
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource(ctx, form) {
          send(ctx, pages.logout(pageRequest(ctx, true), form, ctx.oidc.client?.clientName));
        },
        postLogoutSuccessSource(ctx) {
          send(ctx, pages.loggedOut(pageRequest(ctx, true), ctx.oidc.client?.clientName));
        },
      },
      // RFC 8707 + RFC 9068: a registered API gets JWT access tokens; anything else is refused.
      resourceIndicators: {
        enabled: true,
        // An admin client asking for an admin scope without naming a resource means the admin API.
        defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf;
          if (!client || !registered(client).resource_scopes?.[ADMIN_API]) return undefined;
          const scopes = String(ctx.oidc.params?.scope ?? '').split(' ');
          return scopes.some((s) => ADMIN_SCOPES.has(s)) ? ADMIN_API : undefined;
        },
        // A code exchange without `resource` still gets the API token that was consented to.
        useGrantedResource: () => true,
        async getResourceServerInfo(ctx, indicator, client) {
          // A client gets tokens only for APIs it is allowed to use (the admin API: admin clients
          // only), carrying only scopes that the API defines and the client was allowed there.
          const allowance = registered(client).resource_scopes?.[indicator];
          const api = allowance ? await apis.findByIdentifier(indicator) : null;
          if (!api) throw new errors.InvalidTarget(`resource ${indicator} is not an API this client may use`);
          const allowed = new Set(allowance);
          // An API that enforces roles (the admin API always does, for people) issues a person only
          // what their roles grant, and a machine client its own tokens only what the client's
          // roles grant, as they are at each issuance: a role given or taken shows in the next
          // refresh or token. Consent is about the app, and covers what the app may ask for. An
          // admin client's admin API access comes from it being an admin client, never from roles.
          const holder = rolesHolder(ctx);
          const enforced = holder && api.enforceRoles && !(holder.kind === 'client' && api.identifier === ADMIN_API);
          const granted = enforced ? (await grantsOf(ctx, holder)).scopes(api.identifier) : undefined;
          return {
            scope: api.scopes.filter((s) => allowed.has(s) && (!granted || granted.has(s))).join(' '),
            audience: api.identifier,
            accessTokenTTL: api.accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: api.signingAlg as 'RS256' } },
          };
        },
      },
    },
    // An API can ask for the role names of the person, or of the machine client (its own tokens), in its access tokens.
    // And for claims mapped from the person (claimMappings: attributes, roles, email, …) in a person's tokens.
    // A person's access token says how they signed in (`acr`, `amr`: RFC 9068 §2.2.1 for an API's
    // JWT; the introspection response of an opaque one), as the code or refresh token it comes from.
    async extraTokenClaims(ctx, token) {
      const signIn = token.kind === 'ClientCredentials' ? undefined : howSignedIn(ctx);
      const audience = token.resourceServer?.audience;
      const [kind, id] = token.kind === 'ClientCredentials' ? (['client', token.clientId] as const) : (['user', token.accountId] as const);
      const api = id && typeof audience === 'string' ? await apis.findByIdentifier(audience) : undefined;
      const roles = id && api?.rolesClaim ? { roles: (await grantsOf(ctx, { kind, id })).names } : undefined;
      // The API's claim mappings, for a person's tokens (never a machine client's own); what the
      // provider sets itself comes after, so a mapping could never replace it (none may name it).
      const person = kind === 'user' && id && api && Object.keys(api.claimMappings).length ? await accounts.findActive(id) : undefined;
      const mapped = person && api ? await mapClaims(api.claimMappings, claimSubject(ctx, person)) : undefined;
      return signIn || roles || mapped ? { ...mapped, ...signIn, ...roles } : undefined;
    },
    // Rotate on every use; a rotated-out token presented again revokes the grant (provider
    // default), except within the client's reuse interval (refresh-reuse.ts).
    rotateRefreshToken: (ctx) => reuse.rotates(ctx),
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.accessToken,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.ttl.accessToken,
      AuthorizationCode: config.ttl.authorizationCode,
      IdToken: config.ttl.idToken,
      // Idle and absolute lifetimes: each rotation grants at most the idle lifetime, and never
      // more than what is left of the absolute one, counted from the first issue (iiat).
      RefreshToken: (_ctx, token) => refreshTokenTtl(Math.floor(Date.now() / 1000), token.iiat, config.ttl),
      Session: config.ttl.session,
      Interaction: config.ttl.interaction,
      Grant: config.ttl.grant,
      // RFC 8628 §3.2: the time the person has to type the code and sign in.
      DeviceCode: 600,
    },
    interactions: {
      policy: prompts,
      url: (_ctx, interaction) => `${INTERACTION_PATH}/${interaction.uid}`,
    },
    async renderError(ctx, out, error) {
      const page = pages.error(pageRequest(ctx), error, out);
      if (page.internal) deps.log.error({ err: error }, 'provider error');
      send(ctx, page);
    },
  };

  const provider = new Provider(config.issuer, configuration);
  // The host hands every request over with the issuer's host and scheme and the client address
  // it computed itself (src/http/forwarded.ts): those forwarded headers are the host's own.
  provider.proxy = true;

  registered = patchClientModel(provider, clients);
  patchMappedClaims(provider);
  wrapGrantHandler(provider, 'refresh_token', reuse.wrap);
  patchBackchannelLogout(provider, (ended) => ports.logouts.sessionsEnded([{ accountId: ended.accountId, clients: [{ clientId: ended.clientId, sid: ended.sid }] }]));

  // What Koa could not answer itself (a request that timed out or was aborted while its body was
  // read) goes to our log, not to standard error; a client that went away is not our failure.
  // (The provider is the Koa application itself; its typings only list the provider's own events.)
  (provider as unknown as EventEmitter).on('error', (err: Error & { code?: string }) => {
    const gone = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ECONNRESET' || err.code === 'ERR_STREAM_PREMATURE_CLOSE';
    deps.log[gone ? 'debug' : 'error']({ err }, 'provider request failed');
  });
  // A database outage is not a server bug: answer 503 (retry shortly), never a 500 with details.
  provider.on('server_error', (ctx, err) => {
    if (isDatabaseUnavailable(err)) ctx.state.databaseUnavailable = true;
    else deps.log.error({ err }, 'provider server error');
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.state.databaseUnavailable && ctx.status >= 500 && !ctx.response.is('html')) {
      ctx.status = 503;
      ctx.set('retry-after', '5');
      ctx.body = UNAVAILABLE_BODY;
    }
  });
  // Sign-ins started by browsers that are not signed in are stored for the life of their
  // interaction: at most INTERACTIONS_PER_MINUTE from one client address; past that, the one just
  // stored is removed again and the browser is asked to wait.
  provider.use(async (ctx, next) => {
    await next();
    const started = ctx.oidc?.route === 'authorization' ? ctx.oidc.entities.Interaction : undefined;
    if (!started || started.accountId) return;
    if ((await ports.counters.hit(`interactions:${ctx.ip}`, 60)) <= config.interactionsPerMinute) return;
    await started.destroy();
    ctx.remove('location');
    send(ctx, pages.tooManySignIns(pageRequest(ctx), 60));
  });
  // RFC 8628 §5.1: user codes are short, so the forms that take them are limited per client
  // address, counted before the code is looked up (a guess past the limit is never checked).
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== PROVIDER_ROUTES.code_verification) return next();
    if ((await ports.counters.hit(`device-codes:${ctx.ip}`, 60)) <= config.deviceCodesPerMinute) return next();
    send(ctx, pages.deviceThrottled({ ...pageRequest(ctx), here: PROVIDER_ROUTES.code_verification }, 60));
  });
  // RFC 8628 §3.2, §3.5: the device is told how often it may poll; a poll of a pending code
  // sooner than that after the previous one is answered `slow_down` (the provider itself never
  // says it). Counted per device code (hashed: the code is a secret), shared by every instance.
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (route === 'device_authorization') {
      if (ctx.status === 200 && body && typeof body === 'object') (body as Record<string, unknown>).interval = DEVICE_POLL_INTERVAL;
      // RFC 8628 §3.2 → RFC 6749 §5.2: a client not allowed the grant is `unauthorized_client` (the provider says invalid_request).
      if (body?.error === 'invalid_request' && body.error_description === `${DEVICE_CODE_GRANT} is not allowed for this client`) body.error = 'unauthorized_client';
      return;
    }
    const deviceCode = ctx.oidc?.params?.device_code;
    if (route !== 'token' || body?.error !== 'authorization_pending' || typeof deviceCode !== 'string') return;
    if ((await ports.counters.hit(`device-polls:${sha256(deviceCode)}`, DEVICE_POLL_INTERVAL)) > 1) {
      ctx.body = { error: 'slow_down', error_description: `poll at most every ${DEVICE_POLL_INTERVAL} seconds, and 5 seconds slower after each slow_down` };
    }
  });
  // Which browser and address each signed-in browser session is used from: recorded at every
  // sign-in (the resume after a login), and when an app's sign-in uses the session again.
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route !== 'resume' && route !== 'device_resume' && route !== 'authorization') return;
    const session = ctx.oidc.entities.Session;
    if (!session?.accountId || session.destroyed) return;
    const seen = { userAgent: ctx.get('user-agent') || undefined, ip: ctx.ip };
    const fresh = route !== 'authorization' && ctx.oidc.result?.login?.accountId === session.accountId;
    await (fresh ? ports.devices.signedIn(session.uid, seen) : ports.devices.seen(session.uid, seen)).catch((err: unknown) => deps.log.warn({ err }, 'session device not recorded'));
  });
  provider.on('grant.success', (ctx) => deps.metrics?.tokensIssued.inc({ grant_type: String(ctx.oidc.params?.grant_type ?? 'unknown') }));
  // The provider revokes a grant when a used refresh token or code is presented again.
  provider.on('grant.revoked', (ctx, grantId) => {
    const grantType = ctx.oidc.params?.grant_type;
    if (ctx.oidc.route !== 'token' || (grantType !== 'refresh_token' && grantType !== 'authorization_code')) return;
    const action = grantType === 'refresh_token' ? 'refresh_token.reuse_detected' : 'authorization_code.replay_detected';
    if (grantType === 'refresh_token') deps.metrics?.refreshTokenReuse.inc();
    audit.record({ actor: `client:${ctx.oidc.client?.clientId ?? 'unknown'}`, ip: ctx.ip }, action, grantId, { clientId: ctx.oidc.client?.clientId }).catch((err: unknown) => deps.log.error({ err }, 'audit failed'));
  });
  return provider;
}
