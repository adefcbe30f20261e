import type { Command } from 'commander';
import { badRequest, notFound } from '../lib/errors.ts';
import type { Services } from '../services.ts';
import { listOf } from '../lib/lists.ts';
import { bool, collect, given, jsonOption, jsonValue, pageOptions, password, print, who, withServices, type JsonOption } from './kit.ts';

/** A user named by id or by email address. */
async function userId(services: Services, ref: string): Promise<string> {
  if (!ref.includes('@')) return ref;
  const user = await services.users.findByEmail(ref);
  if (!user) throw notFound(`no user with email ${ref}`);
  return user.id;
}

/** `idp users …`: mirrors /admin/v1/users. */
export function userCommands(program: Command) {
  const users = program.command('users').description('manage users (USER: an id or an email address)');
  jsonOption(
    users
      .command('create')
      .description('create a user with a password')
      .requiredOption('--email <email>', 'email address (normalized: trimmed, NFKC, lower case)')
      .option('--password <password>', 'password (prefer --password-stdin: arguments show up in process lists)')
      .option('--password-stdin', 'read the password from standard input')
      .option('--name <name>', 'display name')
      .option('--email-verified', 'mark the email address as verified')
      .option('--role <role>', 'give the user a role (repeatable), e.g. idp-admin for the admin console and API', collect),
  ).action(async (opts: JsonOption & { email: string; password?: string; passwordStdin?: boolean; name?: string; emailVerified?: boolean; role?: string[] }) => {
    const pw = await password(opts);
    const { user, roles } = await withServices(async (s) => {
      // Every role is checked before the user exists: a typo creates nobody.
      for (const role of opts.role ?? []) await s.roles.get(role);
      const created = await s.users.create({ email: opts.email, password: pw, name: opts.name, emailVerified: Boolean(opts.emailVerified) }, who);
      const given = [];
      for (const role of opts.role ?? []) given.push((await s.roles.assign(created.id, role, who)).name);
      return { user: created, roles: given };
    });
    print(opts, { ...user, roles }, `Created user ${user.email} (id ${user.id})${roles.length ? ` with role ${roles.join(', ')}` : ''}`);
  });
  jsonOption(pageOptions(users.command('list').description('list users').option('--q <text>', 'part of the email or name'))).action(async (opts: JsonOption & { q?: string; limit: number; offset: number }) => {
    const result = await withServices(({ users }) => users.list(opts));
    print(opts, listOf(result.items, { ...opts, total: result.total }), result.items.map((u) => `${u.id}  ${u.email}${u.disabled ? '  (disabled)' : ''}`).join('\n') || 'No users.');
  });
  jsonOption(users.command('show <user>').description('show a user')).action(async (ref: string, opts: JsonOption) =>
    print(opts, { ...(await withServices(async (s) => s.users.get(await userId(s, ref)))) }),
  );
  jsonOption(
    users
      .command('update <user>')
      .description('change a user’s email, name, email_verified or custom attributes')
      .option('--email <email>', 'new email address (becomes unverified unless --email-verified true)')
      .option('--name <name>', 'new display name')
      .option('--email-verified <bool>', 'true or false', bool('--email-verified'))
      .option(
        '--attributes <json>',
        'replace the custom attributes (which claim mappings put into tokens) with this JSON object, at most 4096 bytes, nested at most 5 levels; \'{}\' removes them all. `idp users show` shows them',
        jsonValue('--attributes'),
      ),
  ).action(async (ref: string, opts: JsonOption & { email?: string; name?: string; emailVerified?: boolean; attributes?: unknown }) => {
    const patch = given({ email: opts.email, name: opts.name, emailVerified: opts.emailVerified, attributes: opts.attributes as Record<string, unknown> | undefined });
    if (!Object.keys(patch).length) throw badRequest('nothing to update: give --email, --name, --email-verified or --attributes');
    print(opts, { ...(await withServices(async (s) => s.users.update(await userId(s, ref), patch, who))) });
  });
  for (const [name, disabled] of [['disable', true], ['enable', false]] as const) {
    jsonOption(users.command(`${name} <user>`).description(disabled ? 'disable a user: their sessions and tokens end at once' : 'enable a user')).action(async (ref: string, opts: JsonOption) =>
      print(opts, { ...(await withServices(async (s) => s.users.setDisabled(await userId(s, ref), disabled, who))) }),
    );
  }
  jsonOption(users.command('delete <user>').description('delete a user with their sessions, grants and tokens')).action(async (ref: string, opts: JsonOption) => {
    const id = await withServices(async (s) => {
      const found = await userId(s, ref);
      await s.users.delete(found, who);
      return found;
    });
    print(opts, { deleted: id }, `Deleted user ${id}`);
  });
  jsonOption(
    users
      .command('set-password <user>')
      .description('set a user’s password (argon2id); signs them out everywhere')
      .option('--password <password>', 'the new password (prefer --password-stdin)')
      .option('--password-stdin', 'read the new password from standard input'),
  ).action(async (ref: string, opts: JsonOption & { password?: string; passwordStdin?: boolean }) => {
    const pw = await password(opts);
    const id = await withServices(async (s) => {
      const found = await userId(s, ref);
      await s.users.setPassword(found, pw, who);
      return found;
    });
    print(opts, { id, passwordSet: true }, `Password set for ${id}; their sessions and refresh tokens have ended.`);
  });
  jsonOption(users.command('send-password-reset <user>').description('email the user a single-use link to choose a new password')).action(async (ref: string, opts: JsonOption) => {
    const id = await withServices(async (s) => {
      const found = await userId(s, ref);
      await s.passwordReset.sendByAdmin(found, who);
      return found;
    });
    print(opts, { id, resetLinkSent: true }, `A password reset link is on its way to ${id}'s address (a running server sends it).`);
  });
  jsonOption(users.command('send-verification <user>').description('email the user a new link and code to verify their address')).action(async (ref: string, opts: JsonOption) => {
    const sent = await withServices(async (s) => s.verification.sendByAdmin(await userId(s, ref), who));
    print(opts, { id: sent.id, verificationSent: true }, `A verification link and code are on their way to ${sent.email} (a running server sends them).`);
  });
  jsonOption(
    users
      .command('invite')
      .description('invite someone to create an account: a single-use link (7 days) to choose a name and password; the address is verified by it')
      .requiredOption('--email <email>', 'the address to invite (refused if it already has an account)')
      .option('--name <name>', 'the name the invitation suggests')
      .option('--locale <locale>', 'the language of the invitation (default: DEFAULT_LOCALE)'),
  ).action(async (opts: JsonOption & { email: string; name?: string; locale?: string }) => {
    const invitation = await withServices(({ invitations }) => invitations.invite({ email: opts.email, ...given({ name: opts.name, locale: opts.locale }) }, who));
    print(opts, { ...invitation }, `Invited ${invitation.email}: the link works until ${invitation.expiresAt.toISOString()} (a running server sends it).`);
  });
  jsonOption(users.command('grants <user>').description('list the clients that hold the user’s consent')).action(async (ref: string, opts: JsonOption) => {
    const items = await withServices(async (s) => s.users.listGrants(await userId(s, ref)));
    print(opts, listOf(items), items.map((g) => `${g.grantId}  ${g.clientName ?? g.clientId}  ${g.scopes.join(' ')}`).join('\n') || 'No grants.');
  });
  jsonOption(
    users
      .command('revoke-grants <user>')
      .description('revoke the user’s grants (all of them, or one with --grant) and their tokens')
      .option('--grant <grantId>', 'revoke only this grant'),
  ).action(async (ref: string, opts: JsonOption & { grant?: string }) => {
    const revoked = await withServices(async (s) => {
      const id = await userId(s, ref);
      if (!opts.grant) return s.users.revokeAllGrants(id, who);
      await s.users.revokeGrant(id, opts.grant, who);
      return 1;
    });
    print(opts, { revoked }, `Revoked ${revoked} grant(s).`);
  });
  const roles = users.command('roles').description('the roles a user has');
  jsonOption(roles.command('list <user>').description('list a user’s roles')).action(async (ref: string, opts: JsonOption) => {
    const list = await withServices(async (s) => s.roles.ofUser(await userId(s, ref)));
    print(opts, { items: list }, list.map((r) => r.name).join('\n') || 'No roles.');
  });
  jsonOption(roles.command('add <user> <role>').description('give a user a role')).action(async (ref: string, role: string, opts: JsonOption) => {
    const given = await withServices(async (s) => s.roles.assign(await userId(s, ref), role, who));
    print(opts, { ...given }, `${ref} has the role ${given.name}`);
  });
  jsonOption(roles.command('remove <user> <role>').description('take a role from a user')).action(async (ref: string, role: string, opts: JsonOption) => {
    await withServices(async (s) => s.roles.unassign(await userId(s, ref), role, who));
    print(opts, { removed: role }, `${ref} no longer has the role ${role}`);
  });
  const factors = users.command('factors').description('a user’s second factors (two-step verification)');
  jsonOption(factors.command('list <user>').description('list a user’s authenticator apps and how many recovery codes are left')).action(async (ref: string, opts: JsonOption) => {
    const { items, recoveryCodesLeft } = await withServices(async (s) => s.mfa.overview(await userId(s, ref)));
    const lines = items.map((f) => `${f.id}  ${f.type}  ${f.name || '-'}  added ${f.createdAt.toISOString()}  last used ${f.lastUsedAt?.toISOString() ?? 'never'}`);
    print(opts, { ...listOf(items), recoveryCodesLeft }, items.length ? [...lines, `Recovery codes left: ${recoveryCodesLeft}`].join('\n') : 'No second factor: the password alone signs in.');
  });
  jsonOption(factors.command('reset <user>').description('turn off a user’s two-step verification: every authenticator app and recovery code goes; the user is emailed')).action(async (ref: string, opts: JsonOption) => {
    const { id, removed } = await withServices(async (s) => {
      const found = await userId(s, ref);
      return { id: found, removed: await s.mfa.resetAll(who, found) };
    });
    print(opts, { id, removed }, `Two-step verification is off for ${id} (${removed} second factor(s) removed: authenticator apps and passkeys); they are emailed about it (a running server sends it).`);
  });
  jsonOption(users.command('revoke-sessions <user>').description('sign the user out of every browser session')).action(async (ref: string, opts: JsonOption) => {
    const revoked = await withServices(async (s) => s.users.revokeSessions(await userId(s, ref), who));
    print(opts, { revoked }, `Ended ${revoked} session(s).`);
  });
  jsonOption(users.command('identities <user>').description('list the upstream accounts (Google, …) linked to the user')).action(async (ref: string, opts: JsonOption) => {
    const items = await withServices(async (s) => s.federation.identities(await userId(s, ref)));
    print(opts, listOf(items), items.map((i) => `${i.id}  ${i.providerId}  ${i.email ?? ''}  ${i.subject}`).join('\n') || 'No linked accounts.');
  });
  jsonOption(
    users
      .command('unlink <user>')
      .description('unlink an upstream account, unless it is the user’s last way to sign in')
      .requiredOption('--identity <identityId>', 'the linked identity to remove (see `idp users identities`)'),
  ).action(async (ref: string, opts: JsonOption & { identity: string }) => {
    await withServices(async (s) => s.federation.unlink(await userId(s, ref), opts.identity, who));
    print(opts, { unlinked: opts.identity }, `Unlinked ${opts.identity}`);
  });
}
