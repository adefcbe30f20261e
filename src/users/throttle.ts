import type { Redis } from 'ioredis';
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

/** Where failure counts live: the database, or Redis when REDIS_URL is set. Shared by every instance either way. */
interface ThrottleStore {
  lockedUntil(key: string): Promise<Date | null>;
  /** Counts one failure (forgetting counts older than the reset period); returns the count. */
  recordFailure(key: string, now: Date): Promise<number>;
  lock(key: string, until: Date): Promise<void>;
  clear(key: string): Promise<void>;
  close(): Promise<void>;
}

function databaseStore(prisma: PrismaClient, policy: ThrottlePolicy): ThrottleStore {
  return {
    async lockedUntil(key) {
      return (await prisma.loginThrottle.findUnique({ where: { key }, select: { lockedUntil: true } }))?.lockedUntil ?? null;
    },
    async recordFailure(key, now) {
      const row = await prisma.loginThrottle.findUnique({ where: { key } });
      const stale = !row || now.getTime() - row.lastFailureAt.getTime() > policy.resetSeconds * 1000;
      const updated = stale
        ? await prisma.loginThrottle.upsert({ where: { key }, create: { key, failures: 1, lastFailureAt: now }, update: { failures: 1, lastFailureAt: now, lockedUntil: null } })
        : await prisma.loginThrottle.update({ where: { key }, data: { failures: { increment: 1 }, lastFailureAt: now } });
      return updated.failures;
    },
    async lock(key, until) {
      await prisma.loginThrottle.update({ where: { key }, data: { lockedUntil: until } });
    },
    async clear(key) {
      await prisma.loginThrottle.deleteMany({ where: { key } });
    },
    async close() {},
  };
}

/** A Redis hash per key, expiring once no failure has come for the reset period. */
function redisStore(url: string, prefix: string, policy: ThrottlePolicy): ThrottleStore {
  // Loaded and connected on first use, so that processes which never sign anyone in (the CLI,
  // a deployment without REDIS_URL) never hold the client.
  let client: Promise<Redis> | undefined;
  const ready = () =>
    (client ??= import('ioredis').then(async ({ Redis }) => {
      // Fail fast instead of queueing commands while Redis is away (no silent waits at login).
      const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 });
      await redis.connect();
      return redis;
    }));
  const k = (key: string) => `${prefix}throttle:${key}`;
  return {
    async lockedUntil(key) {
      const value = await (await ready()).hget(k(key), 'lockedUntil');
      return value ? new Date(Number(value)) : null;
    },
    async recordFailure(key) {
      const redis = await ready();
      const [[, failures]] = (await redis.multi().hincrby(k(key), 'failures', 1).expire(k(key), policy.resetSeconds).exec()) as [[null, number]];
      return failures;
    },
    async lock(key, until) {
      const redis = await ready();
      await redis
        .multi()
        .hset(k(key), 'lockedUntil', String(until.getTime()))
        .expire(k(key), Math.max(policy.resetSeconds, Math.ceil((until.getTime() - Date.now()) / 1000)))
        .exec();
    },
    async clear(key) {
      await (await ready()).del(k(key));
    },
    async close() {
      (await client?.catch(() => undefined))?.disconnect();
    },
  };
}

/**
 * Failed sign-ins counted per account and per client address, shared by every instance. Unknown
 * emails are counted like known ones (no enumeration).
 */
export function createLoginThrottle(
  prisma: PrismaClient,
  audit: AuditService,
  policy: ThrottlePolicy = DEFAULT_THROTTLE_POLICY,
  redis?: { url: string; prefix: string },
) {
  const store = redis ? redisStore(redis.url, redis.prefix, policy) : databaseStore(prisma, policy);
  const threshold = (key: string) => (key.startsWith('ip:') ? policy.ipMaxFailures : policy.maxFailures);

  return {
    /**
     * Seconds a sign-in attempt must still wait: the longest wait among its keys, 0 when it may
     * try. A blocked attempt is an audit event, against the key that blocks it.
     */
    async wait(keys: string[], who: Actor, details: Record<string, unknown> = {}, now = new Date()): Promise<number> {
      let longest = 0;
      let blocking = '';
      for (const key of keys) {
        const until = await store.lockedUntil(key);
        const seconds = until && until > now ? Math.ceil((until.getTime() - now.getTime()) / 1000) : 0;
        if (seconds > longest) [longest, blocking] = [seconds, key];
      }
      if (longest) await audit.record(who, 'login.throttled', blocking, { retryAfterSeconds: longest, blocked: true, ...details });
      return longest;
    },

    /** Counts a failure against each key; the waits grow past the thresholds. */
    async fail(keys: string[], who: Actor, now = new Date()): Promise<void> {
      for (const key of keys) {
        const failures = await store.recordFailure(key, now);
        const over = failures - threshold(key) + 1;
        if (over > 0) {
          const wait = Math.min(policy.waitIncrementSeconds * over, policy.maxWaitSeconds);
          await store.lock(key, new Date(now.getTime() + wait * 1000));
          await audit.record(who, 'login.throttled', key, { failures, waitSeconds: wait });
        }
      }
    },

    /** A successful sign-in clears the account's count (not the address's). */
    async succeed(key: string): Promise<void> {
      await store.clear(key);
    },

    close: () => store.close(),
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
