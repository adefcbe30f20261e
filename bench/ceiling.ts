/**
 * The CEILING: a bare oidc-provider with its built-in in-memory adapter, configured like ours
 * (src/oidc/provider.ts) where it matters for cost: the same signing keys and algorithms (RS256
 * ID tokens, JWT access tokens for the API signed with its alg), PKCE for every client,
 * client_credentials, refresh rotation on every use, introspection, userinfo, the same TTLs and
 * endpoint paths. Accounts are a constant (no database); interactions sign in and consent at once.
 *
 * Started by bench/run.ts as a child process: `node bench/ceiling.ts` with BENCH_CEILING_CONFIG.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';
import type { Fixture } from './lib/fixture.ts';

const fixture = JSON.parse(process.env.BENCH_CEILING_CONFIG ?? '') as Fixture;

const NO_HMAC = ['RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA'] as const;
const ROUTES = {
  authorization: '/authorize',
  token: '/token',
  userinfo: '/userinfo',
  jwks: '/jwks',
  revocation: '/token/revocation',
  introspection: '/token/introspection',
  end_session: '/session/end',
  pushed_authorization_request: '/par',
} as const;

/** The same key set ours generates on first start: RSA-2048, P-256 and Ed25519, one of each. */
async function signingKeys(): Promise<JWK[]> {
  const specs = [
    ['RS256', () => generateKeyPair('RS256', { modulusLength: 2048, extractable: true })],
    ['ES256', () => generateKeyPair('ES256', { extractable: true })],
    ['EdDSA', () => generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })],
  ] as const;
  const keys: JWK[] = [];
  for (const [alg, generate] of specs) {
    const { privateKey } = await generate();
    keys.push({ ...(await exportJWK(privateKey)), kid: `ceiling-${alg}`, alg, use: 'sig' });
  }
  return keys;
}

const ACCOUNT_ID = 'ceiling-user';
const account = {
  accountId: ACCOUNT_ID,
  async claims() {
    return { sub: ACCOUNT_ID, email: fixture.user.email, email_verified: true, name: 'Bench User', updated_at: 1_700_000_000 };
  },
};

// The built-in adapter, with a store larger than its default 1000 entries: the pre-minted pools
// of codes and refresh tokens must not be evicted before the load generator uses them.
const store = new LRU({ maxSize: 10_000_000 });

const configuration: Configuration = {
  adapter: (model: string) => new MemoryAdapter(model, store),
  clients: [
    {
      client_id: fixture.clientId,
      client_secret: fixture.clientSecret,
      client_name: 'Bench App',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      redirect_uris: [fixture.redirectUri],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid profile email offline_access',
    },
  ],
  jwks: { keys: (await signingKeys()) as NonNullable<Configuration['jwks']>['keys'] },
  cookies: {
    keys: ['ceiling-cookie-key-0123456789abcdef0123456789'],
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax', path: '/' },
  },
  routes: ROUTES,
  responseTypes: ['code'],
  pkce: { required: () => true },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
  enabledJWA: {
    clientAuthSigningAlgValues: NO_HMAC,
    requestObjectSigningAlgValues: NO_HMAC,
    idTokenSigningAlgValues: NO_HMAC,
    userinfoSigningAlgValues: NO_HMAC,
    introspectionSigningAlgValues: NO_HMAC,
    authorizationSigningAlgValues: NO_HMAC,
  },
  clientDefaults: {
    grant_types: ['authorization_code'],
    id_token_signed_response_alg: 'RS256',
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: {
    openid: ['sub', 'acr', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'updated_at'],
  },
  async findAccount(_ctx, sub) {
    return sub === ACCOUNT_ID ? account : undefined;
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // As ours: the single candidate, if any (ours also maps admin scopes to its admin API).
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: () => true,
      async getResourceServerInfo(_ctx, indicator) {
        if (indicator !== fixture.api.identifier) throw new Error(`unknown resource ${indicator}`);
        return {
          scope: fixture.api.scopes.join(' '),
          audience: fixture.api.identifier,
          accessTokenTTL: fixture.api.accessTokenTtl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: fixture.api.signingAlg as 'RS256' } },
        };
      },
    },
  },
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? fixture.ttl.accessToken,
    ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? fixture.ttl.accessToken,
    AuthorizationCode: fixture.ttl.authorizationCode,
    IdToken: fixture.ttl.idToken,
    RefreshToken: (ctx) => ctx?.oidc?.entities.RotatedRefreshToken?.remainingTTL ?? fixture.ttl.refreshToken,
    Session: fixture.ttl.session,
    Interaction: fixture.ttl.interaction,
    Grant: Math.max(fixture.ttl.refreshToken, fixture.ttl.session),
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
};

const provider = new Provider(fixture.issuer, configuration);
const callback = provider.callback();

/** Signs in and consents at once: the ceiling has no pages, no passwords and no forms. */
async function interaction(req: IncomingMessage, res: ServerResponse) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT_ID } }, { mergeWithLastSubmission: false });
    return;
  }
  // Built as src/oidc/consent.ts builds it, not imported from there: the ceiling measures oidc-provider alone.
  const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
  const grant = (details.grantId ? await provider.Grant.find(details.grantId) : undefined)
    ?? new provider.Grant({ accountId: details.session!.accountId, clientId: String(details.params.client_id) });
  if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
}

const server = createServer((req, res) => {
  if (req.url === '/readyz') {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end('{"status":"ready"}');
    return;
  }
  if (req.url?.startsWith('/interaction/')) {
    interaction(req, res).catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
    return;
  }
  void callback(req, res);
});
// As Fastify does by default: connections of the load generator stay open between scenarios.
server.keepAliveTimeout = 72_000;
server.listen(fixture.port, '127.0.0.1');

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
