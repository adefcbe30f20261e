import { Command, CommanderError, Option } from 'commander';
import { cliActor } from '../audit/service.ts';
import { loadConfig, loadDotEnv, type Config } from '../config.ts';
import { openDatabase, type Database } from '../db/index.ts';
import { migrate } from '../db/migrate.ts';
import { API_SIGNING_ALGS } from '../lib/constants.ts';
import { type AppError, badRequest, isExposed } from '../lib/errors.ts';
import { cookieSecrets } from '../lib/server-secrets.ts';
import { createLogger } from '../logger.ts';
import { createServices, providerPorts, type Services } from '../services.ts';

interface JsonOption {
  json?: boolean;
}

type Plain = Record<string, unknown>;

/** Readable lines for a value: `key: value`, nested values indented, lists one item a block. */
function human(value: unknown, indent = ''): string {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null)) return value.join(' ');
    return value.map((v) => `${indent}-\n${human(v, `${indent}  `)}`).join('\n');
  }
  if (value && typeof value === 'object') {
    return Object.entries(value)
      .map(([k, v]) => (v && typeof v === 'object' && !(v instanceof Date) && !(Array.isArray(v) && v.every((x) => typeof x !== 'object')) ? `${indent}${k}:\n${human(v, `${indent}  `)}` : `${indent}${k}: ${human(v)}`))
      .join('\n');
  }
  return String(value);
}

