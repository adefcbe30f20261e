import { createHmac } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MODEL, type ArtifactStore } from '../../artifacts/store.ts';
import { ACCOUNT_CLIENT_ID, ACCOUNT_CLIENT_PATHS } from '../../clients/service.ts';
import type { Config } from '../../config.ts';
import { randomToken, secretEquals, sha256 } from '../../lib/crypto.ts';
import type { OidcHolder } from '../../oidc/keyring.ts';
import { PROVIDER_ROUTES } from '../../oidc/provider.ts';
import type { UserService } from '../../users/service.ts';

/** The account page's paths: where it may come back to after a sign-in, and nothing else. */
export const ACCOUNT_PATH = '/account';

/**
 * Where a sign-in may bring the person back to: the account page or one of its pages (letters,
 * digits, `-` and `_` in at most four segments). No query, no `//`, no `..`, no other host.
 */
export function accountReturnPath(value: unknown): string {
  if (typeof value !== 'string' || value.length > 300) return ACCOUNT_PATH;
  return /^\/account(\/[A-Za-z0-9_-]{1,200}){0,4}$/.test(value) ? value : ACCOUNT_PATH;
}

/** The account page's session, as a request finds it. */
export interface AccountSession {
  /** The cookie's secret value (only its hash is stored). */
  id: string;
  userId: string;
  email: string;
  /** The browser session (of this provider) it was opened from: it ends when that one ends. */
  sessionUid: string;
  /** When the person last proved who they are (seconds since the epoch). */
  authTime: number;
}

interface StoredSession {
  userId: string;
  sessionUid: string;
  authTime: number;
  amr?: string[] | undefined;
  acr?: string | undefined;
}

interface PendingSignIn {
  codeVerifier: string;
  returnTo: string;
  /** A sign-in asked for because the last one was not recent enough: it must be newer than `startedAt`. */
  reauth: boolean;
  startedAt: number;
}

/** Why a sign-in could not be completed (each has its own page). */
export type SignInFailure = 'expired' | 'cancelled' | 'failed';

export interface AccountSessionDeps {
  oidc: OidcHolder;
  artifacts: Pick<ArtifactStore, 'create' | 'find' | 'findUnique' | 'consume' | 'destroy'>;
  users: Pick<UserService, 'findActive'>;
  config: Pick<Config, 'issuer' | 'secure' | 'ttl' | 'recentAuthSeconds'>;
  csrfKey: string;
}

/**
 * The account page is a client of this provider (ACCOUNT_CLIENT_ID): it signs the person in with
 * the authorization code flow and PKCE through /authorize, so every way of signing in applies,
 * and redeems its code here, in the process, as the token endpoint would (client, redirect URI,
 * PKCE verifier and grant checked; used once), without asking the server over the network for
 * its own tokens. It then keeps a session of its own: an HttpOnly, SameSite=Lax cookie holding
 * a random id, signed; the stored record (an artifact, by the id's hash) names the person, when
 * they signed in, and the browser session of this provider it came from. It ends when that
 * browser session ends (signing out, a password change elsewhere, an admin), when the account is
 * disabled or deleted, and when the browser closes.
 */
