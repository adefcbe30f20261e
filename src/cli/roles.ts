import type { Command } from 'commander';
import { badRequest } from '../lib/errors.ts';
import { listOf } from '../lib/lists.ts';
import type { RoleView } from '../roles/service.ts';
import { bool, collect, given, jsonOption, pageOptions, print, who, withServices, type JsonOption } from './kit.ts';

const PERMISSION_HELP = 'what the role grants on one API (repeatable): the API identifier, then its scopes, e.g. "https://api.example.com read write"';

/** A role's permissions, one API a line. */
const permissionLines = (role: RoleView) =>
  Object.entries(role.permissions)
    .map(([api, scopes]) => `  ${api}  ${scopes.join(' ')}`)
    .join('\n') || '  (none)';

const describe = (role: RoleView) =>
  `${role.name}${role.builtIn ? ' (built in)' : ''}  id ${role.id}${role.description ? `\n${role.description}` : ''}${role.requireMfa ? '\nsecond factor required at sign-in' : ''}\npermissions:\n${permissionLines(role)}`;

/** `idp roles …`: mirrors /admin/v1/roles (ROLE: an id or a name). */
export function roleCommands(program: Command) {
  const roles = program.command('roles').description('manage roles: named sets of API scopes given to people (ROLE: an id or a name)');
  jsonOption(
    roles
      .command('create')
      .description('create a role')
      .requiredOption('--name <name>', 'the role’s name (letters, digits, . _ : -)')
      .option('--description <text>', 'what the role is for')
      .option('--permission <api-and-scopes>', PERMISSION_HELP, collect)
      .option('--require-mfa', 'people with this role must sign in with a second factor (those without one are taken through adding one)'),
  ).action(async (opts: JsonOption & { name: string; description?: string; permission?: string[]; requireMfa?: boolean }) => {
    const role = await withServices(({ roles }) => roles.create({ name: opts.name, description: opts.description, permissions: opts.permission ?? {}, requireMfa: Boolean(opts.requireMfa) }, who));
    print(opts, { ...role }, `Created role ${describe(role)}`);
  });
  jsonOption(pageOptions(roles.command('list').description('list roles'))).action(async (opts: JsonOption & { limit: number; offset: number }) => {
    const result = await withServices(({ roles }) => roles.list(opts));
    print(opts, listOf(result.items, { ...opts, total: result.total }), result.items.map((r) => `${r.name}${r.builtIn ? ' (built in)' : ''}${r.requireMfa ? ' (second factor required)' : ''}  ${Object.keys(r.permissions).length} API(s)`).join('\n') || 'No roles.');
  });
  jsonOption(roles.command('show <role>').description('show a role')).action(async (ref: string, opts: JsonOption) => {
    const role = await withServices(({ roles }) => roles.get(ref));
    print(opts, { ...role }, describe(role));
  });
  jsonOption(
    roles
      .command('update <role>')
      .description('rename a role, or change its description, permissions or second-factor requirement (built-in roles: the description and --require-mfa only)')
      .option('--name <name>', 'a new name')
      .option('--description <text>', 'a new description ("" removes it)')
      .option('--permission <api-and-scopes>', `${PERMISSION_HELP}; replaces all the role’s permissions`, collect)
      .option('--require-mfa <bool>', 'true: people with this role must sign in with a second factor; false: only as the other rules say', bool('--require-mfa')),
  ).action(async (ref: string, opts: JsonOption & { name?: string; description?: string; permission?: string[]; requireMfa?: boolean }) => {
    const patch = given({ name: opts.name, description: opts.description === undefined ? undefined : opts.description || null, permissions: opts.permission, requireMfa: opts.requireMfa });
    if (!Object.keys(patch).length) throw badRequest('nothing to update: give --name, --description, --permission or --require-mfa');
    const role = await withServices(({ roles }) => roles.update(ref, patch, who));
    print(opts, { ...role }, `Updated role ${describe(role)}`);
  });
  jsonOption(roles.command('delete <role>').description('delete a role: the people who have it lose it')).action(async (ref: string, opts: JsonOption) => {
    await withServices(({ roles }) => roles.delete(ref, who));
    print(opts, { deleted: ref }, `Deleted role ${ref}`);
  });
}
