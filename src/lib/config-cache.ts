import type { PrismaClient } from '../db/index.ts';

/** The ConfigVersion row that stands for every cached client, API and user. */
const ROW = 'cached-entities';
/** A process holds at most this many entries; past it, the cache starts over. */
const MAX_ENTRIES = 10_000;

export interface ConfigCache {
  /** The value for `key`, loaded on a miss. Misses (null) are not kept: a new entry is seen at once. */
  get<T>(key: string, load: () => Promise<T | null>): Promise<T | null>;
  /**
   * After a change to an entry that may be cached: this process forgets at once, every other one
   * within its refresh interval. Creations need no call: misses are never cached.
   */
  changed(): Promise<void>;
  /** Reads the shared version, forgetting everything when another process moved it (every `CONFIG_REFRESH_SECONDS`). */
  refresh(): Promise<void>;
}

/**
 * Clients, APIs and users are read on every token request and change rarely, so each process
 * keeps them in memory (sign-in, client-secret rotation overlaps and everything else that must be
 * exact read the database). Every change through the services bumps a version in the database;
 * processes poll it (`CONFIG_REFRESH_SECONDS`), so a change made anywhere — admin API, CLI,
 * another instance — is in force everywhere within that interval, and at once where it was made.
 */
export function createConfigCache(prisma: PrismaClient): ConfigCache {
  let entries = new Map<string, Promise<unknown>>();
  let seen: number | undefined;

  const forget = () => {
    entries = new Map();
  };

  async function refresh(): Promise<void> {
    const row = await prisma.configVersion.findUnique({ where: { id: ROW }, select: { version: true } });
    const version = row?.version ?? 0;
    // The first check forgets too: whatever was loaded before it may predate the version it reads.
    if (version !== seen) forget();
    seen = version;
  }

  return {
    get<T>(key: string, load: () => Promise<T | null>): Promise<T | null> {
      const hit = entries.get(key) as Promise<T | null> | undefined;
      if (hit) return hit;
      if (entries.size >= MAX_ENTRIES) forget();
      const map = entries;
      const loading = load();
      map.set(key, loading);
      // Keep only hits; a failed or empty load is asked again next time.
      loading.then(
        (value) => value === null && map.get(key) === loading && map.delete(key),
        () => map.get(key) === loading && map.delete(key),
      );
      return loading;
    },

    async changed(): Promise<void> {
      forget();
      await prisma.configVersion.upsert({ where: { id: ROW }, create: { id: ROW, version: 1 }, update: { version: { increment: 1 } } });
    },

    refresh,
  };
}
