import type { Logger } from 'pino';
import { randomUUID } from 'node:crypto';
import type { Actor, AuditService } from '../audit/service.ts';
import type { PrismaClient } from '../db/index.ts';
import { decrypt, encrypt } from '../lib/crypto.ts';
import { conflict, notFound, redactedError } from '../lib/errors.ts';
import type { ComposedMail } from './compose.ts';

/** Sends one message (nodemailer over SMTP, or the log in development): src/mail/transport.ts. */
export interface MailTransport {
  send(message: ComposedMail): Promise<void>;
  /** Ends open connections (at shutdown). */
  close?(): void;
}

/** A transaction's client, or the client itself: a message is written with the change that causes it. */
type Writer = Pick<PrismaClient, 'outboxMessage'>;

export const MAIL_STATUSES = ['pending', 'sent', 'failed'] as const;
export type MailStatus = (typeof MAIL_STATUSES)[number];

/** What an admin sees of a message: never its body. */
export interface OutboxView {
  id: string;
  kind: string;
  recipient: string;
  subject: string;
  status: MailStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  createdAt: Date;
  sentAt: Date | null;
}

const PURPOSE = 'outbox-message';
/**
 * How long one instance holds a message while it delivers it; past it, another instance may try.
 * Far longer than a send can take (every SMTP wait is bounded: src/mail/transport.ts), so that a
 * message is sent twice only when an instance dies between the SMTP server accepting it and
 * recording it as sent.
 */
const HOLD_MS = 5 * 60_000;
const BATCH = 20;
/** The longest wait between two attempts. */
const MAX_BACKOFF_MS = 6 * 3600 * 1000;
const SYSTEM: Actor = { actor: 'system:outbox' };
/**
 * How a failure that was about the message itself begins in `lastError` (src/mail/transport.ts
 * writes nodemailer's code first): the server refused its sender or recipient, or its content.
 * Every other failure (no connection, no answer, TLS, authentication) was the server's, and ends
 * when the server delivers again.
 */
const MESSAGE_REFUSED = ['EENVELOPE:', 'EMESSAGE:'];

/** Every column but the body (and the hold, which is the outbox's own business). */
const VIEW = { id: true, kind: true, recipient: true, subject: true, status: true, attempts: true, nextAttemptAt: true, lastError: true, createdAt: true, sentAt: true } as const;
const view = (row: Omit<OutboxView, 'status'> & { status: string }): OutboxView => ({ ...row, status: row.status as MailStatus });

/**
 * The outbox: email is written to the database (encrypted, in the transaction of the change that
 * causes it) and delivered by a loop on every instance, with retries and backoff, so that an SMTP
 * outage delays mail and loses none.
 *
 * - One instance at a time sends a message: it holds the message (an atomic conditional update)
 *   before sending, and only the holder records a failure.
 * - Attempts are counted when a message is held; the n-th failed attempt waits
 *   MAIL_RETRY_SECONDS × 2^(n−1) (at most 6 h) before the next. After MAIL_MAX_ATTEMPTS the
 *   message is `failed` (audited `mail.failed`) until an admin retries it.
 * - When a message is delivered, those that waited because the server could not be reached are
 *   due again at once: an outage's mail goes out when it ends, not hours later.
 * - Once sent, the body (which may hold a single-use link) is erased; recipient, subject and the
 *   delivery record stay until the purge.
 */
