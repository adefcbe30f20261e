import type { Redis } from 'ioredis';

/** Redis could not be reached or did not answer: a request that needs it is answered 503 (src/lib/db-errors.ts). */
class RedisUnavailable extends Error {
  readonly code = 'REDIS_UNAVAILABLE';

  constructor(cause: unknown) {
    super('Redis is unavailable', { cause });
    this.name = 'RedisUnavailable';
  }
}

/**
 * One Redis connection per process, shared by everything kept there (the login throttle's
 * counts, and with EPHEMERAL_STORE=redis the short-lived protocol state). Loaded and connected
 * on first use, so that a process that never needs it (the CLI) never holds it. Commands fail at
 * once while Redis is away instead of queueing (no silent waits at a sign-in); the client keeps
 * reconnecting in the background, so that service comes back without a restart. `observe` is
 * told of every command's outcome (the availability log).
 */
export function connectRedis(settings: { url: string; prefix: string }, observe: (error?: unknown) => void = () => {}) {
  let client: Promise<Redis> | undefined;
  const connect = () =>
    (client ??= import('ioredis').then(async ({ Redis }) => {
      const redis = new Redis(settings.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: (times) => Math.min(times * 100, 1000) });
      // Reported through the commands that fail; without a listener ioredis prints every attempt.
      redis.on('error', () => {});
      // The first connection may fail: the client goes on retrying in the background.
      await redis.connect().catch(() => {});
      return redis;
    }));

  return {
    prefix: settings.prefix,

    /** Runs commands; a failure to reach Redis becomes RedisUnavailable (a script's own error stays what it is). */
    async run<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
      const redis = await connect();
      try {
        const result = await fn(redis);
        observe();
        return result;
      } catch (err) {
        if ((err as Error | undefined)?.name === 'ReplyError') throw err;
        const unavailable = new RedisUnavailable(err);
        observe(unavailable);
        throw unavailable;
      }
    },

    async ping(): Promise<void> {
      await this.run((redis) => redis.ping());
    },

    async close(): Promise<void> {
      (await client?.catch(() => undefined))?.disconnect();
    },
  };
}

export type RedisConnection = ReturnType<typeof connectRedis>;
