import type { Command } from 'commander';
import { listOf } from '../lib/lists.ts';
import { MAIL_STATUSES, type MailStatus, type OutboxView } from '../mail/outbox.ts';
import { choice, jsonOption, pageOptions, print, who, withServices, type JsonOption } from './kit.ts';

const line = (m: OutboxView) =>
  [m.id, m.status.padEnd(7), m.createdAt.toISOString(), m.kind, m.recipient, `${m.attempts} attempt${m.attempts === 1 ? '' : 's'}`, m.status === 'pending' ? `next ${m.nextAttemptAt.toISOString()}` : '', m.lastError ?? '']
    .filter(Boolean)
    .join('  ');

/** `idp mail …`: mirrors /admin/v1/mail. */
export function mailCommands(program: Command) {
  const mail = program.command('mail').description('outgoing email: what was sent, what waits, what failed (never a message’s body)');
  jsonOption(
    pageOptions(
      mail
        .command('list')
        .description('list messages, newest first')
        .addOption(choice('--status <status>', 'only messages in this state', MAIL_STATUSES)),
    ),
  ).action(async (opts: JsonOption & { status?: MailStatus; limit: number; offset: number }) => {
    const result = await withServices(({ outbox }) => outbox.list(opts));
    print(opts, listOf(result.items, { total: result.total, limit: opts.limit, offset: opts.offset }), result.items.map(line).join('\n') || 'No messages.');
  });
  jsonOption(mail.command('retry <id>').description('send a failed message again (the server picks it up within MAIL_POLL_SECONDS)')).action(async (id: string, opts: JsonOption) => {
    const message = await withServices(({ outbox }) => outbox.retry(id, who));
    print(opts, { ...message }, `Message ${message.id} to ${message.recipient} will be sent again within MAIL_POLL_SECONDS.`);
  });
}
