/**
 * What both servers are set up with: one user, one client, one API, and the same lifetimes.
 * The ceiling (bench/ceiling.ts) receives this as JSON in BENCH_CEILING_CONFIG.
 */
export interface Fixture {
  issuer: string;
  port: number;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  api: { identifier: string; scopes: string[]; accessTokenTtl: number; signingAlg: 'RS256' | 'ES256' | 'EdDSA' };
  user: { email: string; password: string };
  ttl: {
    accessToken: number;
    idToken: number;
    refreshToken: number;
    authorizationCode: number;
    session: number;
    interaction: number;
  };
}

/** Nothing listens there: the harness stops at the redirect and reads the code from it. */
export const REDIRECT_URI = 'http://127.0.0.1:9/callback';
export const API_IDENTIFIER = 'https://api.bench.example';
export const API_SCOPES = ['read', 'write'];
/** The OpenID Connect scopes the client may ask for (it may also use the API, with all its scopes). */
export const CLIENT_SCOPE = 'openid profile email offline_access';
export const USER = { email: 'bench@example.com', password: 'bench password that is long enough' };

/**
 * Our defaults (src/config.ts), except the authorization code lifetime: codes are minted before
 * a scenario and must survive until the load generator reaches them.
 */
export const TTL: Fixture['ttl'] = {
  accessToken: 600,
  idToken: 600,
  refreshToken: 14 * 24 * 3600,
  authorizationCode: 3600,
  session: 14 * 24 * 3600,
  interaction: 1800,
};

/** The environment of our service for these lifetimes. */
export function ttlEnv(ttl: Fixture['ttl'] = TTL): Record<string, string> {
  return {
    ACCESS_TOKEN_TTL: String(ttl.accessToken),
    ID_TOKEN_TTL: String(ttl.idToken),
    REFRESH_TOKEN_TTL: String(ttl.refreshToken),
    AUTHORIZATION_CODE_TTL: String(ttl.authorizationCode),
    SESSION_TTL: String(ttl.session),
    INTERACTION_TTL: String(ttl.interaction),
  };
}

/** The code-minting browsers' authorization request (signed in and consented once, then /authorize answers with a code at once). */
export const CODE_REQUEST = { scope: 'openid profile email read', resource: API_IDENTIFIER } as const;

/**
 * The login_flow scenario's request: authorize → login page → POST password (argon2id) →
 * consent page → POST allow → callback → token. prompt=consent keeps the consent page in every
 * sign-in (a returning person's consent is otherwise remembered, which would skip it after the first).
 */
export const LOGIN_REQUEST = { ...CODE_REQUEST, prompt: 'consent' } as const;
