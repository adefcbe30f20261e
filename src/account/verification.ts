import type { Actor, AuditService } from '../audit/service.ts';
import type { PrismaClient } from '../db/index.ts';
import type { ConfigCache } from '../lib/config-cache.ts';
import { sha256 } from '../lib/crypto.ts';
import { conflict, notFound } from '../lib/errors.ts';
import { composeMail } from '../mail/compose.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Templates } from '../templates/engine.ts';
import type { LoginThrottle } from '../users/throttle.ts';
import type { AccountTokens, AccountTokenRow } from './tokens.ts';

/** Where a verification link leads: a page outside any sign-in, so that it works in another browser. */
export const VERIFY_EMAIL_PATH = '/verify-email';

/** Verification messages one address may be sent, whoever asks: one a minute, five an hour. */
const PER_MINUTE = 1;
const PER_HOUR = 5;

/** A transaction's client: the token, the message and the account are written together. */
type Writer = Pick<PrismaClient, 'accountToken' | 'outboxMessage' | 'user'>;

/** What the link and the code carry besides the address: the language of the message, and the sign-in waiting for it. */
interface TokenData {
  lang?: string;
  interaction?: string;
}

export type LinkState = { state: 'live'; email: string } | { state: 'verified'; email: string } | { state: 'expired'; email: string } | { state: 'unknown' };

/**
 * Email verification: a message with a single-use link (`/verify-email?token=…`) and a 6-digit
 * code, both stored only as hashes, working for EMAIL_VERIFICATION_TTL. Following the link or
 * typing the code sets `emailVerified` (the `email_verified` claim follows at once: the cached
 * user is forgotten). An address is sent at most one message a minute and five an hour, except
 * when an admin asks.
 */
