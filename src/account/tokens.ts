import { randomInt, randomUUID } from 'node:crypto';
import type { PrismaClient } from '../db/index.ts';
import { randomToken, secretEquals, sha256 } from '../lib/crypto.ts';

/** What a single-use emailed token is for. */
export type TokenPurpose = 'verify_email' | 'reset_password' | 'invite' | 'change_email';

/** A transaction's client, or the client itself: a token is written with the message that carries it. */
type Writer = Pick<PrismaClient, 'accountToken'>;

export interface AccountTokenRow {
  id: string;
  purpose: string;
  userId: string | null;
  email: string;
  data: string | null;
  expiresAt: Date;
}

/** Wrong codes a token takes before it stops accepting any. */
const MAX_CODE_ATTEMPTS = 5;

/**
 * Single-use tokens sent by email (the only owner of the AccountToken table). The token (a link's
 * secret, 256 bits) and its optional 6-digit code are stored only as SHA-256 hashes; using one
 * is atomic, so of two parallel uses exactly one wins.
 */
export function createAccountTokens(prisma: PrismaClient) {
  const live = (now = new Date()) => ({ usedAt: null, expiresAt: { gt: now } });
  const select = { id: true, purpose: true, userId: true, email: true, data: true, expiresAt: true } as const;

  return {
    /** A new token (and code, when asked); earlier unused tokens of the same purpose and address stop working. */
    async issue(
      writer: Writer,
      t: { purpose: TokenPurpose; email: string; userId?: string | null; ttlSeconds: number; data?: unknown; withCode?: boolean },
    ): Promise<{ token: string; code?: string }> {
      const token = randomToken(32);
      const code = t.withCode ? String(randomInt(0, 1_000_000)).padStart(6, '0') : undefined;
      const now = new Date();
      await writer.accountToken.updateMany({ where: { purpose: t.purpose, email: t.email, ...live(now) }, data: { usedAt: now } });
      const id = randomUUID();
      await writer.accountToken.create({
        data: {
          id,
          purpose: t.purpose,
          tokenHash: sha256(token),
          codeHash: code ? sha256(`${id}:${code}`) : null,
          userId: t.userId ?? null,
          email: t.email,
          data: t.data === undefined ? null : JSON.stringify(t.data),
          expiresAt: new Date(now.getTime() + t.ttlSeconds * 1000),
        },
      });
      return code ? { token, code } : { token };
    },

    /** The token, if it is live (unused, unexpired): to show its form before it is used. */
    find(purpose: TokenPurpose, token: string): Promise<AccountTokenRow | null> {
      if (!token || token.length > 200) return Promise.resolve(null);
      return prisma.accountToken.findFirst({ where: { tokenHash: sha256(token), purpose, ...live() }, select });
    },

    /** Whether the token exists but is used or expired (to tell "expired" from "unknown"). */
    async isSpent(purpose: TokenPurpose, token: string): Promise<boolean> {
      if (!token || token.length > 200) return false;
      return (await prisma.accountToken.count({ where: { tokenHash: sha256(token), purpose } })) > 0;
    },

    /** The token whatever its state (live, used or expired): to offer a new one in place of a spent link. */
    async lookup(purpose: TokenPurpose, token: string): Promise<(AccountTokenRow & { usedAt: Date | null }) | null> {
      if (!token || token.length > 200) return null;
      return prisma.accountToken.findFirst({ where: { tokenHash: sha256(token), purpose }, select: { ...select, usedAt: true } });
    },

    /** Uses the token: the row when this call used it, null when it was unknown, used or expired. */
    async use(writer: Writer, purpose: TokenPurpose, token: string): Promise<AccountTokenRow | null> {
      if (!token || token.length > 200) return null;
      const tokenHash = sha256(token);
      const now = new Date();
      const { count } = await writer.accountToken.updateMany({ where: { tokenHash, purpose, ...live(now) }, data: { usedAt: now } });
      if (count !== 1) return null;
      return writer.accountToken.findUnique({ where: { tokenHash }, select });
    },

    /**
     * Uses the newest live token of this purpose and address by its code. Each wrong code is
     * counted; after five, the token takes no more codes (its link still works).
     */
    async useCode(writer: Writer, purpose: TokenPurpose, email: string, code: string): Promise<AccountTokenRow | null> {
      const row = await writer.accountToken.findFirst({ where: { purpose, email, codeHash: { not: null }, ...live() }, orderBy: { createdAt: 'desc' } });
      if (!row || row.attempts >= MAX_CODE_ATTEMPTS) return null;
      const counted = await writer.accountToken.updateMany({ where: { id: row.id, attempts: { lt: MAX_CODE_ATTEMPTS } }, data: { attempts: { increment: 1 } } });
      if (counted.count !== 1 || !/^\d{6}$/.test(code) || !secretEquals(sha256(`${row.id}:${code}`), row.codeHash!)) return null;
      const now = new Date();
      const { count } = await writer.accountToken.updateMany({ where: { id: row.id, ...live(now) }, data: { usedAt: now } });
      return count === 1 ? { id: row.id, purpose: row.purpose, userId: row.userId, email: row.email, data: row.data, expiresAt: row.expiresAt } : null;
    },

    /** Every live token of these purposes for the user stops working (a password changed, an account deleted). */
    async revokeForUser(writer: Writer, userId: string, purposes: TokenPurpose[]): Promise<void> {
      const now = new Date();
      await writer.accountToken.updateMany({ where: { userId, purpose: { in: purposes }, ...live(now) }, data: { usedAt: now } });
    },

    /** Deletes tokens used or expired before `before` (housekeeping). */
    async purge(before: Date): Promise<number> {
      const { count } = await prisma.accountToken.deleteMany({ where: { OR: [{ expiresAt: { lt: before } }, { usedAt: { lt: before } }] } });
      return count;
    },
  };
}

export type AccountTokens = ReturnType<typeof createAccountTokens>;
