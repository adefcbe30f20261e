import type { Command } from 'commander';
import { API_SIGNING_ALGS } from '../lib/constants.ts';
import { badRequest, notFound } from '../lib/errors.ts';
import type { ResourceView, ScopeDefinition } from '../resources/service.ts';
import type { Services } from '../services.ts';
import { listOf } from '../lib/lists.ts';
import { bool, choice, CLAIM_HELP, claimsOption, collect, given, integer, jsonOption, pageOptions, print, who, withServices, type JsonOption } from './kit.ts';

type SigningAlg = (typeof API_SIGNING_ALGS)[number];

const SCOPE_HELP =
  'scopes the API defines (repeatable): a space-separated list of names ("read write"), or one scope with what it lets an app do, shown on the consent page ("read:Read your documents"). ' +
  'A value with a space whose first word holds a colon is one described scope, named by that word up to its last colon ("docs:read:Read your documents" describes docs:read; a one-word description: "read: Documents"); ' +
  'any other value is a list of names, so give names with colons as separate --scope options';

/**
 * `--scope` values as the service's scopes. A value with whitespace whose first word holds a
 * colon is one described scope: its name is that word up to its last colon, the rest is the
 * description. Any other value is a space-separated list of names.
 */
function scopesOption(values: string[] | undefined): (string | ScopeDefinition)[] | undefined {
  if (values === undefined) return undefined;
  return values.flatMap((value): (string | ScopeDefinition)[] => {
    const text = value.trimStart();
    const firstWord = text.split(/\s/, 1)[0] ?? '';
    if (/\s/.test(text) && firstWord.includes(':')) {
      const cut = firstWord.lastIndexOf(':');
      return [{ name: firstWord.slice(0, cut), description: text.slice(cut + 1) }];
    }
    return text.split(/\s+/).filter(Boolean);
  });
}

/** An API's scopes, one a line, each with its description. */
const scopeLines = (api: ResourceView) => api.scopes.map((s) => `  ${s}${Object.hasOwn(api.scopeDescriptions, s) ? `  ${api.scopeDescriptions[s]}` : ''}`).join('\n');

/** An API named by id or by identifier (a URI). */
async function apiId(services: Services, ref: string): Promise<string> {
  if (!ref.includes(':')) return ref;
  const api = await services.resources.findByIdentifier(ref);
  if (!api) throw notFound(`no API with identifier ${ref}`);
  return api.id;
}

/** `idp resources …`: mirrors /admin/v1/resources. */
export function resourceCommands(program: Command) {
  const resources = program.command('resources').description('manage APIs (resource servers; API: an id or an identifier)');
  jsonOption(
    resources
      .command('create')
      .description('register an API that access tokens are issued for')
      .requiredOption('--identifier <uri>', 'the API identifier (the `resource` and `aud` value), an absolute URI')
      .option('--scope <scopes>', SCOPE_HELP, collect)
      .option('--name <name>', 'display name')
      .option('--access-token-ttl <seconds>', 'access token lifetime in seconds (default: ACCESS_TOKEN_TTL)', integer('--access-token-ttl'))
      .addOption(choice('--signing-alg <alg>', 'access token signing algorithm', API_SIGNING_ALGS).default('RS256'))
      .option('--enforce-roles', 'a person’s access token, or a machine client’s own, carries only the scopes their roles grant')
      .option('--roles-claim', 'access tokens carry a `roles` claim with the names of the person’s (or machine client’s) roles')
      .option('--claim <name=source>', `${CLAIM_HELP}; added to a person's access tokens for the API`, collect),
  ).action(async (opts: JsonOption & { identifier: string; scope?: string[]; name?: string; accessTokenTtl?: number; signingAlg: SigningAlg; enforceRoles?: boolean; rolesClaim?: boolean; claim?: string[] }) => {
    const api = await withServices(({ resources }) =>
      resources.create(
        {
          identifier: opts.identifier,
          scopes: scopesOption(opts.scope),
          name: opts.name,
          accessTokenTtl: opts.accessTokenTtl,
          signingAlg: opts.signingAlg,
          enforceRoles: Boolean(opts.enforceRoles),
          rolesClaim: Boolean(opts.rolesClaim),
          ...given({ claimMappings: claimsOption(opts.claim) }),
        },
        who,
      ),
    );
    print(opts, { ...api }, `Registered API ${api.identifier} (id ${api.id}; tokens live ${api.accessTokenTtl}s, ${api.signingAlg})\n${api.scopes.length ? `scopes:\n${scopeLines(api)}` : 'scopes: none'}`);
  });
  jsonOption(pageOptions(resources.command('list').description('list APIs'))).action(async (opts: JsonOption & { limit: number; offset: number }) => {
    const result = await withServices(({ resources }) => resources.list(opts));
    print(opts, listOf(result.items, { ...opts, total: result.total }), result.items.map((r) => `${r.id}  ${r.identifier}  ${r.scopes.join(' ')}`).join('\n') || 'No APIs.');
  });
  jsonOption(resources.command('show <api>').description('show an API')).action(async (ref: string, opts: JsonOption) =>
    print(opts, { ...(await withServices(async (s) => s.resources.get(await apiId(s, ref)))) }),
  );
  jsonOption(
    resources
      .command('update <api>')
      .description('change an API’s scopes, access-token lifetime, signing algorithm, roles, claims or name')
      .option('--scope <scopes>', `the new ${SCOPE_HELP}. Replaces the scopes and their descriptions: a scope given without a description loses the one it had`, collect)
      .option('--name <name>', 'display name')
      .option('--access-token-ttl <seconds>', 'access token lifetime in seconds', integer('--access-token-ttl'))
      .addOption(choice('--signing-alg <alg>', 'access token signing algorithm', API_SIGNING_ALGS))
      .option('--enforce-roles <bool>', 'true: a person’s access token, or a machine client’s own, carries only the scopes their roles grant', bool('--enforce-roles'))
      .option('--roles-claim <bool>', 'true: access tokens carry a `roles` claim', bool('--roles-claim'))
      .option('--claim <name=source>', `${CLAIM_HELP}; replaces the API's claim mappings`, collect)
      .option('--no-claim', 'remove every claim mapping of the API'),
  ).action(async (ref: string, opts: JsonOption & { scope?: string[]; name?: string; accessTokenTtl?: number; signingAlg?: SigningAlg; enforceRoles?: boolean; rolesClaim?: boolean; claim?: string[] | false }) => {
    const patch = given({ scopes: scopesOption(opts.scope), name: opts.name, accessTokenTtl: opts.accessTokenTtl, signingAlg: opts.signingAlg, enforceRoles: opts.enforceRoles, rolesClaim: opts.rolesClaim, claimMappings: claimsOption(opts.claim) });
    if (!Object.keys(patch).length) throw badRequest('nothing to update: give --scope, --name, --access-token-ttl, --signing-alg, --enforce-roles, --roles-claim or --claim');
    print(opts, { ...(await withServices(async (s) => s.resources.update(await apiId(s, ref), patch, who))) });
  });
  jsonOption(resources.command('delete <api>').description('delete an API')).action(async (ref: string, opts: JsonOption) => {
    const id = await withServices(async (s) => {
      const found = await apiId(s, ref);
      await s.resources.delete(found, who);
      return found;
    });
    print(opts, { deleted: id }, `Deleted API ${id}`);
  });
}