export function accountSessions(deps: AccountSessionDeps) {
  const { artifacts, config } = deps;
  const secure = config.secure;
  const COOKIE = secure ? '__Host-idp_account' : 'idp_account';
  // Scoped to the callback's path; __Host- requires path "/".
  const LOGIN_COOKIE = secure ? '__Secure-idp_account_login' : 'idp_account_login';
  const redirectUri = `${config.issuer}${ACCOUNT_CLIENT_PATHS.callback}`;
  const pendingTtl = Math.min(config.ttl.interaction, 3600);

  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure, path: '/' };
  const loginCookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure, path: ACCOUNT_CLIENT_PATHS.callback };

  function unsigned(req: FastifyRequest, name: string): string | null {
    const raw = req.cookies[name];
    if (!raw) return null;
    const value = req.unsignCookie(raw);
    return value.valid && value.value ? value.value : null;
  }

  const live = (row: { expiresAt: Date | null; consumedAt?: Date | null } | null): row is { expiresAt: Date | null; consumedAt?: Date | null } =>
    Boolean(row && !row.consumedAt && (!row.expiresAt || row.expiresAt.getTime() > Date.now()));

  /** The code the provider sent back, redeemed once: who signed in, when, and in which browser session. */
  async function redeem(code: string, codeVerifier: string): Promise<StoredSession | null> {
    const provider = deps.oidc.current;
    const found = await provider.AuthorizationCode.find(code.slice(0, 200));
    if (!found?.accountId || !found.sessionUid || found.authTime === undefined) return null;
    if (found.clientId !== ACCOUNT_CLIENT_ID || found.redirectUri !== redirectUri) return null;
    if (found.codeChallengeMethod !== 'S256' || !found.codeChallenge || !secretEquals(sha256(codeVerifier), found.codeChallenge)) return null;
    const grant = await provider.Grant.find(found.grantId ?? '');
    if (!grant || grant.accountId !== found.accountId || grant.clientId !== ACCOUNT_CLIENT_ID) return null;
    // Atomic (the store marks it used once): a code already used, or used in parallel, is refused here.
    try {
      await found.consume();
    } catch {
      return null;
    }
    return { userId: found.accountId, sessionUid: found.sessionUid, authTime: found.authTime, amr: found.amr, acr: found.acr };
  }

  /** The browser session the account session was opened from, if it is still signed in as that person. */
  async function browserSessionAlive(stored: StoredSession): Promise<boolean> {
    const row = await artifacts.findUnique({ uid: stored.sessionUid });
    if (!row || row.model !== MODEL.session || !live(row)) return false;
    return (JSON.parse(row.payload) as { accountId?: string }).accountId === stored.userId;
  }

  return {
    redirectUri,

    /** The request's account session, or null (none, ended, or its browser session or account gone). */
    async current(req: FastifyRequest): Promise<AccountSession | null> {
      const id = unsigned(req, COOKIE);
      if (!id || id.length > 100) return null;
      const row = await artifacts.find(MODEL.accountSession, sha256(id));
      if (!live(row)) return null;
      const stored = JSON.parse(row.payload) as StoredSession;
      if (!(await browserSessionAlive(stored))) return null;
      const user = await deps.users.findActive(stored.userId);
      if (!user) return null;
      return { id, userId: user.id, email: user.email, sessionUid: stored.sessionUid, authTime: stored.authTime };
    },

    /** Whether the person proved who they are recently enough for a sensitive action. */
    isRecent: (session: AccountSession) => Math.floor(Date.now() / 1000) - session.authTime <= config.recentAuthSeconds,

    /** The CSRF token of the account page's forms: bound to its session (an HMAC of the session's id). */
    csrfToken: (session: AccountSession) => createHmac('sha256', deps.csrfKey).update(`account-form:${session.id}`).digest('base64url'),

    /**
     * Starts a sign-in: a pending record (PKCE verifier, where to come back to) under a random
     * `state`, which a cookie binds to this browser; returns the authorization request to send
     * the browser to. `reauth`: the person must sign in again, whatever their session.
     */
    async start(reply: FastifyReply, opts: { returnTo: string; reauth: boolean; loginHint?: string | undefined }): Promise<string> {
      const state = randomToken(24);
      const codeVerifier = randomToken(32);
      const pending: PendingSignIn = { codeVerifier, returnTo: accountReturnPath(opts.returnTo), reauth: opts.reauth, startedAt: Math.floor(Date.now() / 1000) };
      await artifacts.create(MODEL.accountLogin, state, pending, pendingTtl);
      reply.setCookie(LOGIN_COOKIE, state, { ...loginCookieOptions, signed: true, maxAge: pendingTtl });
      const params = new URLSearchParams({
        client_id: ACCOUNT_CLIENT_ID,
        response_type: 'code',
        redirect_uri: redirectUri,
        scope: 'openid',
        state,
        code_challenge: sha256(codeVerifier),
        code_challenge_method: 'S256',
        ...(opts.reauth ? { prompt: 'login', max_age: '0' } : {}),
        ...(opts.loginHint ? { login_hint: opts.loginHint } : {}),
      });
      return `${PROVIDER_ROUTES.authorization}?${params}`;
    },

    /**
     * The provider's answer at the callback: the pending sign-in this browser started (its
     * cookie must name the `state`), used once; then the code redeemed and the session opened.
     * Returns where to go next, or why not.
     */
    async complete(req: FastifyRequest, reply: FastifyReply, query: { state?: string | undefined; code?: string | undefined; error?: string | undefined }): Promise<{ returnTo: string } | { failure: SignInFailure }> {
      const state = query.state ?? '';
      const bound = unsigned(req, LOGIN_COOKIE);
      reply.clearCookie(LOGIN_COOKIE, loginCookieOptions);
      if (!state || !bound || !secretEquals(state, bound)) return { failure: 'expired' };
      const row = await artifacts.find(MODEL.accountLogin, state);
      if (!live(row) || !(await artifacts.consume(MODEL.accountLogin, state))) return { failure: 'expired' };
      const pending = JSON.parse(row.payload) as PendingSignIn;
      if (query.error) return { failure: query.error === 'access_denied' ? 'cancelled' : 'failed' };
      const signedIn = query.code ? await redeem(query.code, pending.codeVerifier) : null;
      // A sign-in asked for again must be a new one, not the old one passed along.
      if (!signedIn || (pending.reauth && signedIn.authTime < pending.startedAt)) return { failure: 'failed' };
      // A new session (a new id) at every sign-in; the previous one of this browser ends.
      const previous = unsigned(req, COOKIE);
      if (previous && previous.length <= 100) await artifacts.destroy(MODEL.accountSession, sha256(previous));
      const id = randomToken(32);
      await artifacts.create(MODEL.accountSession, sha256(id), signedIn, config.ttl.session);
      reply.setCookie(COOKIE, id, { ...cookieOptions, signed: true });
      return { returnTo: accountReturnPath(pending.returnTo) };
    },

    /** Ends the account session of this browser (the browser session of the provider stays). */
    async end(req: FastifyRequest, reply: FastifyReply): Promise<void> {
      const id = unsigned(req, COOKIE);
      if (id && id.length <= 100) await artifacts.destroy(MODEL.accountSession, sha256(id));
      reply.clearCookie(COOKIE, cookieOptions);
    },

    /** Forgets a cookie that names no live session. */
    clear(reply: FastifyReply): void {
      reply.clearCookie(COOKIE, cookieOptions);
    },

    /** Whether the request carries an account cookie at all (an ended session, say). */
    hasCookie: (req: FastifyRequest) => Boolean(req.cookies[COOKIE]),
  };
}
