import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadConfig, loadDotEnv } from '../config.ts';
import { DatabaseUrlError, openDatabase, type Database } from '../db/index.ts';
import { migrate } from '../db/migrate.ts';
import { AppError } from '../lib/errors.ts';
import { createServices, type Services } from '../services.ts';

interface JsonOption {
  json?: boolean;
}

/** Prints a result: one JSON object with --json, otherwise readable lines. */
function print(opts: JsonOption, value: Record<string, unknown>, human: string) {
  process.stdout.write(opts.json ? `${JSON.stringify(value)}\n` : `${human}\n`);
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new AppError(400, 'invalid_request', '--password-stdin expects the password on standard input');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Opens the configured database, brings its schema up to date, and runs `fn` with the services. */
async function withServices<T>(fn: (services: Services, db: Database) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDatabase(config.databaseUrl);
  try {
    await migrate(db);
    return await fn(createServices(db, config), db);
  } finally {
    await db.close();
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function buildCli(): Command {
  const program = new Command('idp')
    .description('Administer the identity provider. Reads the same environment as the server (DATABASE_URL, ...).')
    .showHelpAfterError()
    .exitOverride();

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
      if (opts.password !== undefined && opts.passwordStdin) throw new AppError(400, 'invalid_request', 'give either --password or --password-stdin, not both');
      if (opts.password === undefined && !opts.passwordStdin) throw new AppError(400, 'invalid_request', 'a password is required: --password or --password-stdin');
      const password = opts.passwordStdin ? await readStdin() : opts.password;
      const user = await withServices(({ users }) =>
        users.create({ email: opts.email, password, name: opts.name, emailVerified: Boolean(opts.emailVerified) }),
      );
      print(opts, { id: user.id, email: user.email }, `Created user ${user.email} (id ${user.id})`);
    });

  const resources = program.command('resources').description('manage APIs (resource servers)');
  resources
    .command('create')
    .description('register an API that access tokens are issued for')
    .requiredOption('--identifier <uri>', 'the API identifier (the `resource` and `aud` value), an absolute URI')
    .option('--scope <scopes>', 'space-separated scopes the API defines', '')
    .option('--name <name>', 'display name')
    .option('--access-token-ttl <seconds>', 'access token lifetime in seconds (default: ACCESS_TOKEN_TTL)')
    .addOption(new Option('--signing-alg <alg>', 'access token signing algorithm').choices(['RS256', 'ES256', 'EdDSA']).default('RS256'))
    .option('--json', 'print the result as JSON')
    .action(async (opts: JsonOption & { identifier: string; scope: string; name?: string; accessTokenTtl?: string; signingAlg: 'RS256' | 'ES256' | 'EdDSA' }) => {
      const ttl = opts.accessTokenTtl === undefined ? undefined : Number(opts.accessTokenTtl);
      if (ttl !== undefined && !Number.isInteger(ttl)) throw new AppError(400, 'invalid_request', '--access-token-ttl must be a whole number of seconds');
      const api = await withServices(({ resources }) =>
        resources.create({ identifier: opts.identifier, scopes: opts.scope, name: opts.name, accessTokenTtl: ttl, signingAlg: opts.signingAlg }),
      );
      print(
        opts,
        { id: api.id, identifier: api.identifier, scopes: api.scopes, accessTokenTtl: api.accessTokenTtl, signingAlg: api.signingAlg },
        `Registered API ${api.identifier} (scopes: ${api.scopes.join(' ') || 'none'}, tokens live ${api.accessTokenTtl}s, ${api.signingAlg})`,
      );
    });

  const clients = program.command('clients').description('manage OAuth clients');
  clients
    .command('create')
    .description('register a client; its secret is printed once and never stored')
    .requiredOption('--name <name>', 'display name, shown on the login and consent pages')
    .option('--redirect-uri <uri>', 'redirect URI (repeatable)', collect)
    .option('--post-logout-redirect-uri <uri>', 'post-logout redirect URI (repeatable)', collect)
    .option('--allowed-origin <origin>', 'extra browser origin allowed to call the token endpoint (repeatable)', collect)
    .option('--public', 'a public client (single-page or native app): no secret, PKCE only')
    .addOption(new Option('--grant-type <type>', 'allowed grant type (repeatable)').choices(['authorization_code', 'refresh_token', 'client_credentials']).argParser(collect))
    .option('--scope <scopes>', 'space-separated scopes the client may request', 'openid profile email offline_access')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        opts: JsonOption & { name: string; redirectUri?: string[]; postLogoutRedirectUri?: string[]; allowedOrigin?: string[]; public?: boolean; grantType?: string[]; scope: string },
      ) => {
        const created = await withServices(({ clients }) =>
          clients.create({
            name: opts.name,
            redirectUris: opts.redirectUri,
            postLogoutRedirectUris: opts.postLogoutRedirectUri,
            allowedOrigins: opts.allowedOrigin,
            public: Boolean(opts.public),
            grantTypes: opts.grantType as ('authorization_code' | 'refresh_token' | 'client_credentials')[] | undefined,
            scope: opts.scope,
          }),
        );
        print(
          opts,
          { client_id: created.clientId, ...(created.clientSecret ? { client_secret: created.clientSecret } : {}) },
          created.clientSecret
            ? `client_id:     ${created.clientId}\nclient_secret: ${created.clientSecret}\nStore the secret now: it cannot be shown again.`
            : `client_id: ${created.clientId} (public client, no secret)`,
        );
      },
    );

  const keys = program.command('keys').description('inspect signing keys');
  keys
    .command('list')
    .description('list the signing keys (no private material); the server creates them on first start')
    .option('--json', 'print the result as JSON')
    .action(async (opts: JsonOption) => {
      const list = await withServices(({ keys }) => keys.list());
      print(opts, { keys: list }, list.map((k) => `${k.kid}  ${k.alg.padEnd(6)} ${k.state.padEnd(8)} ${k.createdAt.toISOString()}`).join('\n'));
    });

  return program;
}

const KNOWN_ERRORS = [AppError, ConfigError, DatabaseUrlError];

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
    const known = KNOWN_ERRORS.some((E) => err instanceof E);
    const message = known ? (err as Error).message : 'unexpected error, see the details above';
    if (!known) console.error(err);
    process.stderr.write(json ? `${JSON.stringify({ error: (err as AppError).code ?? 'error', message })}\n` : `idp: ${message}\n`);
    return 1;
  }
}

loadDotEnv();
process.exitCode = await runCli(process.argv.slice(2));
