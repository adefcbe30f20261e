import { join, sqltag } from '@prisma/client/runtime/client';
import { timestampParam, type Dialect, type PrismaClient } from '../db/index.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import type { RedisConnection } from '../lib/redis.ts';
import { pseudonym } from '../lib/crypto.ts';
import { normalizeEmail } from './service.ts';

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

/**
 * How long an attempt that reached a key's threshold holds that key while its password is
 * checked: parallel attempts wait instead of being checked too. The hold ends when the attempt
 * does (a failure turns it into the real wait); this bound only matters if a process dies meanwhile.
 */
const HOLD_SECONDS = 30;

const ipKey = (ip: string) => `ip:${ip}`;

/**
 * How long a key waits after its `failures`-th failure: nothing below the threshold; from the
 * threshold on, one increment more with every failure, up to the maximum.
 */
export function waitSeconds(failures: number, threshold: number, policy: Pick<ThrottlePolicy, 'waitIncrementSeconds' | 'maxWaitSeconds'>): number {
  if (failures < threshold) return 0;
  return Math.min(policy.waitIncrementSeconds * (failures - threshold + 1), policy.maxWaitSeconds);
}

/** Where the counts live: the database, or Redis when REDIS_URL is set. Shared by every instance either way. */
interface ThrottleStore {
  /**
   * Counts an attempt against each of `keys`, atomically, and returns each count; null for a key
   * that is waiting (nothing is counted for it). When a count reaches its key's `threshold`, the
   * key is held until `holdUntil` in the same step, so that no parallel attempt gets past it
   * meanwhile.
   */
  reserve(keys: readonly { key: string; threshold: number }[], at: { now: Date; forgetBefore: Date; holdUntil: Date }): Promise<(number | null)[]>;
  /** An attempt refused while the key waits: counted; returns when the wait ends. */
  refuse(key: string): Promise<Date | null>;
  /** After a failure at or past the threshold: the key waits until `until`; returns the attempts refused since the last such call. */
  lock(key: string, until: Date, resetSeconds: number): Promise<number>;
  /** Takes an attempt's count back from `key`, and ends its hold (an attempt not checked after all). */
  release(key: string, holdUntil: Date): Promise<void>;
  /** A successful attempt: the address's count taken back and its hold ended, the account's count (if it was counted) forgotten. */
  succeeded(ip: string, account: string | undefined, holdUntil: Date): Promise<void>;
  /** Counts an event in a window of `windowSeconds` that starts at the window's first event; returns the window's count. */
  hit(key: string, now: Date, windowSeconds: number): Promise<number>;
  /** Deletes what was last counted before `before` and no longer waits; returns how many keys. */
  purge(before: Date, now: Date): Promise<number>;
}