export function createOutbox(
  prisma: PrismaClient,
  deps: { audit: AuditService; transport: MailTransport; secret: () => Promise<string>; log?: Logger },
  policy: { maxAttempts: number; retrySeconds: number; connections: number },
) {
  let wake: () => void = () => {};
  /** A wake arrived while a delivery run was going: the run goes round once more. */
  let woken = false;
  /** Attempts are failing (an outage, say): logged at warn once, then at debug until one succeeds. */
  let failing = false;
  // The key (read once per process, src/lib/server-secrets.ts) is read before any transaction
  // needs it: reading it inside one would wait for a connection that the transaction itself holds
  // (SQLite has one). See warm().
  const { secret } = deps;
  /** A delivery run is going (it looks again before it ends when woken: no need to start one). */
  let delivering = false;
  /**
   * The last run stopped because the server could not be reached: until a run delivers again,
   * new mail waits for the next poll (MAIL_POLL_SECONDS) instead of each write starting a run
   * that fails at once, which would spin during an outage.
   */
  let outage = false;
  const wakeNow = () => {
    if (outage) return;
    woken = true;
    if (!delivering) wake();
  };
  const backoffMs = (attempts: number) => Math.min(policy.retrySeconds * 1000 * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);

  /** One attempt at one message; `unreachable`: it failed because of the server, not the message. */
  async function deliver(id: string, now: Date): Promise<{ outcome: 'sent' | 'retry' | 'failed' | 'skipped'; unreachable?: boolean }> {
    // Held atomically (one conditional UPDATE): of instances that found the same message due, one
    // sends it. The hold's end is also its mark: only the holder writes the outcome of a failure.
    const heldUntil = new Date(Date.now() + HOLD_MS);
    const held = await prisma.outboxMessage.updateMany({
      where: { id, status: 'pending', nextAttemptAt: { lte: now }, OR: [{ lockedUntil: null }, { lockedUntil: { lt: now } }] },
      data: { lockedUntil: heldUntil, attempts: { increment: 1 } },
    });
    if (held.count !== 1) return { outcome: 'skipped' };
    const row = await prisma.outboxMessage.findUnique({ where: { id } });
    if (!row) return { outcome: 'skipped' };
    try {
      const { text, html } = JSON.parse(decrypt(row.body, await secret(), PURPOSE)) as { text: string; html: string };
      await deps.transport.send({ kind: row.kind, to: row.recipient, subject: row.subject, text, html });
    } catch (err) {
      const failed = row.attempts >= policy.maxAttempts;
      const lastError = redactedError(err);
      const unreachable = !MESSAGE_REFUSED.some((prefix) => lastError.startsWith(prefix));
      const recorded = await prisma.outboxMessage.updateMany({
        where: { id, status: 'pending', lockedUntil: heldUntil },
        data: { status: failed ? 'failed' : 'pending', lockedUntil: null, lastError, nextAttemptAt: new Date(Date.now() + backoffMs(row.attempts)) },
      });
      if (recorded.count !== 1) {
        // Held past HOLD_MS: another instance has taken the message over, and its outcome stands.
        deps.log?.warn({ message: id, kind: row.kind }, 'mail delivery outlasted its hold; another instance took the message over');
        return { outcome: 'skipped', unreachable };
      }
      const details = { message: id, kind: row.kind, attempts: row.attempts, error: lastError };
      if (failed) {
        deps.log?.warn(details, 'mail failed for good: an admin may retry it');
        await deps.audit.record(SYSTEM, 'mail.failed', id, { kind: row.kind, attempts: row.attempts, error: lastError });
        return { outcome: 'failed', unreachable };
      }
      if (failing) deps.log?.debug(details, 'mail not delivered; will retry');
      else deps.log?.warn(details, 'mail not delivered; will retry (further failures are logged at debug until mail is delivered again)');
      failing = true;
      return { outcome: 'retry', unreachable };
    }
    // Sent: the message (and any single-use link in it) is erased, whoever holds it now.
    await prisma.outboxMessage.update({ where: { id }, data: { status: 'sent', sentAt: new Date(), body: '', lockedUntil: null, lastError: null } });
    if (failing) deps.log?.info({ message: id }, 'mail delivered again');
    failing = false;
    return { outcome: 'sent' };
  }

  /**
   * The server delivered (again): messages that were waiting out an outage are due now, not at the
   * end of their backoff (hours, after a long outage), whichever instance saw them fail. Those the
   * server refused keep their wait.
   */
  async function releaseWaiting() {
    const now = new Date();
    const released = await prisma.outboxMessage.updateMany({
      where: { status: 'pending', nextAttemptAt: { gt: now }, attempts: { gt: 0 }, NOT: MESSAGE_REFUSED.map((prefix) => ({ lastError: { startsWith: prefix } })) },
      data: { nextAttemptAt: now },
    });
    if (released.count) {
      deps.log?.info({ messages: released.count }, 'mail waiting out an outage is due again');
      woken = true;
    }
  }

  /**
   * One pass over the messages due when it starts, `policy.connections` at a time (one per SMTP
   * connection): a message failing now is not tried again in it. When the server cannot be
   * reached, the pass ends there: the messages it has not tried would fail the same way, so an
   * outage costs one attempt per pass (per connection), not one per waiting message, and the
   * untried messages keep their attempts for when it is over.
   */
  async function pass(counts: Record<'sent' | 'retry' | 'failed', number>) {
    const now = new Date();
    for (;;) {
      const due = await prisma.outboxMessage.findMany({
        where: { status: 'pending', nextAttemptAt: { lte: now }, OR: [{ lockedUntil: null }, { lockedUntil: { lt: now } }] },
        orderBy: [{ nextAttemptAt: 'asc' }, { id: 'asc' }],
        take: BATCH,
        select: { id: true },
      });
      const queue = due.map((row) => row.id);
      let unreachable = false;
      let sent = false;
      const sender = async () => {
        for (let id = queue.shift(); id !== undefined && !unreachable; id = queue.shift()) {
          const attempt = await deliver(id, now);
          if (attempt.outcome !== 'skipped') counts[attempt.outcome]++;
          if (attempt.outcome === 'sent') sent = true;
          if (attempt.unreachable) unreachable = true;
        }
      };
      await Promise.all(Array.from({ length: Math.min(policy.connections, queue.length) }, sender));
      if (sent) {
        outage = false;
        await releaseWaiting();
      }
      if (unreachable) outage = true;
      if (unreachable || due.length < BATCH) return;
    }
  }

  return {
    /** Writes a message to deliver; pass the transaction's client to write it with the change, then wake() after the commit. */
    async enqueue(writer: Writer, mail: ComposedMail): Promise<string> {
      const id = randomUUID();
      const body = encrypt(JSON.stringify({ text: mail.text, html: mail.html }), await secret(), PURPOSE);
      await writer.outboxMessage.create({ data: { id, kind: mail.kind, recipient: mail.to, subject: mail.subject, body, nextAttemptAt: new Date() } });
      return id;
    },

    /** Reads the encryption key, so that enqueue never reads it inside a transaction (run at every start). */
    async warm(): Promise<void> {
      await secret();
    },

    /** Ends the transport's connections (after the background job has stopped). */
    close(): void {
      deps.transport.close?.();
    },

    /** Asks for delivery now (after the transaction that wrote a message has committed); during an outage, the next poll delivers it. */
    wake: wakeNow,

    /** What runs delivery now: the background job, once the app is running (src/app.ts). */
    onWake(fn: () => void) {
      wake = fn;
    },

    /**
     * Delivers the messages that are due, oldest first; returns how each attempt ended. A wake
     * during the run (a message written meanwhile) makes it look again before it ends.
     */
    async deliverDue(): Promise<Record<'sent' | 'retry' | 'failed', number>> {
      const counts = { sent: 0, retry: 0, failed: 0 };
      delivering = true;
      try {
        do {
          woken = false;
          await pass(counts);
        } while (woken);
      } finally {
        delivering = false;
      }
      return counts;
    },

    async list(q: { status?: MailStatus | undefined; limit: number; offset: number }): Promise<{ items: OutboxView[]; total: number }> {
      const where = q.status ? { status: q.status } : {};
      const [rows, total] = await Promise.all([
        prisma.outboxMessage.findMany({ where, select: VIEW, orderBy: [{ createdAt: 'desc' }, { id: 'asc' }], take: q.limit, skip: q.offset }),
        prisma.outboxMessage.count({ where }),
      ]);
      return { items: rows.map(view), total };
    },

    /** A failed message is tried again, from its first attempt, at once. */
    async retry(id: string, who: Actor): Promise<OutboxView> {
      const row = await prisma.outboxMessage.findUnique({ where: { id }, select: VIEW });
      if (!row) throw notFound(`no message ${id}`);
      const again = { status: 'pending', attempts: 0, nextAttemptAt: new Date(), lastError: null } as const;
      // Conditional, so that of two admins retrying at once one does it and the other is told.
      const { count } = await prisma.outboxMessage.updateMany({ where: { id, status: 'failed' }, data: { ...again, lockedUntil: null } });
      if (count !== 1) {
        const status = row.status === 'failed' ? ((await prisma.outboxMessage.findUnique({ where: { id }, select: { status: true } }))?.status ?? 'gone') : row.status;
        throw conflict(`message ${id} is ${status}: only a failed message can be retried`);
      }
      await deps.audit.record(who, 'mail.retried', id, { kind: row.kind });
      wakeNow();
      return view({ ...row, ...again });
    },

    /** Deletes sent messages sent before `sentBefore` and failed ones written before `failedBefore` (housekeeping). */
    async purge(cutoffs: { sentBefore: Date; failedBefore: Date }): Promise<number> {
      const { count } = await prisma.outboxMessage.deleteMany({
        where: { OR: [{ status: 'sent', sentAt: { lt: cutoffs.sentBefore } }, { status: 'failed', createdAt: { lt: cutoffs.failedBefore } }] },
      });
      return count;
    },
  };
}

export type Outbox = ReturnType<typeof createOutbox>;
