/**
 * Ours on PostgreSQL with the short-lived state in Redis (EPHEMERAL_STORE=redis): each server
 * gets a key prefix of its own on the Redis of BENCH_REDIS_URL, whose keys are deleted at the
 * end (and on failure and on Ctrl-C), as the benchmark's databases are dropped.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { DatabaseKind } from './db.ts';

/** Ours' subjects: a database, or PostgreSQL with the short-lived state in Redis. */
export type OursKind = DatabaseKind | 'postgresqlRedis';

/** The subject's part of a server's name: `ours-<name>`. */
export const OURS_NAMES: Record<OursKind, string> = { sqlite: 'sqlite', postgresql: 'postgresql', postgresqlRedis: 'postgresql-redis' };

/** The subjects of the protocol scenarios and the sign-in trace, by what is configured. */
export function oursKinds(postgresUrl: string | undefined, redisUrl: string | undefined): OursKind[] {
  if (redisUrl && !postgresUrl) throw new Error('BENCH_REDIS_URL needs BENCH_DATABASE_URL (ours with Redis is measured on PostgreSQL)');
  return postgresUrl ? (redisUrl ? ['sqlite', 'postgresql', 'postgresqlRedis'] : ['sqlite', 'postgresql']) : ['sqlite'];
}

export interface RedisNamespace {
  url: string;
  prefix: string;
  /** The server's environment for it: REDIS_URL, REDIS_PREFIX, EPHEMERAL_STORE=redis. */
  env: Record<string, string>;
  /** Deletes every key under the prefix; the number deleted. */
  drop(): Promise<number>;
}

const created = new Set<RedisNamespace>();

async function withRedis<T>(url: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** A glob pattern matching exactly the keys that start with `prefix`. */
const under = (prefix: string) => `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;

/** A fresh prefix `bench-<random>:` on the Redis of `url` (which must answer). */
export async function createRedisNamespace(url: string): Promise<RedisNamespace> {
  await withRedis(url, (redis) => redis.ping());
  const prefix = `bench-${randomBytes(6).toString('hex')}:`;
  const ns: RedisNamespace = {
    url,
    prefix,
    env: { REDIS_URL: url, REDIS_PREFIX: prefix, EPHEMERAL_STORE: 'redis' },
    async drop() {
      created.delete(ns);
      return withRedis(url, async (redis) => {
        let deleted = 0;
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', under(prefix), 'COUNT', 1000);
          cursor = next;
          if (keys.length) deleted += await redis.del(...keys);
        } while (cursor !== '0');
        return deleted;
      });
    },
  };
  created.add(ns);
  return ns;
}

/** Deletes the keys of every prefix this run created and has not dropped yet. */
export async function dropAllRedisNamespaces(): Promise<void> {
  for (const ns of [...created]) await ns.drop().catch((err: unknown) => console.error(`could not delete the Redis keys under ${ns.prefix}:`, err));
}
