import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { badRequest } from '../lib/errors.ts';
import { cookieSecrets } from '../lib/server-secrets.ts';
import { createLogger } from '../logger.ts';
import { providerPorts } from '../services.ts';
import { type CreateClientInput, DEVICE_CODE_GRANT, REFRESH_REUSE_MAX_SECONDS } from '../clients/service.ts';
import { listOf } from '../lib/lists.ts';
import { bool, choice, CLAIM_HELP, claimsOption, collect, given, integer, jsonOption, pageOptions, print, who, withServices, type JsonOption } from './kit.ts';

type GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials' | typeof DEVICE_CODE_GRANT;

/** `--grant-type device_code` is short for the device authorization grant's URN (RFC 8628). */
const grantTypeOption = (value: string, previous: string[] = []) => collect(value === 'device_code' ? DEVICE_CODE_GRANT : value, previous);

/** `--api "<identifier> <scope> …"` (repeatable) → { identifier: [scopes] }; `--no-api` → no API at all. */
function apisOption(specs: string[] | false | undefined): Record<string, string[]> | undefined {
  if (specs === undefined) return undefined;
  if (specs === false) return {};
  const apis: Record<string, string[]> = {};
  for (const spec of specs) {
    const [identifier, ...scopes] = spec.split(/\s+/).filter(Boolean);
    if (!identifier) throw badRequest('--api expects "<API identifier> [scope ...]"');
    apis[identifier] = [...(apis[identifier] ?? []), ...scopes];
  }
  return apis;
}

const API_HELP = 'an API the client may get tokens for, with the scopes it may receive there: "https://api.example.com read write" (repeatable)';

/** The metadata options `create` and `update` share (on update, a list given replaces the registered one). */
interface MetadataOptions {
  redirectUri?: string[];
  postLogoutRedirectUri?: string[];
  allowedOrigin?: string[];
  applicationType?: 'web' | 'native';
  grantType?: GrantType[];
  scope?: string;
  api?: string[] | false;
  /** false: `--no-logo-uri` (update only), the link removed. */
  logoUri?: string | false;
  policyUri?: string | false;
  tosUri?: string | false;
  clientUri?: string | false;
  requirePkce?: boolean;
  requirePar?: boolean;
  /** false: `--no-backchannel-logout-uri` (update only), the URI removed. */
  backchannelLogoutUri?: string | false;
  backchannelLogoutSessionRequired?: boolean;
  /** false: `--no-claim` (update only), every mapping removed. */
  claim?: string[] | false;
  idTokenUserClaims?: boolean;
  requireDpop?: boolean;
  requireSignedRequest?: boolean;
  refreshReuseInterval?: number;
  jwks?: Jwks;
  jwksUri?: string;
}

type Jwks = NonNullable<CreateClientInput['jwks']>;

/** `--jwks FILE`: the JWK Set in it (its keys are checked by the client service). */
function readJwks(path: string): Jwks {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw badRequest(`--jwks: cannot read ${path}`);
  }
  try {
    return JSON.parse(text) as Jwks;
  } catch {
    throw badRequest(`--jwks: ${path} is not JSON (a JWK Set: {"keys": [...]})`);
  }
}

/** The links to the app's pages (https URLs only): field, flag, help, and what `--no-<flag>` removes. */
const LINKS = [
  ['logoUri', 'logo-uri', "the app's logo, shown on the consent page", 'logo'],
  ['policyUri', 'policy-uri', "the app's privacy policy, linked from the consent page", 'privacy policy'],
  ['tosUri', 'tos-uri', "the app's terms of service, linked from the consent page", 'terms of service'],
  ['clientUri', 'client-uri', "the app's home page", 'home page'],
] as const;

