import type { PrismaClient } from '../db/index.ts';
import type { Actor, AuditService } from '../audit/service.ts';

/** Keycloak's brute-force defaults are the starting point (see README, Security). */
export interface ThrottlePolicy {
  /** Failures of one account before it waits. */
  maxFailures: number;
  /** Failures from one client address (any accounts) before it waits. */
  ipMaxFailures: number;
  /** The wait grows by this much with every failure past the threshold... */
  waitIncrementSeconds: number;
  /** ...up to this. */
  maxWaitSeconds: number;
  /** Failures older than this are forgotten. */
  resetSeconds: number;
}

export const DEFAULT_THROTTLE_POLICY: ThrottlePolicy = { maxFailures: 30, ipMaxFailures: 100, waitIncrementSeconds: 60, maxWaitSeconds: 15 * 60, resetSeconds: 12 * 3600 };

export const accountKey = (normalizedEmail: string) => `account:${normalizedEmail}`;
export const ipKey = (ip: string) => `ip:${ip}`;

/**
 * Failed sign-ins counted per account and per client address, in the database so that every
 * instance shares them. Unknown emails are counted like known ones (no enumeration).
 */
export function createLoginThrottle(prisma: PrismaClient, audit: AuditService, policy: ThrottlePolicy = DEFAULT_THROTTLE_POLICY) {
  const threshold = (key: string) => (key.startsWith('ip:') ? policy.ipMaxFailures : policy.maxFailures);

  return {
    /** Seconds the key must still wait, 0 when it may try. */
    async retryAfter(key: string, now = new Date()): Promise<number> {
      const row = await prisma.loginThrottle.findUnique({ where: { key } });
      return row?.lockedUntil && row.lockedUntil > now ? Math.ceil((row.lockedUntil.getTime() - now.getTime()) / 1000) : 0;
    },

    /** Counts a failure against each key; the waits grow past the thresholds. */
    async fail(keys: string[], who: Actor, now = new Date()): Promise<void> {
      for (const key of keys) {
        const row = await prisma.loginThrottle.findUnique({ where: { key } });
        const stale = !row || now.getTime() - row.lastFailureAt.getTime() > policy.resetSeconds * 1000;
        const updated = stale
          ? await prisma.loginThrottle.upsert({ where: { key }, create: { key, failures: 1, lastFailureAt: now }, update: { failures: 1, lastFailureAt: now, lockedUntil: null } })
          : await prisma.loginThrottle.update({ where: { key }, data: { failures: { increment: 1 }, lastFailureAt: now } });
        const over = updated.failures - threshold(key) + 1;
        if (over > 0) {
          const wait = Math.min(policy.waitIncrementSeconds * over, policy.maxWaitSeconds);
          await prisma.loginThrottle.update({ where: { key }, data: { lockedUntil: new Date(now.getTime() + wait * 1000) } });
          await audit.record(who, 'login.throttled', key, { failures: updated.failures, waitSeconds: wait });
        }
      }
    },

    /** A successful sign-in clears the account's count (not the address's). */
    async succeed(key: string): Promise<void> {
      await prisma.loginThrottle.deleteMany({ where: { key } });
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