export function createEmailVerification(deps: {
  prisma: PrismaClient;
  tokens: AccountTokens;
  outbox: Outbox;
  templates: Templates;
  throttle: Pick<LoginThrottle, 'hit' | 'accountKey'>;
  audit: AuditService;
  cache: Pick<ConfigCache, 'changed'>;
  issuer: string;
  ttlSeconds: number;
}) {
  const { prisma, tokens, outbox, templates, throttle, audit } = deps;
  const linkFor = (token: string) => `${deps.issuer}${VERIFY_EMAIL_PATH}?token=${token}`;
  const hours = Math.max(1, Math.floor(deps.ttlSeconds / 3600));

  /** Counts a message to this address; false when it was sent one too recently, or too many this hour. */
  async function mayMail(email: string): Promise<boolean> {
    const key = await throttle.accountKey(email);
    if ((await throttle.hit(`verify-mail:${key}`, 60)) > PER_MINUTE) return false;
    return (await throttle.hit(`verify-mail-hour:${key}`, 3600)) <= PER_HOUR;
  }

  /** A new link and code for the address (earlier ones stop working), and the message that carries them, with `writer`. */
  async function write(writer: Writer, user: { id: string; email: string }, lang: string, interaction?: string): Promise<void> {
    const data: TokenData = { lang, ...(interaction ? { interaction } : {}) };
    const { token, code } = await tokens.issue(writer, { purpose: 'verify_email', email: user.email, userId: user.id, ttlSeconds: deps.ttlSeconds, data, withCode: true });
    await outbox.enqueue(writer, composeMail(templates, { kind: 'verify_email', to: user.email, lang, link: linkFor(token), ...(code ? { code } : {}), vars: { count: hours } }));
  }

  /**
   * Marks the address of the token verified, in the transaction that used the token: only if the
   * account still has that address (a token for a replaced address verifies nothing). Every other
   * live verification token of the account stops working.
   */
  async function verify(writer: Writer, row: AccountTokenRow): Promise<{ userId: string; email: string; data: TokenData } | null> {
    if (!row.userId) return null;
    const { count } = await writer.user.updateMany({ where: { id: row.userId, email: row.email }, data: { emailVerified: true } });
    if (count !== 1) return null;
    await tokens.revokeForUser(writer, row.userId, ['verify_email']);
    return { userId: row.userId, email: row.email, data: JSON.parse(row.data ?? '{}') as TokenData };
  }

  /** After a verification committed: every instance forgets the cached user (the claim changes), and it is audited. */
  async function verified(userId: string, who: Actor, method: 'link' | 'code') {
    await deps.cache.changed();
    await audit.record(who, 'user.email_verified', userId, { method });
  }

  /**
   * The account, read from the database (never a cache): its address, whether it is verified,
   * and a stamp of its password (a sign-in that waits for the address was proven with the
   * password of its time: a new password voids it).
   */
  async function account(id: string) {
    const user = await prisma.user.findUnique({ where: { id }, select: { id: true, email: true, emailVerified: true, disabled: true, passwordHash: true } });
    if (!user) return null;
    const { passwordHash, ...rest } = user;
    return { ...rest, passwordStamp: sha256(`password:${passwordHash ?? ''}`).slice(0, 22) };
  }

  return {
    write,
    mayMail,

    account,

    /**
     * Sends a new link and code to the account's address: 'verified' when there is nothing to
     * prove, 'throttled' when the address was sent one too recently. `interaction`: the sign-in
     * that waits for it.
     */
    async send(userId: string, lang: string, who: Actor, interaction?: string): Promise<'sent' | 'throttled' | 'verified'> {
      const user = await account(userId);
      if (!user || user.disabled) return 'throttled';
      if (user.emailVerified) return 'verified';
      if (!(await mayMail(user.email))) return 'throttled';
      await prisma.$transaction((tx) => write(tx, user, lang, interaction));
      outbox.wake();
      await audit.record(who, 'user.verification_sent', user.id);
      return 'sent';
    },

    /** An admin asks for a new message (never throttled): 404 for no such user, 409 when the address is verified. */
    async sendByAdmin(userId: string, who: Actor): Promise<{ id: string; email: string; expiresAt: Date }> {
      const user = await account(userId);
      if (!user) throw notFound(`no user with id ${userId}`);
      if (user.emailVerified) throw conflict(`the address of user ${userId} is already verified`);
      await prisma.$transaction((tx) => write(tx, user, templates.catalogue.defaultLocale));
      outbox.wake();
      await audit.record(who, 'user.verification_sent', user.id);
      return { id: user.id, email: user.email, expiresAt: new Date(Date.now() + deps.ttlSeconds * 1000) };
    },

    /** What a link is: live, for an address now verified, expired or replaced, or not ours. */
    async inspect(token: string): Promise<LinkState> {
      const row = await tokens.lookup('verify_email', token);
      if (!row) return { state: 'unknown' };
      const user = row.userId ? await account(row.userId) : null;
      // Verified meanwhile (by another message, or an admin): nothing more to do, whatever the link.
      if (user?.emailVerified && user.email === row.email) return { state: 'verified', email: row.email };
      return { state: !row.usedAt && row.expiresAt.getTime() > Date.now() ? 'live' : 'expired', email: row.email };
    },

    /** A spent link asks for a new one, to the same account: 'unknown' when the link is not ours or its account is gone. */
    async resendFor(token: string, lang: string, ip: string): Promise<'sent' | 'throttled' | 'verified' | 'unknown'> {
      const row = await tokens.lookup('verify_email', token);
      const user = row?.userId ? await account(row.userId) : null;
      if (!row || !user || user.email !== row.email) return 'unknown';
      if (user.emailVerified) return 'verified';
      if (user.disabled || !(await mayMail(user.email))) return 'throttled';
      const data = JSON.parse(row.data ?? '{}') as TokenData;
      await prisma.$transaction((tx) => write(tx, user, lang, data.interaction));
      outbox.wake();
      await audit.record({ actor: 'anonymous', ip }, 'user.verification_sent', user.id);
      return 'sent';
    },

    /** Follows a link (it then stops working): the account and the sign-in that waited for it, if any. */
    async useLink(token: string, ip: string): Promise<{ userId: string; email: string; interaction: string | null } | null> {
      const done = await prisma.$transaction(async (tx) => {
        const row = await tokens.use(tx, 'verify_email', token);
        return row ? verify(tx, row) : null;
      });
      if (!done) return null;
      await verified(done.userId, { actor: `user:${done.userId}`, ip }, 'link');
      return { userId: done.userId, email: done.email, interaction: done.data.interaction ?? null };
    },

    /**
     * A code typed in the sign-in of `userId`: it must be the code of the newest message to that
     * account's address. Wrong codes are counted against the message (five, then it takes none).
     */
    async useCode(userId: string, code: string, ip: string): Promise<boolean> {
      const user = await account(userId);
      if (!user) return false;
      const done = await prisma.$transaction(async (tx) => {
        const row = await tokens.useCode(tx, 'verify_email', user.email, code);
        return row?.userId === userId ? verify(tx, row) : null;
      });
      if (!done) return false;
      await verified(userId, { actor: `user:${userId}`, ip }, 'code');
      return true;
    },
  };
}

export type EmailVerification = ReturnType<typeof createEmailVerification>;
