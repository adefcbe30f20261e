import type { Command } from 'commander';
import { badRequest } from '../lib/errors.ts';
import { listOf } from '../lib/lists.ts';
import { bool, choice, collect, given, jsonOption, print, readStdin, who, withServices, type JsonOption } from './kit.ts';

/** `idp providers …`: the upstream sign-in services (sign-in buttons); mirrors /admin/v1/providers. */
export function upstreamCommands(program: Command) {
  const providers = program.command('providers').description('manage upstream OpenID Connect providers (sign-in buttons)');
  jsonOption(
    providers
      .command('create')
      .description('add a provider; its client secret is encrypted at rest')
      .requiredOption('--id <slug>', 'short id used in the callback URL: ISSUER/interaction/callback/<id>')
      .addOption(choice('--preset <name>', 'fill issuer, scopes, name and label', ['google']))
      .option('--name <name>', 'display name')
      .option('--issuer <url>', 'the provider’s issuer (discovery at ISSUER/.well-known/openid-configuration)')
      .requiredOption('--client-id <id>', 'our client id at the provider')
      .option('--client-secret <secret>', 'our client secret at the provider (prefer --client-secret-stdin)')
      .option('--client-secret-stdin', 'read the client secret from standard input')
      .option('--scope <scopes>', 'scopes to ask for (must include openid)')
      .option('--button-label <label>', 'the button text on the login page')
      .option('--hosted-domain <domain>', 'only accounts of this Workspace domain (`hd` claim; repeatable)', collect)
      .option('--disabled', 'create it without showing it yet'),
  ).action(
    async (opts: JsonOption & { id: string; preset?: 'google'; name?: string; issuer?: string; clientId: string; clientSecret?: string; clientSecretStdin?: boolean; scope?: string; buttonLabel?: string; hostedDomain?: string[]; disabled?: boolean }) => {
      if (opts.clientSecret !== undefined && opts.clientSecretStdin) throw badRequest('give either --client-secret or --client-secret-stdin, not both');
      const clientSecret = opts.clientSecretStdin ? await readStdin('--client-secret-stdin') : opts.clientSecret;
      if (!clientSecret) throw badRequest('a client secret is required: --client-secret or --client-secret-stdin');
      const { created, redirectUri } = await withServices(async ({ upstreams, federation }) => ({
        created: await upstreams.create(
          given({ id: opts.id, preset: opts.preset, name: opts.name, issuer: opts.issuer, clientId: opts.clientId, clientSecret, scopes: opts.scope, buttonLabel: opts.buttonLabel, hostedDomains: opts.hostedDomain, enabled: !opts.disabled }) as never,
          who,
        ),
        redirectUri: federation.callbackUrl(opts.id),
      }));
      // What to register at the provider, besides the client id and secret it gave.
      print(opts, { ...created, redirectUri }, `Added provider ${created.id} (${created.issuer}).\nRegister this redirect URI at the provider: ${redirectUri}`);
    },
  );
  jsonOption(providers.command('list').description('list providers configured here')).action(async (opts: JsonOption) => {
    const items = await withServices(({ upstreams }) => upstreams.list());
    print(opts, listOf(items), items.map((p) => `${p.id}  ${p.issuer}${p.enabled ? '' : '  (disabled)'}`).join('\n') || 'No providers.');
  });
  jsonOption(providers.command('show <id>').description('show a provider (never its secret)')).action(async (id: string, opts: JsonOption) =>
    print(opts, { ...(await withServices(({ upstreams }) => upstreams.get(id))) }),
  );
  jsonOption(
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
      .option('--enabled <bool>', 'true or false', bool('--enabled')),
  ).action(async (id: string, opts: JsonOption & { name?: string; issuer?: string; clientId?: string; clientSecretStdin?: boolean; scope?: string; buttonLabel?: string; hostedDomain?: string[]; enabled?: boolean }) => {
    const clientSecret = opts.clientSecretStdin ? await readStdin('--client-secret-stdin') : undefined;
    const patch = given({ name: opts.name, issuer: opts.issuer, clientId: opts.clientId, clientSecret, scopes: opts.scope, buttonLabel: opts.buttonLabel, hostedDomains: opts.hostedDomain, enabled: opts.enabled });
    if (!Object.keys(patch).length) throw badRequest('nothing to update: give at least one option');
    print(opts, { ...(await withServices(({ upstreams }) => upstreams.update(id, patch, who))) });
  });
  jsonOption(providers.command('delete <id>').description('remove a provider')).action(async (id: string, opts: JsonOption) => {
    await withServices(({ upstreams }) => upstreams.delete(id, who));
    print(opts, { deleted: id }, `Deleted provider ${id}`);
  });
}
