import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Logger } from 'pino';
import { MODEL, type ArtifactStore } from '../artifacts/store.ts';
import type { FederatedIdentity, PrismaClient } from '../db/index.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import { LOOPBACK_HOSTS } from '../lib/constants.ts';
import { randomToken } from '../lib/crypto.ts';
import { AppError, conflict, isUniqueViolation, notFound } from '../lib/errors.ts';
import { normalizeEmail, type UserService } from '../users/service.ts';
import type { UpstreamService, Upstream } from './upstreams.ts';

/** How long the round trip to the upstream and the "link your account" page may take. */
const PENDING_TTL_SECONDS = 10 * 60;
const MAX_LINK_ATTEMPTS = 5;
/** Upstream sign-ins one interaction may start within PENDING_TTL_SECONDS (each is stored until then). */
const MAX_STARTS = 10;
/** Discovery documents are re-read after this long, and at once when the provider changes. */
const DISCOVERY_TTL_MS = 60 * 60 * 1000;
const UPSTREAM_TIMEOUT_SECONDS = 5;

/** The upstream could not be reached: password login keeps working. */
export class UpstreamUnavailable extends AppError {
  override name = 'UpstreamUnavailable';

  readonly providerName: string;

  constructor(providerName: string) {
    super(503, 'upstream_unavailable', `${providerName} cannot be reached`);
    this.providerName = providerName;
  }
}

/** The callback cannot be trusted (unknown or replayed state, foreign interaction): no sign-in. The reason is logged, not shown. */
export class FederationRejected extends AppError {
  override name = 'FederationRejected';

  constructor(reason: string) {
    super(400, 'federation_rejected', reason, { expose: false });
  }
}

export type FederationOutcome =
  | { kind: 'signed_in'; userId: string; amr: string[]; providerId: string }
  | { kind: 'link_required'; linkId: string; email: string; providerName: string }
  | { kind: 'refused'; reason: RefusalReason; providerName?: string; code?: string };

/** Why an upstream sign-in was refused (each has its words in the messages catalogue: federation.refused.*). */
type RefusalReason = 'disabled' | 'noEmail' | 'emailUnverified' | 'accountExists' | 'upstreamError' | 'organization';

type PendingModel = typeof MODEL.federatedLogin | typeof MODEL.federatedLink;

interface PendingLogin {
  uid: string;
  providerId: string;
  nonce: string;
  codeVerifier: string;
}

interface PendingLink {
  uid: string;
  providerId: string;
  providerName: string;
  issuer: string;
  subject: string;
  email: string;
  emailVerified: boolean;
  userId: string;
}

interface UpstreamClaims {
  sub: string;
  email?: unknown;
  email_verified?: unknown;
  hd?: unknown;
  name?: unknown;
}

/** A failure to reach the upstream (as opposed to an answer that failed validation). */
function isNetworkError(err: unknown): boolean {
  const e = err as { name?: string; message?: string; cause?: { code?: string; name?: string } } | null;
  if (!e) return false;
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || e.cause?.name === 'TimeoutError') return true;
  if (e.name === 'TypeError' && /fetch failed/i.test(e.message ?? '')) return true;
  return /^(E(CONNREFUSED|CONNRESET|HOSTUNREACH|NETUNREACH|TIMEDOUT|AI_AGAIN|NOTFOUND)|UND_ERR_)/.test(e.cause?.code ?? '');
}

export interface FederationDeps {
  /** For the FederatedIdentity table, which this service owns. */
  prisma: PrismaClient;
  /** Where the pending state of an upstream sign-in and of a link request is kept. */
  artifacts: ArtifactStore;
  upstreams: UpstreamService;
  users: UserService;
  audit: AuditService;
  /** Counts attempts in a window (the sign-in throttle's counters). */
  attempts: { hit(key: string, windowSeconds: number): Promise<number> };
  issuer: string;
  log?: Logger;
}