function databaseStore(prisma: PrismaClient, dialect: Dialect): ThrottleStore {
  const at = (date: Date | null) => timestampParam(dialect, date);
  return {
    async reserve(keys, { now, forgetBefore, holdUntil }) {
      // One statement for every key: the counts and the holds cannot be raced by a parallel
      // attempt; a row that waits is not updated, so not returned.
      const rows = await prisma.$queryRaw<{ key: string; failures: number }[]>`
        INSERT INTO "LoginThrottle" ("key", "failures", "lastFailureAt", "lockedUntil", "refused")
        VALUES ${join(keys.map((k) => sqltag`(${k.key}, 1, ${now}, ${at(k.threshold <= 1 ? holdUntil : null)}, 0)`))}
        ON CONFLICT ("key") DO UPDATE SET
          "failures" = CASE WHEN "LoginThrottle"."lastFailureAt" < ${forgetBefore} THEN 1 ELSE "LoginThrottle"."failures" + 1 END,
          "lastFailureAt" = ${now},
          "lockedUntil" = CASE
            WHEN (CASE WHEN "LoginThrottle"."lastFailureAt" < ${forgetBefore} THEN 1 ELSE "LoginThrottle"."failures" + 1 END)
              >= (CASE "LoginThrottle"."key" ${join(keys.map((k) => sqltag`WHEN ${k.key} THEN CAST(${k.threshold} AS INTEGER)`), ' ')} END) THEN ${at(holdUntil)}
            ELSE NULL END
        WHERE "LoginThrottle"."lockedUntil" IS NULL OR "LoginThrottle"."lockedUntil" <= ${now}
        RETURNING "key", "failures"`;
      return keys.map((k) => {
        const row = rows.find((r) => r.key === k.key);
        return row ? Number(row.failures) : null;
      });
    },
    async refuse(key) {
      const rows = await prisma.$queryRaw<{ lockedUntil: Date | string | null }[]>`
        UPDATE "LoginThrottle" SET "refused" = "refused" + 1 WHERE "key" = ${key} RETURNING "lockedUntil"`;
      const until = rows[0]?.lockedUntil;
      return until ? new Date(until) : null;
    },
    async lock(key, until) {
      const refused = (await prisma.loginThrottle.findUnique({ where: { key }, select: { refused: true } }))?.refused ?? 0;
      // Takes away what it reports: refusals counted meanwhile are reported next time.
      await prisma.$executeRaw`UPDATE "LoginThrottle" SET "lockedUntil" = ${until}, "refused" = "refused" - ${refused} WHERE "key" = ${key}`;
      return refused;
    },
    async release(key, holdUntil) {
      await prisma.$executeRaw`
        UPDATE "LoginThrottle" SET
          "failures" = CASE WHEN "failures" > 0 THEN "failures" - 1 ELSE 0 END,
          "lockedUntil" = CASE WHEN "lockedUntil" = ${at(holdUntil)} THEN NULL ELSE "lockedUntil" END
        WHERE "key" = ${key}`;
    },
    async succeeded(ip, account, holdUntil) {
      // One statement for both keys. The account's row stays, at zero, until the purge.
      await prisma.$executeRaw`
        UPDATE "LoginThrottle" SET
          "failures" = CASE WHEN "key" = ${ip} AND "failures" > 0 THEN "failures" - 1 ELSE 0 END,
          "refused" = CASE WHEN "key" = ${ip} THEN "refused" ELSE 0 END,
          "lockedUntil" = CASE WHEN "key" <> ${ip} OR "lockedUntil" = ${at(holdUntil)} THEN NULL ELSE "lockedUntil" END
        WHERE "key" IN (${ip}, ${account ?? ip})`;
    },
    async hit(key, now, windowSeconds) {
      const windowEnded = new Date(now.getTime() - windowSeconds * 1000);
      const rows = await prisma.$queryRaw<{ failures: number }[]>`
        INSERT INTO "LoginThrottle" ("key", "failures", "lastFailureAt", "refused") VALUES (${key}, 1, ${now}, 0)
        ON CONFLICT ("key") DO UPDATE SET
          "failures" = CASE WHEN "LoginThrottle"."lastFailureAt" <= ${windowEnded} THEN 1 ELSE "LoginThrottle"."failures" + 1 END,
          "lastFailureAt" = CASE WHEN "LoginThrottle"."lastFailureAt" <= ${windowEnded} THEN ${at(now)} ELSE "LoginThrottle"."lastFailureAt" END
        RETURNING "failures"`;
      return Number(rows[0]!.failures);
    },
    async purge(before, now) {
      const { count } = await prisma.loginThrottle.deleteMany({ where: { lastFailureAt: { lt: before }, OR: [{ lockedUntil: null }, { lockedUntil: { lt: now } }] } });
      return count;
    },
  };
}

