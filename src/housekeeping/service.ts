export interface PurgeResult {
  artifacts: number;
  grants: number;
  auditEvents: number;
  /** Sign-in throttling counts past their reset period. */
  throttles: number;
  /** Outbox messages: sent ones past MAIL_RETENTION_DAYS, failed ones past 90 days. */
  mail: number;
  /** Emailed single-use tokens used or expired more than a week ago. */
  accountTokens: number;
  /** Back-channel logout notices delivered or given up more than a week ago. */
  logoutDeliveries: number;
}

/**
 * Keeps tables bounded: expired protocol artifacts and grants, audit events past their
 * retention, throttling counts past their reset period, old outbox messages and spent emailed
 * tokens. Used codes and refresh tokens stay until they expire, so that a replay is still
 * recognised (and revokes the grant) until then; a spent emailed token stays a week, so that a
 * link followed again says it was used rather than unknown. Each table's owner deletes its own
 * rows; the app's background work (src/background.ts) runs this on one instance at a time, and
 * `idp purge` on demand.
 */
export interface Purgeable {
  artifacts: { purge(now: Date): Promise<{ artifacts: number; grants: number }> };
  audit: { purge(before: Date): Promise<number> };
  throttle: { purge(now: Date): Promise<number> };
  mail: { purge(cutoffs: { sentBefore: Date; failedBefore: Date }): Promise<number> };
  accountTokens: { purge(before: Date): Promise<number> };
  logouts?: { purge(before: Date): Promise<number> };
}

const DAY_MS = 24 * 3600 * 1000;
/** How long a failed message stays for an admin to see and retry. */
const FAILED_MAIL_RETENTION_DAYS = 90;
/** How long a used or expired emailed token is kept. */
const SPENT_TOKEN_RETENTION_DAYS = 7;

export function createHousekeeping(tables: Purgeable, opts: { auditRetentionDays: number; mailRetentionDays: number }) {
  return {
    async purge(now = new Date()): Promise<PurgeResult> {
      const daysAgo = (days: number) => new Date(now.getTime() - days * DAY_MS);
      const [{ artifacts, grants }, auditEvents, throttles, mail, accountTokens, logoutDeliveries] = await Promise.all([
        tables.artifacts.purge(now),
        tables.audit.purge(daysAgo(opts.auditRetentionDays)),
        tables.throttle.purge(now),
        tables.mail.purge({ sentBefore: daysAgo(opts.mailRetentionDays), failedBefore: daysAgo(FAILED_MAIL_RETENTION_DAYS) }),
        tables.accountTokens.purge(daysAgo(SPENT_TOKEN_RETENTION_DAYS)),
        tables.logouts?.purge(daysAgo(SPENT_TOKEN_RETENTION_DAYS)) ?? 0,
      ]);
      return { artifacts, grants, auditEvents, throttles, mail, accountTokens, logoutDeliveries };
    },
  };
}