const metadataOptions = (cmd: Command) =>
  LINKS.reduce(
    (c, [, flag, help]) => c.option(`--${flag} <url>`, `${help} (an absolute https URL)`),
    cmd
      .option('--redirect-uri <uri>', 'redirect URI (repeatable)', collect)
      .option('--post-logout-redirect-uri <uri>', 'post-logout redirect URI (repeatable)', collect)
      .option('--allowed-origin <origin>', 'extra browser origin allowed to call the token endpoint (repeatable)', collect)
      .addOption(choice('--application-type <type>', 'native: an installed app whose loopback redirect URIs (http://127.0.0.1/…) match any port (default: native when a redirect URI uses a private-use scheme, else web)', ['web', 'native']))
      .addOption(
        new Option('--grant-type <type>', `allowed grant type (repeatable): authorization_code, refresh_token, client_credentials, device_code (short for ${DEVICE_CODE_GRANT})`).argParser(grantTypeOption),
      )
      .option('--jwks <file>', "a JSON file with the client's public keys (a JWK Set): it authenticates with private_key_jwt, and gets no secret", readJwks)
      .option('--jwks-uri <url>', 'where the client publishes its public keys (https), instead of --jwks')
      .option('--claim <name=source>', `${CLAIM_HELP}; added to its ID tokens and userinfo responses (on update: replaces its claim mappings)`, collect)
      .option(
        '--id-token-user-claims <bool>',
        'true: its ID tokens carry the person’s claims of the granted scopes (email, email_verified, name, updated_at), as userinfo does (apps that read the user from the ID token, such as Auth.js)',
        bool('--id-token-user-claims'),
      )
      .option('--require-pkce <bool>', 'false: a legacy confidential app that cannot send PKCE may skip it (public clients always use it)', bool('--require-pkce'))
      .option('--require-par <bool>', 'true: its authorization requests must be pushed first (PAR, RFC 9126)', bool('--require-par'))
      .option('--backchannel-logout-uri <url>', 'where the app receives logout tokens when a session it signed in to ends (OpenID Connect Back-Channel Logout; https, or http on a loopback host)')
      .option('--backchannel-logout-session-required <bool>', 'true: the app needs the sid claim in logout tokens (it is always sent)', bool('--backchannel-logout-session-required'))
      .option('--require-signed-request <bool>', 'true: its authorization requests must be request objects signed with its keys (JAR, RFC 9101; needs --jwks or --jwks-uri)', bool('--require-signed-request'))
      .option('--require-dpop <bool>', 'true: its access tokens must be DPoP-bound (RFC 9449): token requests without a DPoP proof are refused', bool('--require-dpop'))
      .option(
        '--refresh-reuse-interval <seconds>',
        `seconds (0-${REFRESH_REUSE_MAX_SECONDS}) after a refresh-token rotation in which the rotated-out token gets the same successor again (parallel refreshes); 0: presenting it again revokes the grant`,
        integer('--refresh-reuse-interval', 0, REFRESH_REUSE_MAX_SECONDS),
      ),
  );

/** `--no-logo-uri` and the others (update): each removes its link. */
const removeLinkOptions = (cmd: Command) => LINKS.reduce((c, [, flag, , what]) => c.option(`--no-${flag}`, `remove the ${what} link`), cmd);

/** The links removed with `--no-…`, as the client service's fields (null removes). */
const removedLinks = (opts: MetadataOptions) => Object.fromEntries(LINKS.filter(([field]) => opts[field] === false).map(([field]) => [field, null])) as Partial<Record<(typeof LINKS)[number][0], null>>;

/** A link option as given (`--no-…` is read by removedLinks). */
const link = (value: string | false | undefined) => (value === false ? undefined : value);

/** Those options, as the client service's fields (undefined where not given). */
const metadataInput = (opts: MetadataOptions) => ({
  redirectUris: opts.redirectUri,
  postLogoutRedirectUris: opts.postLogoutRedirectUri,
  allowedOrigins: opts.allowedOrigin,
  applicationType: opts.applicationType,
  grantTypes: opts.grantType,
  scope: opts.scope,
  apis: apisOption(opts.api),
  jwks: opts.jwks,
  jwksUri: opts.jwksUri,
  claimMappings: claimsOption(opts.claim),
  idTokenUserClaims: opts.idTokenUserClaims,
  requirePkce: opts.requirePkce,
  requirePushedAuthorizationRequests: opts.requirePar,
  backchannelLogoutUri: link(opts.backchannelLogoutUri),
  backchannelLogoutSessionRequired: opts.backchannelLogoutSessionRequired,
  dpopBoundAccessTokens: opts.requireDpop,
  requireSignedRequestObject: opts.requireSignedRequest,
  refreshTokenReuseInterval: opts.refreshReuseInterval,
  logoUri: link(opts.logoUri),
  policyUri: link(opts.policyUri),
  tosUri: link(opts.tosUri),
  clientUri: link(opts.clientUri),
});

/** A client that may skip PKCE is a legacy exception: said on standard error whenever it is shown. */
function warnIfPkceOptional(client: { clientId: string; requirePkce: boolean }) {
  if (!client.requirePkce) {
    process.stderr.write(`warning: ${client.clientId} may sign people in without PKCE (a legacy app); its authorization requests without a code challenge must send a nonce, which it must check in the ID token\n`);
  }
}

