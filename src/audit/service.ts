import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Logger } from 'pino';
import type { PrismaClient } from '../db/index.ts';

/** Who is acting, and from where. */
export interface Actor {
  actor: string;
  ip?: string | null;
}

export const cliActor = (): Actor => {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): keep "unknown".
  }
  return { actor: `cli:${user}@${hostname()}` };
};

const DAY_MS = 24 * 3600 * 1000;

export interface AuditQuery {
  action?: string;
  actor?: string;
  target?: string;
  since?: Date;
  until?: Date;
  limit: number;
  offset: number;
}

export interface AuditEventView {
  id: string;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  ip: string | null;
  details: Record<string, unknown> | null;
}

export function createAuditService(prisma: PrismaClient, log?: Logger) {
  return {
    /** Records an event in the database and in the logs. Details must never hold a secret. */
    async record(who: Actor, action: string, target: string | null, details?: Record<string, unknown>): Promise<void> {
      await prisma.auditEvent.create({
        data: { id: randomUUID(), actor: who.actor, ip: who.ip ?? null, action, target, details: details ? JSON.stringify(details) : null },
      });
      log?.info({ audit: { actor: who.actor, ip: who.ip, action, target, details } }, `audit: ${action}`);
    },

    /**
     * After an account was deleted: its events stay, under its id (a random identifier that now
     * names nobody), without the email addresses some of them recorded. Returns how many changed.
     */
    async pseudonymize(userId: string): Promise<number> {
      const rows = await prisma.auditEvent.findMany({
        where: { OR: [{ target: userId }, { actor: `user:${userId}` }], details: { contains: '"email"' } },
        select: { id: true, details: true },
      });
      for (const row of rows) {
        const { email: _email, ...details } = JSON.parse(row.details!) as Record<string, unknown>;
        await prisma.auditEvent.update({ where: { id: row.id }, data: { details: JSON.stringify(details) } });
      }
      return rows.length;
    },

    /** Deletes events older than `before` (retention); returns how many. */
    async purge(before: Date): Promise<number> {
      return (await prisma.auditEvent.deleteMany({ where: { at: { lt: before } } })).count;
    },

    /**
     * How many events of each action happened on each of the last `days` UTC days (today last):
     * one indexed count per day and action, the same on every database.
     */
    async countsByDay(actions: readonly string[], days: number, now = new Date()): Promise<{ date: string; counts: Record<string, number> }[]> {
      const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
      const starts = Array.from({ length: days }, (_, i) => new Date(today - (days - 1 - i) * DAY_MS));
      return Promise.all(
        starts.map(async (start) => {
          const at = { gte: start, lt: new Date(start.getTime() + DAY_MS) };
          const counts = await Promise.all(actions.map((action) => prisma.auditEvent.count({ where: { action, at } })));
          return { date: start.toISOString().slice(0, 10), counts: Object.fromEntries(actions.map((a, i) => [a, counts[i]!])) };
        }),
      );
    },

    async list(q: AuditQuery): Promise<{ items: AuditEventView[]; total: number }> {
      const where = {
        ...(q.action ? { action: q.action } : {}),
        ...(q.actor ? { actor: q.actor } : {}),
        ...(q.target ? { target: q.target } : {}),
        ...(q.since || q.until ? { at: { ...(q.since ? { gte: q.since } : {}), ...(q.until ? { lt: q.until } : {}) } } : {}),
      };
      const [rows, total] = await Promise.all([
        prisma.auditEvent.findMany({ where, orderBy: [{ at: 'desc' }, { id: 'desc' }], take: q.limit, skip: q.offset }),
        prisma.auditEvent.count({ where }),
      ]);
      return { items: rows.map((r) => ({ ...r, details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null })), total };
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
