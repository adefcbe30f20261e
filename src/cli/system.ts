import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { openDatabase } from '../db/index.ts';
import { migrate } from '../db/migrate.ts';
import { listOf } from '../lib/lists.ts';
import { jsonOption, pageOptions, print, who, withServices, type JsonOption } from './kit.ts';

/** `idp migrate`, `idp purge`, `idp keys …`, `idp audit …`: mirrors /admin/v1/keys and /admin/v1/audit. */
export function systemCommands(program: Command) {
  jsonOption(program.command('migrate').description('apply pending database migrations')).action(async (opts: JsonOption) => {
    const db = await openDatabase(loadConfig().databaseUrl);
    try {
      const applied = await migrate(db);
      print(opts, { applied }, applied.length ? `Applied: ${applied.join(', ')}` : 'The database is up to date.');
    } finally {
      await db.close();
    }
  });

  jsonOption(
    program
      .command('purge')
      .description('delete expired tokens, codes, sessions and grants, audit events past AUDIT_RETENTION_DAYS, stale throttling counts, mail sent before MAIL_RETENTION_DAYS or failed 90 days ago, and emailed links spent a week ago (the server also does this every PURGE_INTERVAL_SECONDS)'),
  ).action(async (opts: JsonOption) => {
    const result = await withServices(({ housekeeping }) => housekeeping.purge());
    print(opts, { ...result }, `Purged ${result.artifacts} expired artifacts, ${result.grants} grants, ${result.auditEvents} audit events, ${result.throttles} throttling counts, ${result.mail} mail messages, ${result.accountTokens} emailed links, ${result.logoutDeliveries} back-channel logout notices.`);
  });

  const keys = program.command('keys').description('signing keys');
  jsonOption(keys.command('rotate').description('start a key rotation: new keys are published now and sign after KEY_PREPUBLICATION_SECONDS')).action(async (opts: JsonOption) => {
    const items = await withServices(({ keys }) => keys.rotate(who));
    print(opts, listOf(items), `New keys ${items.map((k) => `${k.kid} (${k.alg})`).join(', ')} are published and sign from ${items[0]?.activatesAt?.toISOString()}; every instance picks them up by itself.`);
  });
  jsonOption(keys.command('list').description('list the signing keys (no private material); the server creates them on first start')).action(async (opts: JsonOption) => {
    const items = await withServices(({ keys }) => keys.list());
    const line = (k: (typeof items)[number]) =>
      `${k.kid}  ${k.alg.padEnd(6)} ${k.state.padEnd(8)} ${k.createdAt.toISOString()}${k.activatesAt && k.state === 'next' ? `  signs from ${k.activatesAt.toISOString()}` : ''}${k.removeAfter ? `  removed after ${k.removeAfter.toISOString()}` : ''}`;
    print(opts, listOf(items), items.map(line).join('\n') || 'No keys yet.');
  });

  jsonOption(
    pageOptions(
      program
        .command('audit')
        .description('read the audit trail')
        .command('list')
        .description('list audit events, newest first')
        .option('--action <action>', 'e.g. client.created, user.disabled')
        .option('--actor <actor>', 'e.g. client:<id>, cli:<user>@<host>')
        .option('--target <id>', 'the id the event is about'),
    ),
  ).action(async (opts: JsonOption & { action?: string; actor?: string; target?: string; limit: number; offset: number }) => {
    const result = await withServices(({ audit }) => audit.list(opts));
    print(opts, listOf(result.items, { ...opts, total: result.total }), result.items.map((e) => `${e.at.toISOString()}  ${e.action.padEnd(28)} ${e.actor}  ${e.target ?? ''}`).join('\n') || 'No events.');
  });
}