/** `idp clients …`: mirrors /admin/v1/clients, plus initial access tokens for dynamic registration. */
export function clientCommands(program: Command) {
  const clients = program.command('clients').description('manage OAuth clients');
  jsonOption(
    metadataOptions(clients.command('create').description('register a client; its secret is printed once and never stored').requiredOption('--name <name>', 'display name, shown on the login and consent pages'))
      .option('--public', 'a public client (single-page or native app): no secret, PKCE only')
      .option('--admin', 'an admin client: client_credentials for the admin API (scopes admin and admin:read)')
      .option('--first-party', 'your own app: its users are not asked for consent (the grant is recorded all the same)')
      .option('--require-mfa', 'people signing in to this app must use a second factor (those without one are taken through adding one)')
      .option('--scope <scopes>', 'space-separated OpenID Connect scopes the client may request', 'openid profile email offline_access')
      .option('--api <spec>', API_HELP, collect)
      .option('--role <role>', 'give the client a role (repeatable): its own tokens for an API that enforces roles carry only what its roles grant', collect),
  ).action(
    async (opts: JsonOption & MetadataOptions & { name: string; public?: boolean; admin?: boolean; firstParty?: boolean; requireMfa?: boolean; role?: string[] }) => {
      if (opts.admin && (opts.public || opts.redirectUri)) throw badRequest('an admin client is confidential and has no redirect URIs');
      if (opts.admin && opts.firstParty) throw badRequest('an admin client signs nobody in: --first-party does not apply');
      if (opts.admin && opts.requireMfa) throw badRequest('an admin client signs nobody in: --require-mfa does not apply');
      if (opts.admin && opts.api) throw badRequest('an admin client is for the admin API only: --api does not apply');
      if (opts.admin && opts.role) throw badRequest('an admin client is for the admin API only, whose access roles do not change: --role does not apply');
      const { created, roles } = await withServices(async (s) => {
        // Every role is checked before the client exists: a typo creates nothing.
        for (const role of opts.role ?? []) await s.roles.get(role);
        const made = await s.clients.create(
          { ...metadataInput(opts), name: opts.name, public: Boolean(opts.public), firstParty: Boolean(opts.firstParty), requireMfa: Boolean(opts.requireMfa) },
          who,
          { admin: opts.admin },
        );
        const given = [];
        for (const role of opts.role ?? []) given.push((await s.roles.assignToClient(made.client.clientId, role, who)).name);
        return { created: made, roles: given };
      });
      const { clientId } = created.client;
      warnIfPkceOptional(created.client);
      const roleLine = roles.length ? `\nroles:        ${roles.join(', ')}` : '';
      print(
        opts,
        // The admin API's shape; `roles` only when some were given.
        { ...created, ...(roles.length ? { roles } : {}) },
        created.clientSecret
          ? `clientId:     ${clientId}\nclientSecret: ${created.clientSecret}${roleLine}\nStore the secret now: it cannot be shown again.`
          : `clientId: ${clientId} (public client, no secret)${roleLine}`,
      );
    },
  );
  jsonOption(pageOptions(clients.command('list').description('list clients').option('--name <text>', 'part of the name'))).action(async (opts: JsonOption & { name?: string; limit: number; offset: number }) => {
    const result = await withServices(({ clients }) => clients.list(opts));
    print(opts, listOf(result.items, { ...opts, total: result.total }), result.items.map((c) => `${c.clientId}  ${c.name}${c.disabled ? '  (disabled)' : ''}`).join('\n') || 'No clients.');
  });
  jsonOption(clients.command('show <client_id>').description('show a client (never its secret)')).action(async (id: string, opts: JsonOption) => {
    const client = await withServices(({ clients }) => clients.get(id));
    warnIfPkceOptional(client);
    print(opts, { ...client });
  });
  jsonOption(
    removeLinkOptions(metadataOptions(clients.command('update <client_id>').description('change a client’s metadata; a list given replaces the registered one').option('--name <name>', 'display name')))
      .option('--no-backchannel-logout-uri', 'remove the back-channel logout URI')
      .option('--scope <scopes>', 'space-separated OpenID Connect scopes the client may request')
      .option('--api <spec>', `${API_HELP}; replaces the client's APIs`, collect)
      .option('--no-api', 'remove every API the client may use')
      .option('--no-claim', 'remove every claim mapping of the client')
      .option('--first-party <bool>', 'true: your own app, its users are not asked for consent; false: they are', bool('--first-party'))
      .option('--require-mfa <bool>', 'true: people signing in to this app must use a second factor; false: only as the other rules say', bool('--require-mfa')),
  ).action(async (id: string, opts: JsonOption & MetadataOptions & { name?: string; firstParty?: boolean; requireMfa?: boolean }) => {
    const patch = given({ ...metadataInput(opts), ...removedLinks(opts), ...(opts.backchannelLogoutUri === false ? { backchannelLogoutUri: null } : {}), name: opts.name, firstParty: opts.firstParty, requireMfa: opts.requireMfa });
    if (!Object.keys(patch).length) throw badRequest('nothing to update: give at least one option');
    const client = await withServices(({ clients }) => clients.update(id, patch, who));
    warnIfPkceOptional(client);
    print(opts, { ...client });
  });
  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    jsonOption(clients.command(`${name} <client_id>`).description(disabled ? 'disable a client: its grants and tokens are revoked at once' : 'enable a client')).action(async (id: string, opts: JsonOption) =>
      print(opts, { ...(await withServices(({ clients }) => clients.setDisabled(id, disabled, who))) }),
    );
  }
  jsonOption(clients.command('delete <client_id>').description('delete a client and revoke its grants and tokens')).action(async (id: string, opts: JsonOption) => {
    await withServices(({ clients }) => clients.delete(id, who));
    print(opts, { deleted: id }, `Deleted client ${id}`);
  });
  const roles = clients.command('roles').description('the roles a machine client has: its own tokens (client_credentials) for an API that enforces roles carry only what they grant');
  jsonOption(roles.command('list <client_id>').description('list a client’s roles')).action(async (id: string, opts: JsonOption) => {
    const list = await withServices(({ roles }) => roles.ofClient(id));
    print(opts, { items: list }, list.map((r) => r.name).join('\n') || 'No roles.');
  });
  jsonOption(roles.command('add <client_id> <role>').description('give a client a role (not a built-in or an admin client)')).action(async (id: string, role: string, opts: JsonOption) => {
    const given = await withServices(({ roles }) => roles.assignToClient(id, role, who));
    print(opts, { ...given }, `${id} has the role ${given.name}`);
  });
  jsonOption(roles.command('remove <client_id> <role>').description('take a role from a client')).action(async (id: string, role: string, opts: JsonOption) => {
    await withServices(({ roles }) => roles.unassignFromClient(id, role, who));
    print(opts, { removed: role }, `${id} no longer has the role ${role}`);
  });
  jsonOption(
    clients
      .command('rotate-secret <client_id>')
      .description('issue a new secret, printed once')
      .option('--overlap <seconds>', 'keep the old secret valid this long (default 0: it stops at once)', integer('--overlap'), 0),
  ).action(async (id: string, opts: JsonOption & { overlap: number }) => {
    const rotated = await withServices(({ clients }) => clients.rotateSecret(id, opts.overlap, who));
    const until = rotated.client.previousSecretExpiresAt;
    print(opts, { ...rotated }, `clientSecret: ${rotated.clientSecret}\n${until ? `The old secret works until ${until.toISOString()}.` : 'The old secret no longer works.'}`);
  });
  jsonOption(
    clients
      .command('initial-access-token')
      .description('initial access tokens for dynamic client registration (RFC 7591)')
      .command('create')
      .description('create a token that allows registering clients at /register')
      .option('--expires-in <seconds>', 'lifetime in seconds (60 to one year)', integer('--expires-in', 60, 365 * 24 * 3600), 3600)
      .option('--uses <n>', 'how many clients it may register: a number (default 1), or "unlimited" until it expires', '1'),
  ).action(async (opts: JsonOption & { expiresIn: number; uses: string }) => {
    if (opts.uses !== 'unlimited' && !(/^\d+$/.test(opts.uses) && Number(opts.uses) >= 1 && Number(opts.uses) <= 10_000)) {
      throw badRequest('--uses must be a number from 1 to 10000, or "unlimited"');
    }
    const uses = opts.uses === 'unlimited' ? null : Number(opts.uses);
    const token = await withServices(async (services, db, config) => {
      // The provider mints the token in its own format (loaded only for this command).
      const [{ createProvider }, { createViews }, { providerPages }] = await Promise.all([import('../oidc/provider.ts'), import('../http/views.ts'), import('../http/provider-pages.ts')]);
      const provider = createProvider({
        config,
        jwks: await services.keys.loadPrivateJwks(),
        cookieSecrets: await cookieSecrets(config, db.prisma),
        ports: providerPorts(services),
        pages: providerPages(createViews(services.templates, config)),
        log: createLogger('silent'),
      });
      const iat = new provider.InitialAccessToken({ expiresIn: opts.expiresIn });
      const value = await iat.save();
      await services.artifacts.limitInitialAccessToken(iat.jti, uses);
      await services.audit.record(who, 'initial_access_token.created', null, { expiresIn: opts.expiresIn, uses: uses ?? 'unlimited' });
      return value;
    });
    const expiresAt = new Date(Date.now() + opts.expiresIn * 1000).toISOString();
    print(
      opts,
      { initialAccessToken: token, expiresAt, uses: uses ?? 'unlimited' },
      `initialAccessToken: ${token}\nexpires: ${expiresAt}\nregisters: ${uses === null ? 'any number of clients until then' : `${uses} client${uses === 1 ? '' : 's'}`}`,
    );
  });
}
