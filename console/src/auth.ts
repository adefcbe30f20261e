import * as oauth from 'oauth4webapi';
import { CALLBACK, config, SIGNED_OUT } from './config.ts';

/**
 * Signing the admin in: the authorization code flow with PKCE as the built-in public client,
 * through the IdP's own sign-in pages. The tokens live in this page's memory only; the PKCE
 * verifier and state wait in sessionStorage across the redirect and are removed on return.
 */
const PENDING = 'idp-console:pending';
const SCOPE = 'openid offline_access admin admin:read';
const client: oauth.Client = { client_id: config.clientId };
const none = oauth.None();
const options = { [oauth.allowInsecureRequests]: config.issuer.startsWith('http://') };

let server: oauth.AuthorizationServer | undefined;
async function discover(): Promise<oauth.AuthorizationServer> {
  if (!server) {
    const issuer = new URL(config.issuer);
    server = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...options, algorithm: 'oidc' }));
  }
  return server;
}

export interface Session {
  accessToken: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  refreshToken: string | undefined;
  idToken: string | undefined;
  userId: string;
  scopes: Set<string>;
}

let session: Session | undefined;
const listeners = new Set<() => void>();
export const onSessionChange = (fn: () => void) => {
  listeners.add(fn);
  return () => listeners.delete(fn);
};
export const currentSession = () => session;

function remember(tokens: oauth.TokenEndpointResponse, previous?: Session): Session {
  const claims = oauth.getValidatedIdTokenClaims(tokens);
  session = {
    accessToken: tokens.access_token,
    expiresAt: Date.now() + (tokens.expires_in ?? 300) * 1000,
    refreshToken: tokens.refresh_token ?? previous?.refreshToken,
    idToken: tokens.id_token ?? previous?.idToken,
    userId: claims?.sub ?? previous?.userId ?? '',
    scopes: new Set((tokens.scope ?? '').split(' ').filter(Boolean)),
  };
  for (const fn of listeners) fn();
  return session;
}

/** Off to the sign-in page; `back` is the console path to return to. */
export async function signIn(back: string): Promise<never> {
  const as = await discover();
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, back }));
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({
    client_id: config.clientId,
    response_type: 'code',
    redirect_uri: CALLBACK,
    scope: SCOPE,
    resource: config.adminApi,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    ui_locales: document.documentElement.lang,
    // A refresh token needs offline_access, which OpenID Connect grants only with prompt=consent;
    // the console is first-party, so nobody is asked.
    prompt: 'consent',
  }).toString();
  location.assign(url);
  return new Promise<never>(() => {});
}

/** Back from the sign-in page: the code exchanged for tokens. Returns the path to go on to. */
export async function completeSignIn(current: URL): Promise<string> {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? 'null') as { verifier: string; state: string; back: string } | null;
  sessionStorage.removeItem(PENDING);
  if (!pending) throw new Error('no sign-in was started in this tab');
  const as = await discover();
  const params = oauth.validateAuthResponse(as, client, current, pending.state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, none, params, CALLBACK, pending.verifier, { ...options, additionalParameters: { resource: config.adminApi } });
  remember(await oauth.processAuthorizationCodeResponse(as, client, response));
  return pending.back;
}

let refreshing: Promise<Session> | undefined;
/** A fresh access token from the refresh token (one refresh at a time: the refresh token rotates). */
export function refresh(): Promise<Session> {
  const previous = session;
  if (!previous?.refreshToken) return Promise.reject(new Error('not signed in'));
  refreshing ??= (async () => {
    try {
      const as = await discover();
      const response = await oauth.refreshTokenGrantRequest(as, client, none, previous.refreshToken!, { ...options, additionalParameters: { resource: config.adminApi } });
      return remember(await oauth.processRefreshTokenResponse(as, client, response), previous);
    } catch (err) {
      // The token may have been rotated all the same: never present it again (that would be
      // reuse, which revokes the grant); the next call signs in again.
      previous.refreshToken = undefined;
      throw err;
    } finally {
      refreshing = undefined;
    }
  })();
  return refreshing;
}

/** A token good for at least 30 more seconds. */
export async function accessToken(): Promise<string> {
  if (!session) throw new Error('not signed in');
  if (session.expiresAt - Date.now() < 30_000) return (await refresh()).accessToken;
  return session.accessToken;
}

/** RP-initiated logout: the IdP ends its session and comes back to the console's start. */
/** The state the IdP brings back after signing out: the start page then waits for a click. */
export const SIGNED_OUT_STATE = 'signed-out';

export async function signOut(): Promise<never> {
  const as = await discover();
  const idToken = session?.idToken;
  session = undefined;
  const url = new URL(as.end_session_endpoint!);
  url.search = new URLSearchParams({ client_id: config.clientId, post_logout_redirect_uri: SIGNED_OUT, state: SIGNED_OUT_STATE, ...(idToken ? { id_token_hint: idToken } : {}) }).toString();
  location.assign(url);
  return new Promise<never>(() => {});
}
