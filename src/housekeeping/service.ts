import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { PrismaClient } from '../db/index.ts';
import { isUniqueViolation } from '../lib/errors.ts';

export interface PurgeResult {
  artifacts: number;
  grants: number;
  auditEvents: number;
  /** Sign-in throttling counts past their reset period. */
  throttles: number;
}

/**
 * Keeps tables bounded: expired protocol artifacts and grants, audit events past their
 * retention, and throttling counts past their reset period. Used codes and refresh tokens stay
 * until they expire, so that a replay is still recognised (and revokes the grant) until then.
 */
export interface Purgeable {
  artifacts: { purge(now: Date): Promise<{ artifacts: number; grants: number }> };
  audit: { purge(before: Date): Promise<number> };
  throttle: { purge(now: Date): Promise<number> };
}

export function createHousekeeping(prisma: PrismaClient, tables: Purgeable, opts: { auditRetentionDays: number; log?: Logger }) {
  const holder = randomUUID();

  /** Takes (or renews) the named lease for `seconds`; false when another instance holds it. */
  async function acquire(name: string, seconds: number): Promise<boolean> {
    const now = new Date();
    const expiresAt = new Date(now.getTime() + seconds * 1000);
    const { count } = await prisma.lease.updateMany({ where: { name, OR: [{ expiresAt: { lt: now } }, { holder }] }, data: { holder, expiresAt } });
    if (count === 1) return true;
    try {
      await prisma.lease.create({ data: { name, holder, expiresAt } });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async function purge(now = new Date()): Promise<PurgeResult> {
    const auditCutoff = new Date(now.getTime() - opts.auditRetentionDays * 24 * 3600 * 1000);
    const [{ artifacts, grants }, auditEvents, throttles] = await Promise.all([tables.artifacts.purge(now), tables.audit.purge(auditCutoff), tables.throttle.purge(now)]);
    return { artifacts, grants, auditEvents, throttles };
  }

  return {
    purge,
    acquire,

    /** Purges if this instance wins the lease for this interval; null when another instance did. */
    async purgeOnce(intervalSeconds: number): Promise<PurgeResult | null> {
      if (!(await acquire('purge', intervalSeconds))) return null;
      const result = await purge();
      opts.log?.info({ purged: result }, 'purged expired artifacts');
      return result;
    },

    /** Runs the purge every interval, on at most one instance at a time; returns a stop function. */
    schedule(intervalSeconds: number): () => void {
      const run = () => this.purgeOnce(intervalSeconds).catch((err: unknown) => opts.log?.warn({ err }, 'purge failed; will retry'));
      const first = setTimeout(run, 5_000);
      const timer = setInterval(run, intervalSeconds * 1000);
      first.unref();
      timer.unref();
      return () => {
        clearTimeout(first);
        clearInterval(timer);
      };
    },
  };
}

export type Housekeeping = ReturnType<typeof createHousekeeping>;
