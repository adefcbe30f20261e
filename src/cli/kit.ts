import { type Command, Option } from 'commander';
import { cliActor, type Actor } from '../audit/service.ts';
import { loadConfig, type Config } from '../config.ts';
import { openDatabase, type Database } from '../db/index.ts';
import { migrate } from '../db/migrate.ts';
import { badRequest } from '../lib/errors.ts';
import { createLogger } from '../logger.ts';
import { createServices, type Services } from '../services.ts';

/**
 * What every command shares. The `--json` contract: one JSON object on standard output, in the
 * admin API's shapes and casing (an entity as `GET` returns it; a created client as
 * `{"client", "clientSecret"}`; every list as `{"items", "total"}`, with `limit` and `offset`
 * when paged); an error as `{"error", "error_description"}` on standard error.
 */
export interface JsonOption {
  json?: boolean;
}

type Plain = Record<string, unknown>;

/** Who the CLI acts as, in the audit trail. */
export const who: Actor = cliActor();

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
export function print(opts: JsonOption, value: Plain, text?: string) {
  process.stdout.write(opts.json ? `${JSON.stringify(value)}\n` : `${text ?? human(value)}\n`);
}


/** A secret piped to standard input (the trailing newline dropped); never empty. */
export async function readStdin(flag: string): Promise<string> {
  if (process.stdin.isTTY) throw badRequest(`${flag} expects the value on standard input (pipe it in)`);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const value = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!value) throw badRequest(`${flag}: nothing was read on standard input`);
  return value;
}

export async function password(opts: { password?: string; passwordStdin?: boolean }): Promise<string> {
  if (opts.password !== undefined && opts.passwordStdin) throw badRequest('give either --password or --password-stdin, not both');
  if (opts.password === undefined && !opts.passwordStdin) throw badRequest('a password is required: --password or --password-stdin');
  return opts.passwordStdin ? readStdin('--password-stdin') : (opts.password ?? '');
}

/** Opens the configured database, brings its schema up to date, and runs `fn` with the services. */
export async function withServices<T>(fn: (services: Services, db: Database, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDatabase(config.databaseUrl);
  let services: Services | undefined;
  try {
    await migrate(db);
    services = createServices(db, config, createLogger('silent'));
    // The admin API and its built-in roles, as the server makes them at start: the first
    // administrator can be made before the server ever ran (idp users create --role idp-admin).
    await services.resources.ensureAdminApi();
    await services.roles.ensureBuiltIns();
    await services.clients.upgradeLegacyRegistrations();
    await services.outbox.warm();
    return await fn(services, db, config);
  } finally {
    await services?.redis?.close();
    await db.close();
  }
}

export const collect = (value: string, previous: string[] = []) => [...previous, value];

export const integer = (name: string, min = 0, max = Number.MAX_SAFE_INTEGER) => (value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw badRequest(`${name} must be a whole number from ${min} to ${max === Number.MAX_SAFE_INTEGER ? 'up' : max}`);
  return Number(value);
};

export const bool = (name: string) => (value: string) => {
  if (!['true', 'false'].includes(value)) throw badRequest(`${name} must be true or false`);
  return value === 'true';
};

export const CLAIM_HELP =
  'a claim to add, NAME=SOURCE (repeatable; split at the first "="): SOURCE is email, email_verified, name, roles, attributes, or attributes.<key>[.<key>…], e.g. department=attributes.department';

/** `--claim NAME=SOURCE` (repeatable) → { NAME: SOURCE }; `--no-claim` (false) → no mapping at all. The names and sources are checked by the service. */
export function claimsOption(specs: string[] | false | undefined): Record<string, string> | undefined {
  if (specs === undefined) return undefined;
  if (specs === false) return {};
  const mappings: Record<string, string> = {};
  for (const spec of specs) {
    const cut = spec.indexOf('=');
    if (cut < 0) throw badRequest(`--claim expects NAME=SOURCE (such as department=attributes.department), not ${JSON.stringify(spec.slice(0, 100))}`);
    mappings[spec.slice(0, cut)] = spec.slice(cut + 1);
  }
  return mappings;
}

/** `--attributes '<json>'`: a JSON value (the service checks that it is an object, and its size). */
export const jsonValue = (flag: string) => (value: string): unknown => {
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw badRequest(`${flag} must be a JSON object, such as '{"department": "Sales"}' (this is not valid JSON)`);
  }
};

export const jsonOption = (cmd: Command) => cmd.option('--json', 'print the result as JSON');

export const pageOptions = (cmd: Command) =>
  cmd.option('--limit <n>', 'page size (1-200)', integer('--limit', 1, 200), 50).option('--offset <n>', 'items to skip', integer('--offset', 0, 1_000_000), 0);

/** Drops options that were not given, so that an update changes only what was asked. */
export const given = <T extends Plain>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export const choice = (flags: string, description: string, choices: readonly string[]) => new Option(flags, description).choices(choices);

/**
 * The service's field names whose flag is not simply the name in kebab case (lists are set one
 * item per flag, so their flags are singular): errors name what the person typed.
 */
const FLAGS: Readonly<Record<string, string>> = {
  redirectUris: '--redirect-uri',
  postLogoutRedirectUris: '--post-logout-redirect-uri',
  allowedOrigins: '--allowed-origin',
  grantTypes: '--grant-type',
  apis: '--api',
  scopes: '--scope',
  hostedDomains: '--hosted-domain',
  claimMappings: '--claim',
};

/** "grantTypes.0: …; name: …" → "--grant-type: …; --name: …". */
export function inFlags(message: string): string {
  return message
    .split('; ')
    .map((part) => part.replace(/^([a-zA-Z]+)(\.[^:\s]+)?:/, (_m, name: string) => `${FLAGS[name] ?? `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`}:`))
    .join('; ');
}