// Each operation is one script: Redis runs it atomically. A key expires once nothing happened
// to it for the reset period (or its wait, if longer), which is how old failures are forgotten.
const RESERVE = `
local locked = tonumber(redis.call('HGET', KEYS[1], 'lockedUntil') or '0')
if locked > tonumber(ARGV[1]) then return -1 end
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if n >= tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], 'lockedUntil', ARGV[3]) else redis.call('HDEL', KEYS[1], 'lockedUntil') end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return n`;
const REFUSE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HINCRBY', KEYS[1], 'refused', 1)
return redis.call('HGET', KEYS[1], 'lockedUntil')`;
const LOCK = `
local refused = tonumber(redis.call('HGET', KEYS[1], 'refused') or '0')
redis.call('HSET', KEYS[1], 'lockedUntil', ARGV[1], 'refused', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return refused`;
const RELEASE = `
if tonumber(redis.call('HGET', KEYS[1], 'failures') or '0') > 0 then redis.call('HINCRBY', KEYS[1], 'failures', -1) end
if redis.call('HGET', KEYS[1], 'lockedUntil') == ARGV[1] then redis.call('HDEL', KEYS[1], 'lockedUntil') end
return 0`;
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n`;

function redisStore(redis: RedisConnection, policy: ThrottlePolicy): ThrottleStore {
  const k = (key: string) => `${redis.prefix}throttle:${key}`;
  const run = (script: string, key: string, ...args: (string | number)[]) => redis.run((r) => r.eval(script, 1, k(key), ...args.map(String)));
  return {
    async reserve(keys, { now, holdUntil }) {
      const counts: (number | null)[] = [];
      for (const { key, threshold } of keys) {
        const n = Number(await run(RESERVE, key, now.getTime(), threshold, holdUntil.getTime(), policy.resetSeconds));
        counts.push(n < 0 ? null : n);
      }
      return counts;
    },
    async refuse(key) {
      const until = (await run(REFUSE, key)) as string | null;
      return until ? new Date(Number(until)) : null;
    },
    async lock(key, until, resetSeconds) {
      return Number(await run(LOCK, key, until.getTime(), Math.max(resetSeconds, Math.ceil((until.getTime() - Date.now()) / 1000))));
    },
    async release(key, holdUntil) {
      await run(RELEASE, key, holdUntil.getTime());
    },
    async succeeded(ip, account, holdUntil) {
      await run(RELEASE, ip, holdUntil.getTime());
      if (account) await redis.run((r) => r.del(k(account)));
    },
    async hit(key, _now, windowSeconds) {
      return Number(await run(HIT, key, windowSeconds));
    },
    // Redis forgets by itself (every key expires).
    async purge() {
      return 0;
    },
  };
}

/** A sign-in attempt that may go ahead: say how it ended. */
export interface Attempt {
  wait: 0;
  finish(succeeded: boolean): Promise<void>;
}

/**
 * Failed sign-ins counted per account and per client address, shared by every instance. Each
 * attempt is counted before its password is checked, so parallel guesses cannot all slip under
 * the limit. Unknown emails are counted like known ones (no enumeration), and accounts are
 * keyed by a keyed hash of the typed email, never the email itself.
 */
export function createLoginThrottle(
  db: { prisma: PrismaClient; dialect: Dialect },
  audit: AuditService,
  policy: ThrottlePolicy,
  redis: RedisConnection | undefined,
  secret: () => Promise<string>,
) {
  const store = redis ? redisStore(redis, policy) : databaseStore(db.prisma, db.dialect);
  const threshold = (key: string) => (key.startsWith('ip:') ? policy.ipMaxFailures : policy.maxFailures);

  return {
    /** The throttling key of the account an email names (or would name). */
    async accountKey(email: string): Promise<string> {
      return `account:${pseudonym(normalizeEmail(email), await secret(), 'account')}`;
    },

    /**
     * Starts an attempt from `ip`, against `account` unless absent (a trusted device). Either it
     * must wait (`wait` seconds: 429), or it is counted and may check its password; `finish`
     * then clears the account's count on success, or makes the keys past their threshold wait.
     */
    async begin(keys: { ip: string; account?: string }, who: Actor): Promise<{ wait: number } | Attempt> {
      const now = new Date();
      const holdUntil = new Date(now.getTime() + HOLD_SECONDS * 1000);
      const forgetBefore = new Date(now.getTime() - policy.resetSeconds * 1000);
      const counting = [ipKey(keys.ip), ...(keys.account ? [keys.account] : [])].map((key) => ({ key, threshold: threshold(key) }));
      const counts = await store.reserve(counting, { now, forgetBefore, holdUntil });
      const counted = counting.flatMap(({ key }, i) => (counts[i] === null ? [] : [{ key, count: counts[i]! }]));
      const waiting = counting.find((_, i) => counts[i] === null)?.key;
      if (waiting) {
        // Not checked after all: what was counted for this attempt is taken back.
        for (const c of counted) await store.release(c.key, holdUntil);
        const until = await store.refuse(waiting);
        return { wait: until && until > now ? Math.ceil((until.getTime() - now.getTime()) / 1000) : 1 };
      }
      return {
        wait: 0,
        async finish(succeeded) {
          if (succeeded) return store.succeeded(counted[0]!.key, counted[1]?.key, holdUntil);
          for (const { key, count } of counted) {
            if (count >= threshold(key)) {
              const wait = waitSeconds(count, threshold(key), policy);
              const refused = await store.lock(key, new Date(Date.now() + wait * 1000), policy.resetSeconds);
              await audit.record(who, 'login.throttled', key, { failures: count, waitSeconds: wait, ...(refused ? { refused } : {}) });
            }
          }
        },
      };
    },

    /** Counts an event against `key` in a window of `windowSeconds` from its first event; returns the count so far. */
    hit(key: string, windowSeconds: number): Promise<number> {
      return store.hit(key, new Date(), windowSeconds);
    },

    /** Forgets counts older than the reset period that no longer wait (housekeeping). */
    purge(now = new Date()): Promise<number> {
      return store.purge(new Date(now.getTime() - policy.resetSeconds * 1000), now);
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