/** Prints a result: one JSON object with --json, otherwise readable lines. */
function print(opts: JsonOption, value: Plain, text?: string) {
  process.stdout.write(opts.json ? `${JSON.stringify(value)}\n` : `${text ?? human(value)}\n`);
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw badRequest('--password-stdin expects the password on standard input');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function password(opts: { password?: string; passwordStdin?: boolean }, required: boolean): Promise<string | undefined> {
  if (opts.password !== undefined && opts.passwordStdin) throw badRequest('give either --password or --password-stdin, not both');
  if (opts.password === undefined && !opts.passwordStdin) {
    if (required) throw badRequest('a password is required: --password or --password-stdin');
    return undefined;
  }
  return opts.passwordStdin ? readStdin() : opts.password;
}

/** Opens the configured database, brings its schema up to date, and runs `fn` with the services. */
async function withServices<T>(fn: (services: Services, db: Database, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDatabase(config.databaseUrl);
  try {
    await migrate(db);
    const services = createServices(db, config, createLogger('silent'));
    await services.clients.upgradeLegacyRegistrations();
    return await fn(services, db, config);
  } finally {
    await db.close();
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

const integer = (name: string) => (value: string) => {
  if (!/^\d+$/.test(value)) throw badRequest(`${name} must be a whole number`);
  return Number(value);
};

const bool = (name: string) => (value: string) => {
  if (!['true', 'false'].includes(value)) throw badRequest(`${name} must be true or false`);
  return value === 'true';
};

const pageOptions = (cmd: Command) =>
  cmd.option('--limit <n>', 'page size (1-200)', integer('--limit'), 50).option('--offset <n>', 'items to skip', integer('--offset'), 0);

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

const API_OPTION_HELP = 'an API the client may get tokens for, with the scopes it may receive there: "https://api.example.com read write" (repeatable)';

const grantTypeOption = () =>
  new Option('--grant-type <type>', 'allowed grant type (repeatable): authorization_code, refresh_token, client_credentials').argParser(collect);

/** Drops options that were not given, so that an update changes only what was asked. */
const given = <T extends Plain>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export function buildCli(): Command {
  const program = new Command('idp')
    .description('Administer the identity provider. Reads the same environment as the server (DATABASE_URL, ...).')
    .showHelpAfterError()
    .exitOverride();
  const who = cliActor();

  program
    .command('migrate')
    .description('apply pending database migrations')
    .option('--json', 'print the result as JSON')
    .action(async (opts: JsonOption) => {
      const config = loadConfig();
      const db = await openDatabase(config.databaseUrl);
      try {
        const applied = await migrate(db);
        print(opts, { applied }, applied.length ? `Applied: ${applied.join(', ')}` : 'The database is up to date.');
      } finally {
        await db.close();
      }
    });

  // ---- users
  const users = program.command('users').description('manage users');
  users
    .command('create')
    .description('create a user with a password')
    .requiredOption('--email <email>', 'email address (normalized: trimmed, NFKC, lower case)')
    .option('--password <password>', 'password (prefer --password-stdin: arguments show up in process lists)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--name <name>', 'display name')
    .option('--email-verified', 'mark the email address as verified')
    .option('--json', 'print the result as JSON')
    .action(async (opts: JsonOption & { email: string; password?: string; passwordStdin?: boolean; name?: string; emailVerified?: boolean }) => {
      const pw = await password(opts, true);
      const user = await withServices(({ users }) => users.create({ email: opts.email, password: pw, name: opts.name, emailVerified: Boolean(opts.emailVerified) }, who));
      print(opts, { id: user.id, email: user.email }, `Created user ${user.email} (id ${user.id})`);
    });
  pageOptions(users.command('list').description('list users').option('--q <text>', 'part of the email or name').option('--json', 'print the result as JSON')).action(
    async (opts: JsonOption & { q?: string; limit: number; offset: number }) => {
      const result = await withServices(({ users }) => users.list(opts));
      print(opts, { ...result, limit: opts.limit, offset: opts.offset }, result.items.map((u) => `${u.id}  ${u.email}${u.disabled ? '  (disabled)' : ''}`).join('\n') || 'No users.');
    },
  );
  users
    .command('show <id>')
    .description('show a user')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => print(opts, { ...(await withServices(({ users }) => users.get(id))) }));
  users
    .command('update <id>')
    .description('change a user’s email, name or email_verified')
    .option('--email <email>', 'new email address (becomes unverified unless --email-verified true)')
    .option('--name <name>', 'new display name')
    .option('--email-verified <bool>', 'true or false', bool('--email-verified'))
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption & { email?: string; name?: string; emailVerified?: boolean }) => {
      const patch = given({ email: opts.email, name: opts.name, emailVerified: opts.emailVerified });
      if (!Object.keys(patch).length) throw badRequest('nothing to update: give --email, --name or --email-verified');
      print(opts, { ...(await withServices(({ users }) => users.update(id, patch, who))) });
    });
  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    users
      .command(`${name} <id>`)
      .description(disabled ? 'disable a user: their sessions and tokens end at once' : 'enable a user')
      .option('--json', 'print the result as JSON')
      .action(async (id: string, opts: JsonOption) => print(opts, { ...(await withServices(({ users }) => users.setDisabled(id, disabled, who))) }));
  }
  users
    .command('delete <id>')
    .description('delete a user with their sessions, grants and tokens')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => {
      await withServices(({ users }) => users.delete(id, who));
      print(opts, { deleted: id }, `Deleted user ${id}`);
    });
  users
    .command('set-password <id>')
    .description('set a user’s password (argon2id); signs them out everywhere')
    .option('--password <password>', 'the new password (prefer --password-stdin)')
    .option('--password-stdin', 'read the new password from standard input')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption & { password?: string; passwordStdin?: boolean }) => {
      const pw = (await password(opts, true))!;
      await withServices(({ users }) => users.setPassword(id, pw, who));
      print(opts, { id, passwordSet: true }, `Password set for ${id}; their sessions and refresh tokens have ended.`);
    });
  users
    .command('grants <id>')
    .description('list the clients that hold the user’s consent')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => {
      const items = await withServices(({ users }) => users.listGrants(id));
      print(opts, { items }, items.map((g) => `${g.grantId}  ${g.clientName ?? g.clientId}  ${g.scopes.join(' ')}`).join('\n') || 'No grants.');
    });
  users
    .command('revoke-grants <id>')
    .description('revoke the user’s grants (all of them, or one with --grant) and their tokens')
    .option('--grant <grantId>', 'revoke only this grant')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption & { grant?: string }) => {
      const revoked = await withServices(async ({ users }) => {
        if (!opts.grant) return users.revokeAllGrants(id, who);
        await users.revokeGrant(id, opts.grant, who);
        return 1;
      });
      print(opts, { revoked }, `Revoked ${revoked} grant(s).`);
    });
  users
    .command('revoke-sessions <id>')
    .description('sign the user out of every browser session')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => {
      const revoked = await withServices(({ users }) => users.revokeSessions(id, who));
      print(opts, { revoked }, `Ended ${revoked} session(s).`);
    });

  users
    .command('identities <id>')
    .description('list the upstream accounts (Google, …) linked to the user')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => {
      const items = await withServices(({ federation }) => federation.identities(id));
      print(opts, { items }, items.map((i) => `${i.id}  ${i.providerId}  ${i.email ?? ''}  ${i.subject}`).join('\n') || 'No linked accounts.');
    });
  users
    .command('unlink <id>')
    .description('unlink an upstream account, unless it is the user’s last way to sign in')
    .requiredOption('--identity <identityId>', 'the linked identity to remove (see `idp users identities`)')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption & { identity: string }) => {
      await withServices(({ federation }) => federation.unlink(id, opts.identity, who));
      print(opts, { unlinked: opts.identity }, `Unlinked ${opts.identity}`);
    });

  // ---- upstream identity providers
  const providers = program.command('providers').description('manage upstream OpenID Connect providers (sign-in buttons)');
  providers
    .command('create')
    .description('add a provider; its client secret is encrypted at rest')
    .requiredOption('--id <slug>', 'short id used in the callback URL: ISSUER/interaction/callback/<id>')
    .addOption(new Option('--preset <name>', 'fill issuer, scopes, name and label').choices(['google']))
    .option('--name <name>', 'display name')
    .option('--issuer <url>', 'the provider’s issuer (discovery at ISSUER/.well-known/openid-configuration)')
    .requiredOption('--client-id <id>', 'our client id at the provider')
    .option('--client-secret <secret>', 'our client secret at the provider (prefer --client-secret-stdin)')
    .option('--client-secret-stdin', 'read the client secret from standard input')
    .option('--scope <scopes>', 'scopes to ask for (must include openid)')
    .option('--button-label <label>', 'the button text on the login page')
    .option('--hosted-domain <domain>', 'only accounts of this Workspace domain (`hd` claim; repeatable)', collect)
    .option('--disabled', 'create it without showing it yet')
    .option('--json', 'print the result as JSON')
    .action(
      async (opts: JsonOption & { id: string; preset?: 'google'; name?: string; issuer?: string; clientId: string; clientSecret?: string; clientSecretStdin?: boolean; scope?: string; buttonLabel?: string; hostedDomain?: string[]; disabled?: boolean }) => {
        if (opts.clientSecret !== undefined && opts.clientSecretStdin) throw badRequest('give either --client-secret or --client-secret-stdin, not both');
        const clientSecret = opts.clientSecretStdin ? await readStdin() : opts.clientSecret;
        if (!clientSecret) throw badRequest('a client secret is required: --client-secret or --client-secret-stdin');
        const created = await withServices(({ upstreams }) =>
          upstreams.create(
            given({ id: opts.id, preset: opts.preset, name: opts.name, issuer: opts.issuer, clientId: opts.clientId, clientSecret, scopes: opts.scope, buttonLabel: opts.buttonLabel, hostedDomains: opts.hostedDomain, enabled: !opts.disabled }) as never,
            who,
          ),
        );
        print(opts, { ...created });
      },
    );
  providers
    .command('list')
    .description('list providers configured here')
    .option('--json', 'print the result as JSON')
    .action(async (opts: JsonOption) => {
      const items = await withServices(({ upstreams }) => upstreams.list());
      print(opts, { items }, items.map((p) => `${p.id}  ${p.issuer}${p.enabled ? '' : '  (disabled)'}`).join('\n') || 'No providers.');
    });
  providers
    .command('show <id>')
    .description('show a provider (never its secret)')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => print(opts, { ...(await withServices(({ upstreams }) => upstreams.get(id))) }));
  providers
    .command('update <id>')
    .description('change a provider')
    .option('--name <name>', 'display name')
    .option('--issuer <url>', 'issuer')
    .option('--client-id <id>', 'client id')
    .option('--client-secret-stdin', 'read a new client secret from standard input')
    .option('--scope <scopes>', 'scopes to ask for')
    .option('--button-label <label>', 'button text')
    .option('--hosted-domain <domain>', 'allowed Workspace domain (repeatable; replaces the list)', collect)
    .option('--enabled <bool>', 'true or false', bool('--enabled'))
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption & { name?: string; issuer?: string; clientId?: string; clientSecretStdin?: boolean; scope?: string; buttonLabel?: string; hostedDomain?: string[]; enabled?: boolean }) => {
      const clientSecret = opts.clientSecretStdin ? await readStdin() : undefined;
      const patch = given({ name: opts.name, issuer: opts.issuer, clientId: opts.clientId, clientSecret, scopes: opts.scope, buttonLabel: opts.buttonLabel, hostedDomains: opts.hostedDomain, enabled: opts.enabled });
      print(opts, { ...(await withServices(({ upstreams }) => upstreams.update(id, patch, who))) });
    });
  providers
    .command('delete <id>')
    .description('remove a provider')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => {
      await withServices(({ upstreams }) => upstreams.delete(id, who));
      print(opts, { deleted: id }, `Deleted provider ${id}`);
    });

  // ---- resources (APIs)
  const resources = program.command('resources').description('manage APIs (resource servers)');
  resources
    .command('create')
    .description('register an API that access tokens are issued for')
    .requiredOption('--identifier <uri>', 'the API identifier (the `resource` and `aud` value), an absolute URI')
    .option('--scope <scopes>', 'space-separated scopes the API defines', '')
    .option('--name <name>', 'display name')
    .option('--access-token-ttl <seconds>', 'access token lifetime in seconds (default: ACCESS_TOKEN_TTL)', integer('--access-token-ttl'))
    .addOption(new Option('--signing-alg <alg>', 'access token signing algorithm').choices(API_SIGNING_ALGS).default('RS256'))
    .option('--json', 'print the result as JSON')
    .action(async (opts: JsonOption & { identifier: string; scope: string; name?: string; accessTokenTtl?: number; signingAlg: 'RS256' | 'ES256' | 'EdDSA' }) => {
      const api = await withServices(({ resources }) =>
        resources.create({ identifier: opts.identifier, scopes: opts.scope, name: opts.name, accessTokenTtl: opts.accessTokenTtl, signingAlg: opts.signingAlg }, who),
      );
      print(
        opts,
        { id: api.id, identifier: api.identifier, scopes: api.scopes, accessTokenTtl: api.accessTokenTtl, signingAlg: api.signingAlg },
        `Registered API ${api.identifier} (id ${api.id}; scopes: ${api.scopes.join(' ') || 'none'}, tokens live ${api.accessTokenTtl}s, ${api.signingAlg})`,
      );
    });
  pageOptions(resources.command('list').description('list APIs').option('--json', 'print the result as JSON')).action(async (opts: JsonOption & { limit: number; offset: number }) => {
    const result = await withServices(({ resources }) => resources.list(opts));
    print(opts, { ...result, limit: opts.limit, offset: opts.offset }, result.items.map((r) => `${r.id}  ${r.identifier}  ${r.scopes.join(' ')}`).join('\n') || 'No APIs.');
  });
  resources
    .command('show <id>')
    .description('show an API')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => print(opts, { ...(await withServices(({ resources }) => resources.get(id))) }));
  resources
    .command('update <id>')
    .description('change an API’s scopes, access-token lifetime, signing algorithm or name')
    .option('--scope <scopes>', 'the new space-separated scopes (replaces the list)')
    .option('--name <name>', 'display name')
    .option('--access-token-ttl <seconds>', 'access token lifetime in seconds', integer('--access-token-ttl'))
    .addOption(new Option('--signing-alg <alg>', 'access token signing algorithm').choices(API_SIGNING_ALGS))
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption & { scope?: string; name?: string; accessTokenTtl?: number; signingAlg?: 'RS256' | 'ES256' | 'EdDSA' }) => {
      const patch = given({ scopes: opts.scope, name: opts.name, accessTokenTtl: opts.accessTokenTtl, signingAlg: opts.signingAlg });
      if (!Object.keys(patch).length) throw badRequest('nothing to update: give --scope, --name, --access-token-ttl or --signing-alg');
      print(opts, { ...(await withServices(({ resources }) => resources.update(id, patch, who))) });
    });
  resources
    .command('delete <id>')
    .description('delete an API')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => {
      await withServices(({ resources }) => resources.delete(id, who));
      print(opts, { deleted: id }, `Deleted API ${id}`);
    });

  // ---- clients
  const clients = program.command('clients').description('manage OAuth clients');
  clients
    .command('create')
    .description('register a client; its secret is printed once and never stored')
    .requiredOption('--name <name>', 'display name, shown on the login and consent pages')
    .option('--redirect-uri <uri>', 'redirect URI (repeatable)', collect)
    .option('--post-logout-redirect-uri <uri>', 'post-logout redirect URI (repeatable)', collect)
    .option('--allowed-origin <origin>', 'extra browser origin allowed to call the token endpoint (repeatable)', collect)
    .option('--public', 'a public client (single-page or native app): no secret, PKCE only')
    .addOption(new Option('--application-type <type>', 'native: an installed app whose loopback redirect URIs (http://127.0.0.1/…) match any port (default: native when a redirect URI uses a private-use scheme, else web)').choices(['web', 'native']))
    .option('--admin', 'an admin client: client_credentials for the admin API (scopes admin and admin:read)')
    .addOption(grantTypeOption())
    .option('--scope <scopes>', 'space-separated OpenID Connect scopes the client may request', 'openid profile email offline_access')
    .option('--api <spec>', API_OPTION_HELP, collect)
    .option('--json', 'print the result as JSON')
    .action(
      async (
        opts: JsonOption & { name: string; redirectUri?: string[]; postLogoutRedirectUri?: string[]; allowedOrigin?: string[]; public?: boolean; applicationType?: 'web' | 'native'; admin?: boolean; grantType?: string[]; scope: string; api?: string[] },
      ) => {
        if (opts.admin && (opts.public || opts.redirectUri)) throw badRequest('an admin client is confidential and has no redirect URIs');
        if (opts.admin && opts.api) throw badRequest('an admin client is for the admin API only: --api does not apply');
        const created = await withServices(({ clients }) =>
          clients.create(
            {
              name: opts.name,
              redirectUris: opts.redirectUri,
              postLogoutRedirectUris: opts.postLogoutRedirectUri,
              allowedOrigins: opts.allowedOrigin,
              public: Boolean(opts.public),
              applicationType: opts.applicationType,
              grantTypes: opts.grantType as ('authorization_code' | 'refresh_token' | 'client_credentials')[] | undefined,
              scope: opts.scope,
              apis: apisOption(opts.api),
            },
            who,
            { admin: opts.admin },
          ),
        );
        const { clientId } = created.client;
        print(
          opts,
          { client_id: clientId, ...(created.clientSecret ? { client_secret: created.clientSecret } : {}) },
          created.clientSecret
            ? `client_id:     ${clientId}\nclient_secret: ${created.clientSecret}\nStore the secret now: it cannot be shown again.`
            : `client_id: ${clientId} (public client, no secret)`,
        );
      },
    );
  pageOptions(clients.command('list').description('list clients').option('--name <text>', 'part of the name').option('--json', 'print the result as JSON')).action(
    async (opts: JsonOption & { name?: string; limit: number; offset: number }) => {
      const result = await withServices(({ clients }) => clients.list(opts));
      print(opts, { ...result, limit: opts.limit, offset: opts.offset }, result.items.map((c) => `${c.clientId}  ${c.name}${c.disabled ? '  (disabled)' : ''}`).join('\n') || 'No clients.');
    },
  );
  clients
    .command('show <client_id>')
    .description('show a client (never its secret)')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => print(opts, { ...(await withServices(({ clients }) => clients.get(id))) }));
  clients
    .command('update <client_id>')
    .description('change a client’s metadata; a list given replaces the registered one')
    .option('--name <name>', 'display name')
    .option('--redirect-uri <uri>', 'redirect URI (repeatable)', collect)
    .option('--post-logout-redirect-uri <uri>', 'post-logout redirect URI (repeatable)', collect)
    .option('--allowed-origin <origin>', 'extra browser origin (repeatable)', collect)
    .addOption(new Option('--application-type <type>', 'web, or native (loopback redirect URIs match any port)').choices(['web', 'native']))
    .addOption(grantTypeOption())
    .option('--scope <scopes>', 'space-separated OpenID Connect scopes the client may request')
    .option('--api <spec>', `${API_OPTION_HELP}; replaces the client's APIs`, collect)
    .option('--no-api', 'remove every API the client may use')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption & { name?: string; redirectUri?: string[]; postLogoutRedirectUri?: string[]; allowedOrigin?: string[]; applicationType?: 'web' | 'native'; grantType?: string[]; scope?: string; api?: string[] | false }) => {
      const patch = given({
        name: opts.name,
        redirectUris: opts.redirectUri,
        postLogoutRedirectUris: opts.postLogoutRedirectUri,
        allowedOrigins: opts.allowedOrigin,
        applicationType: opts.applicationType,
        grantTypes: opts.grantType as ('authorization_code' | 'refresh_token' | 'client_credentials')[] | undefined,
        scope: opts.scope,
        apis: apisOption(opts.api),
      });
      if (!Object.keys(patch).length) throw badRequest('nothing to update: give at least one option');
      print(opts, { ...(await withServices(({ clients }) => clients.update(id, patch, who))) });
    });
  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    clients
      .command(`${name} <client_id>`)
      .description(disabled ? 'disable a client: its grants and tokens are revoked at once' : 'enable a client')
      .option('--json', 'print the result as JSON')
      .action(async (id: string, opts: JsonOption) => print(opts, { ...(await withServices(({ clients }) => clients.setDisabled(id, disabled, who))) }));
  }
  clients
    .command('delete <client_id>')
    .description('delete a client and revoke its grants and tokens')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption) => {
      await withServices(({ clients }) => clients.delete(id, who));
      print(opts, { deleted: id }, `Deleted client ${id}`);
    });
  clients
    .command('rotate-secret <client_id>')
    .description('issue a new secret, printed once')
    .option('--overlap <seconds>', 'keep the old secret valid this long (default 0: it stops at once)', integer('--overlap'), 0)
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: JsonOption & { overlap: number }) => {
      const rotated = await withServices(({ clients }) => clients.rotateSecret(id, opts.overlap, who));
      const until = rotated.client.previousSecretExpiresAt;
      print(
        opts,
        { client_id: id, client_secret: rotated.clientSecret, previous_secret_expires_at: until?.toISOString() ?? null },
        `client_secret: ${rotated.clientSecret}\n${until ? `The old secret works until ${until.toISOString()}.` : 'The old secret no longer works.'}`,
      );
    });
  clients
    .command('initial-access-token')
    .description('initial access tokens for dynamic client registration (RFC 7591)')
    .command('create')
    .description('create a token that allows registering clients at /register')
    .option('--expires-in <seconds>', 'lifetime in seconds', integer('--expires-in'), 3600)
    .option('--uses <n>', 'how many clients it may register: a number (default 1), or "unlimited" until it expires', '1')
    .option('--json', 'print the result as JSON')
    .action(async (opts: JsonOption & { expiresIn: number; uses: string }) => {
      if (opts.expiresIn < 60 || opts.expiresIn > 365 * 24 * 3600) throw badRequest('--expires-in must be between 60 seconds and one year');
      if (opts.uses !== 'unlimited' && !(/^\d+$/.test(opts.uses) && Number(opts.uses) >= 1 && Number(opts.uses) <= 10_000)) {
        throw badRequest('--uses must be a number from 1 to 10000, or "unlimited"');
      }
      const uses = opts.uses === 'unlimited' ? null : Number(opts.uses);
      const token = await withServices(async (services, db, config) => {
        // The provider mints the token in its own format; loaded only for this command.
        const [{ createProvider }, { createViews }, { providerPages }] = await Promise.all([import('../oidc/provider.ts'), import('../http/views.ts'), import('../http/provider-pages.ts')]);
        const provider = createProvider({
          config,
          jwks: await services.keys.loadPrivateJwks(),
          cookieSecrets: await cookieSecrets(config, db.prisma),
          ports: providerPorts(services),
          pages: providerPages(createViews()),
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
        { initial_access_token: token, expires_at: expiresAt, uses: uses ?? 'unlimited' },
        `initial_access_token: ${token}\nexpires: ${expiresAt}\nregisters: ${uses === null ? 'any number of clients until then' : `${uses} client${uses === 1 ? '' : 's'}`}`,
      );
    });

  program
    .command('purge')
    .description('delete expired tokens, codes, sessions and grants, audit events past AUDIT_RETENTION_DAYS and stale throttling counts (the server also does this every PURGE_INTERVAL_SECONDS)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: JsonOption) => {
      const result = await withServices(({ housekeeping }) => housekeeping.purge());
      print(opts, { ...result }, `Purged ${result.artifacts} expired artifacts, ${result.grants} grants, ${result.auditEvents} audit events, ${result.throttles} throttling counts.`);
    });

  // ---- keys, audit
  const keys = program.command('keys').description('signing keys');
  keys
    .command('rotate')
    .description('start a key rotation: new keys are published now and sign after KEY_PREPUBLICATION_SECONDS')
    .option('--json', 'print the result as JSON')
    .action(async (opts: JsonOption) => {
      const items = await withServices(({ keys }) => keys.rotate(who));
      print(opts, { items }, `New keys ${items.map((k) => `${k.kid} (${k.alg})`).join(', ')} are published and sign from ${items[0]?.activatesAt?.toISOString()}; every instance picks them up by itself.`);
    });
  keys
    .command('list')
    .description('list the signing keys (no private material); the server creates them on first start')
    .option('--json', 'print the result as JSON')
    .action(async (opts: JsonOption) => {
      const list = await withServices(({ keys }) => keys.list());
      print(opts, { keys: list }, list.map((k) => `${k.kid}  ${k.alg.padEnd(6)} ${k.state.padEnd(8)} ${k.createdAt.toISOString()}${k.activatesAt && k.state === 'next' ? `  signs from ${k.activatesAt.toISOString()}` : ''}${k.removeAfter ? `  removed after ${k.removeAfter.toISOString()}` : ''}`).join('\n') || 'No keys yet.');
    });
  pageOptions(
    program
      .command('audit')
      .description('read the audit trail')
      .command('list')
      .description('list audit events, newest first')
      .option('--action <action>', 'e.g. client.created, user.disabled')
      .option('--actor <actor>', 'e.g. client:<id>, cli:<user>@<host>')
      .option('--target <id>', 'the id the event is about')
      .option('--json', 'print the result as JSON'),
  ).action(async (opts: JsonOption & { action?: string; actor?: string; target?: string; limit: number; offset: number }) => {
    const result = await withServices(({ audit }) => audit.list(opts));
    print(
      opts,
      { ...result, limit: opts.limit, offset: opts.offset },
      result.items.map((e) => `${e.at.toISOString()}  ${e.action.padEnd(28)} ${e.actor}  ${e.target ?? ''}`).join('\n') || 'No events.',
    );
  });

  return program;
}


export async function runCli(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  try {
    await buildCli().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed the usage error (or the help text, which is a success).
      return err.exitCode === 0 ? 0 : 2;
    }
    const known = isExposed(err);
    const message = known ? (err as Error).message : 'unexpected error, see the details above';
    if (!known) console.error(err);
    process.stderr.write(json ? `${JSON.stringify({ error: (err as AppError).code ?? 'error', message })}\n` : `idp: ${message}\n`);
    return 1;
  }
}

loadDotEnv();
process.exitCode = await runCli(process.argv.slice(2));
