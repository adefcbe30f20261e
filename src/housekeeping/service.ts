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
 * Each table's owner deletes its own rows; the app's background work (src/background.ts) runs
 * this on one instance at a time, and `idp purge` on demand.
 */
export interface Purgeable {
  artifacts: { purge(now: Date): Promise<{ artifacts: number; grants: number }> };
  audit: { purge(before: Date): Promise<number> };
  throttle: { purge(now: Date): Promise<number> };
}

export function createHousekeeping(tables: Purgeable, opts: { auditRetentionDays: number }) {
  return {
    async purge(now = new Date()): Promise<PurgeResult> {
      const auditCutoff = new Date(now.getTime() - opts.auditRetentionDays * 24 * 3600 * 1000);
      const [{ artifacts, grants }, auditEvents, throttles] = await Promise.all([tables.artifacts.purge(now), tables.audit.purge(auditCutoff), tables.throttle.purge(now)]);
      return { artifacts, grants, auditEvents, throttles };
    },
  };
}