/**
 * Sign-in through an upstream OpenID Connect provider (Google, or any configured one):
 * authorization code + PKCE with state and nonce bound to our pending interaction, id_token
 * validated by openid-client, then the account-linking policy (see README).
 */
export function createFederationService(deps: FederationDeps) {
  const { prisma, upstreams, users, audit } = deps;
  const discovered = new Map<string, { config: oidc.Configuration; version: string; at: number }>();

  async function configFor(provider: Upstream): Promise<oidc.Configuration> {
    const cached = discovered.get(provider.id);
    if (cached && cached.version === provider.version && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.config;
    const issuer = new URL(provider.issuer);
    // Plain http only for a stand-in on this machine (tests, local development).
    const insecure = issuer.protocol === 'http:' && LOOPBACK_HOSTS.has(issuer.hostname);
    try {
      const config = await oidc.discovery(issuer, provider.clientId, provider.clientSecret, undefined, {
        timeout: UPSTREAM_TIMEOUT_SECONDS,
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      });
      config.timeout = UPSTREAM_TIMEOUT_SECONDS;
      // Verify ID token signatures against the upstream JWKS too (openid-client skips this by
      // default for tokens fetched directly from the token endpoint over TLS).
      oidc.enableNonRepudiationChecks(config);
      discovered.set(provider.id, { config, version: provider.version, at: Date.now() });
      return config;
    } catch (err) {
      deps.log?.warn({ provider: provider.id, err: (err as Error).message }, 'upstream discovery failed');
      throw new UpstreamUnavailable(provider.name);
    }
  }

  const callbackUrl = (providerId: string) => `${deps.issuer}/interaction/callback/${providerId}`;

  const storePending = (model: PendingModel, id: string, payload: PendingLogin | PendingLink) => deps.artifacts.create(model, id, payload, PENDING_TTL_SECONDS);

  async function readPending<T>(model: PendingModel, id: string): Promise<T | null> {
    const row = await deps.artifacts.find(model, id);
    if (!row || row.consumedAt || (row.expiresAt && row.expiresAt < new Date())) return null;
    return JSON.parse(row.payload) as T;
  }

  /** Atomic: of two requests with the same state, exactly one proceeds. */
  const consume = (model: PendingModel, id: string) => deps.artifacts.consume(model, id);

  async function signInWith(identity: FederatedIdentity, providerId: string, amr: string[]): Promise<FederationOutcome> {
    const user = await users.findActive(identity.userId);
    if (!user) return { kind: 'refused', reason: 'disabled' };
    await prisma.federatedIdentity.update({ where: { id: identity.id }, data: { lastLoginAt: new Date() } });
    return { kind: 'signed_in', userId: user.id, amr, providerId };
  }

  async function resolve(provider: Upstream, claims: UpstreamClaims, uid: string): Promise<FederationOutcome> {
    const issuer = provider.issuer;
    const known = await prisma.federatedIdentity.findUnique({ where: { issuer_subject: { issuer, subject: claims.sub } } });
    const email = typeof claims.email === 'string' ? normalizeEmail(claims.email) : undefined;
    const emailVerified = claims.email_verified === true || claims.email_verified === 'true';
    if (known) {
      if (email && (email !== known.email || emailVerified !== known.emailVerified)) {
        await prisma.federatedIdentity.update({ where: { id: known.id }, data: { email, emailVerified } });
      }
      return signInWith(known, provider.id, ['fed']);
    }
    if (!email) return { kind: 'refused', reason: 'noEmail', providerName: provider.name };
    // An address the upstream has not verified is never linked, and never creates (and so
    // reserves) an account here: whoever typed it there may not own it. The same answer whether
    // or not an account has it (no enumeration).
    if (!emailVerified) {
      await audit.record({ actor: `federation:${provider.id}` }, 'federation.unverified_email_refused', null, { issuer });
      return { kind: 'refused', reason: 'emailUnverified', providerName: provider.name };
    }

    const existing = await users.findByEmail(email);
    if (existing) {
      // Only link with proof of the local account.
      if (existing.passwordHash && !existing.disabled) {
        const linkId = randomToken(24);
        await storePending(MODEL.federatedLink, linkId, {
          uid, providerId: provider.id, providerName: provider.name, issuer, subject: claims.sub, email, emailVerified, userId: existing.id,
        });
        return { kind: 'link_required', linkId, email, providerName: provider.name };
      }
      await audit.record({ actor: `federation:${provider.id}` }, 'federation.link_refused', existing.id, { issuer });
      return { kind: 'refused', reason: 'accountExists', providerName: provider.name };
    }

    // Just-in-time: a new local account, with our own subject identifier.
    const who: Actor = { actor: `federation:${provider.id}` };
    const user = await users.create({ email, emailVerified: true, ...(typeof claims.name === 'string' && claims.name.trim() ? { name: claims.name.slice(0, 200) } : {}) }, who);
    const identity = await prisma.federatedIdentity.create({
      data: { id: randomUUID(), providerId: provider.id, issuer, subject: claims.sub, email, emailVerified, userId: user.id, lastLoginAt: new Date() },
    });
    await audit.record(who, 'federation.linked', user.id, { identityId: identity.id, issuer, justInTime: true });
    return { kind: 'signed_in', userId: user.id, amr: ['fed'], providerId: provider.id };
  }

  return {
    callbackUrl,

    /** Starts the upstream leg for a pending interaction: the URL to send the browser to. */
    async start(uid: string, providerId: string): Promise<string> {
      const provider = await upstreams.findEnabled(providerId);
      if (!provider) throw notFound(`no identity provider ${providerId}`);
      if ((await deps.attempts.hit(`federated:${uid}`, PENDING_TTL_SECONDS)) > MAX_STARTS) {
        throw new AppError(429, 'too_many_requests', 'Too many attempts to sign in with another service. Go back to the application and start again.');
      }
      const config = await configFor(provider);
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const codeVerifier = oidc.randomPKCECodeVerifier();
      await storePending(MODEL.federatedLogin, state, { uid, providerId, nonce, codeVerifier });
      return oidc.buildAuthorizationUrl(config, {
        redirect_uri: callbackUrl(providerId),
        scope: provider.scopes,
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        // Google shows only accounts of that Workspace domain; the claim is still checked below.
        ...(provider.hostedDomains.length === 1 ? { hd: provider.hostedDomains[0]! } : {}),
      }).href;
    },

    /** The interaction a callback's `state` belongs to, so the browser can be sent back to it. */
    async interactionFor(state: string): Promise<string | null> {
      return (await readPending<PendingLogin>(MODEL.federatedLogin, state))?.uid ?? null;
    },

    /** Completes the upstream leg: validates everything, then applies the linking policy. */
    async complete(uid: string, providerId: string, query: URLSearchParams): Promise<FederationOutcome | { kind: 'cancelled' }> {
      const state = query.get('state') ?? '';
      const pending = await readPending<PendingLogin>(MODEL.federatedLogin, state);
      if (!pending || pending.uid !== uid || pending.providerId !== providerId) throw new FederationRejected('unknown, expired or foreign state');
      if (!(await consume(MODEL.federatedLogin, state))) throw new FederationRejected('this callback was already used');

      const provider = await upstreams.findEnabled(providerId);
      if (!provider) throw new FederationRejected('the identity provider is no longer enabled');
      const upstreamError = query.get('error');
      if (upstreamError === 'access_denied') return { kind: 'cancelled' };
      if (upstreamError) return { kind: 'refused', reason: 'upstreamError', providerName: provider.name, code: upstreamError.slice(0, 100) };

      const config = await configFor(provider);
      const currentUrl = new URL(callbackUrl(providerId));
      for (const [k, v] of query) currentUrl.searchParams.append(k, v);
      let claims: UpstreamClaims;
      try {
        const tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
          pkceCodeVerifier: pending.codeVerifier,
          expectedState: state,
          expectedNonce: pending.nonce,
          idTokenExpected: true,
        });
        claims = tokens.claims() as unknown as UpstreamClaims;
      } catch (err) {
        if (isNetworkError(err)) throw new UpstreamUnavailable(provider.name);
        await audit.record({ actor: `federation:${provider.id}` }, 'federation.id_token_rejected', null, {
          issuer: provider.issuer,
          reason: String((err as Error).message).slice(0, 300),
        });
        throw new FederationRejected('the upstream response failed validation');
      }

      if (provider.hostedDomains.length && !(typeof claims.hd === 'string' && provider.hostedDomains.includes(claims.hd.toLowerCase()))) {
        await audit.record({ actor: `federation:${provider.id}` }, 'federation.domain_refused', null, { issuer: provider.issuer, hd: typeof claims.hd === 'string' ? claims.hd : null });
        return { kind: 'refused', reason: 'organization', providerName: provider.name };
      }
      return resolve(provider, claims, uid);
    },

    /** The email of the account a pending link request is for (null when unknown or expired). */
    async linkEmail(uid: string, linkId: string): Promise<string | null> {
      const pending = await readPending<PendingLink>(MODEL.federatedLink, linkId);
      return pending && pending.uid === uid ? pending.email : null;
    },

    /** The "link your account" page's form: proves the local account with its password, once. */
    async link(uid: string, linkId: string, password: string): Promise<FederationOutcome | { kind: 'wrong_password'; email: string; providerName: string }> {
      const pending = await readPending<PendingLink>(MODEL.federatedLink, linkId);
      if (!pending || pending.uid !== uid) throw new FederationRejected('unknown or expired link request');
      // Counted before the password is checked: parallel guesses cannot exceed the limit.
      const attempt = await deps.attempts.hit(`link:${linkId}`, PENDING_TTL_SECONDS);
      if (attempt > MAX_LINK_ATTEMPTS) throw new FederationRejected('too many wrong passwords');
      const user = await users.verifyPassword(pending.userId, password);
      if (!user) {
        if (attempt < MAX_LINK_ATTEMPTS) return { kind: 'wrong_password', email: pending.email, providerName: pending.providerName };
        await consume(MODEL.federatedLink, linkId);
        await audit.record({ actor: 'anonymous' }, 'federation.link_failed', pending.userId, { attempts: attempt });
        throw new FederationRejected('too many wrong passwords');
      }
      if (!(await consume(MODEL.federatedLink, linkId))) throw new FederationRejected('this link request was already used');
      try {
        const identity = await prisma.federatedIdentity.create({
          data: {
            id: randomUUID(), providerId: pending.providerId, issuer: pending.issuer, subject: pending.subject, email: pending.email,
            emailVerified: pending.emailVerified, userId: user.id, lastLoginAt: new Date(),
          },
        });
        await audit.record({ actor: `user:${user.id}` }, 'federation.linked', user.id, { identityId: identity.id, issuer: pending.issuer });
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
      return { kind: 'signed_in', userId: user.id, amr: ['fed', 'pwd'], providerId: pending.providerId };
    },

    async identities(userId: string): Promise<FederatedIdentity[]> {
      await users.get(userId);
      return prisma.federatedIdentity.findMany({ where: { userId }, orderBy: { createdAt: 'asc' } });
    },

    /** Unlinks an upstream account, unless it is the user's last way to sign in. */
    async unlink(userId: string, identityId: string, who: Actor): Promise<void> {
      const user = await users.get(userId);
      const all = await prisma.federatedIdentity.findMany({ where: { userId } });
      const identity = all.find((i) => i.id === identityId);
      if (!identity) throw notFound(`user ${userId} has no linked identity ${identityId}`);
      if (!user.hasPassword && all.length === 1) throw conflict('this is the user’s only way to sign in: set a password or link another provider first');
      await prisma.federatedIdentity.deleteMany({ where: { id: identityId } });
      await audit.record(who, 'federation.unlinked', userId, { identityId, issuer: identity.issuer });
    },
  };
}

export type FederationService = ReturnType<typeof createFederationService>;
