import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '../db/index.ts';
import { isUniqueViolation } from '../lib/errors.ts';

/**
 * The Lease table's owner. A lease is a named row that one instance holds until it expires, for
 * work that must run once across instances (src/background.ts): each process is one holder.
 */
export function createLeases(prisma: PrismaClient) {
  const holder = randomUUID();
  return {
    /** Takes (or renews) the named lease for `seconds`; false while another instance holds it. */
    async acquire(name: string, seconds: number): Promise<boolean> {
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
    },
  };
}

export type Leases = ReturnType<typeof createLeases>;
