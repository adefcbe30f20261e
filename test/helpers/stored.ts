import { Redis } from 'ioredis';
import { EPHEMERAL_MODELS } from '../../src/artifacts/store.ts';
import type { TestServer } from './server.ts';

/** An artifact as a test looks at it, wherever it is kept. */
export interface StoredArtifact {
  model: string;
  id: string;
  accountId: string | null;
  payload: string;
  consumed: boolean;
}

/**
 * What a server under test keeps, read where its configuration keeps it: artifacts in the
 * database, or the short-lived ones in Redis (EPHEMERAL_STORE=redis, src/artifacts/redis.ts);
 * sign-in throttling counts in the database, or in Redis (REDIS_URL, src/users/throttle.ts).
 * For tests that check what a request stored, used up or left behind.
 */
export function stored(server: TestServer) {
  const prisma = () => server.current.db.prisma;
  const { REDIS_URL: url, REDIS_PREFIX: prefix = 'idp:', EPHEMERAL_STORE: store } = server.env;
  const artifactPrefix = `${prefix}a:`;
  const inRedis = (model: string) => store === 'redis' && EPHEMERAL_MODELS.has(model);

  async function withRedis<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = new Redis(url!);
    try {
      return await fn(redis);
    } finally {
      redis.disconnect();
    }
  }

  async function scan(redis: Redis, match: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const batch of redis.scanStream({ match, count: 500 }) as AsyncIterable<string[]>) keys.push(...batch);
    return keys;
  }

  async function redisArtifacts(models: string[]): Promise<StoredArtifact[]> {
    if (!models.length) return [];
    return withRedis(async (redis) => {
      const found: StoredArtifact[] = [];
      for (const model of models) {
        for (const key of await scan(redis, `${artifactPrefix}${model}:*`)) {
          const h = await redis.hgetall(key);
          if (h.p !== undefined) found.push({ model, id: key.slice(`${artifactPrefix}${model}:`.length), accountId: h.a || null, payload: h.p, consumed: Boolean(h.c) });
        }
      }
      return found;
    });
  }

  /** Every artifact of `model` (or of every kind). */
  async function artifacts(model?: string): Promise<StoredArtifact[]> {
    const rows = await prisma().oidcPayload.findMany({ where: model ? { model } : {}, select: { model: true, id: true, accountId: true, payload: true, consumedAt: true } });
    const inDatabase = rows.map((r) => ({ model: r.model, id: r.id, accountId: r.accountId, payload: r.payload, consumed: r.consumedAt !== null }));
    return [...inDatabase, ...(await redisArtifacts((model ? [model] : [...EPHEMERAL_MODELS]).filter(inRedis)))];
  }

  const throttleKey = (key: string) => `${prefix}throttle:${key}`;

  return {
    artifacts,

    async count(model: string, where: { accountId?: string } = {}): Promise<number> {
      return (await artifacts(model)).filter((a) => where.accountId === undefined || a.accountId === where.accountId).length;
    },

    /** Of every kind, for one account. */
    async countOf(accountId: string): Promise<number> {
      return (await artifacts()).filter((a) => a.accountId === accountId).length;
    },

    async find(model: string, id: string): Promise<StoredArtifact | null> {
      return (await artifacts(model)).find((a) => a.id === id) ?? null;
    },

    /** How many of each kind, and how many are used up: before and after a refused request, nothing changed. */
    async counts(): Promise<Record<string, number>> {
      const all = await artifacts();
      const byModel: Record<string, number> = {};
      for (const a of all) byModel[a.model] = (byModel[a.model] ?? 0) + 1;
      return { ...byModel, consumed: all.filter((a) => a.consumed).length };
    },

    async destroy(model: string, id: string): Promise<void> {
      if (!inRedis(model)) await prisma().oidcPayload.deleteMany({ where: { model, id } });
      else await withRedis((redis) => redis.del(`${artifactPrefix}${model}:${id}`));
    },

    /** Every artifact of `model` expires (a second ago). */
    async expire(model: string): Promise<void> {
      const past = new Date(Date.now() - 1000);
      if (!inRedis(model)) await prisma().oidcPayload.updateMany({ where: { model }, data: { expiresAt: past } });
      else await withRedis(async (redis) => Promise.all((await scan(redis, `${artifactPrefix}${model}:*`)).map((key) => redis.hset(key, 'e', String(past.getTime())))));
    },

    /** The throttling keys that start with `start` (ip:, account:, verify-mail:…). */
    async throttleKeys(start: string): Promise<string[]> {
      if (!url) return (await prisma().loginThrottle.findMany({ where: { key: { startsWith: start } }, select: { key: true } })).map((r) => r.key);
      return withRedis(async (redis) => (await scan(redis, `${throttleKey(start)}*`)).map((k) => k.slice(throttleKey('').length)));
    },

    /** The failures counted against a throttling key (undefined: none kept). */
    async throttleFailures(key: string): Promise<number | undefined> {
      if (!url) return (await prisma().loginThrottle.findUnique({ where: { key } }))?.failures;
      const failures = await withRedis((redis) => redis.hget(throttleKey(key), 'failures'));
      return failures === null ? undefined : Number(failures);
    },

    /** Forgets the throttling counts whose keys start with `start` (time passing, for a test). */
    async forgetThrottle(start: string): Promise<void> {
      if (!url) await prisma().loginThrottle.deleteMany({ where: { key: { startsWith: start } } });
      else await withRedis(async (redis) => Promise.all((await scan(redis, `${throttleKey(start)}*`)).map((k) => redis.del(k))));
    },

    /** Everything the throttle keeps, as text (to search it for what must not be there). */
    async throttleText(): Promise<string> {
      if (!url) return JSON.stringify(await prisma().loginThrottle.findMany());
      return withRedis(async (redis) => {
        const keys = await scan(redis, `${throttleKey('')}*`);
        return JSON.stringify(await Promise.all(keys.map(async (k) => [k, await redis.type(k) === 'hash' ? await redis.hgetall(k) : await redis.get(k)])));
      });
    },
  };
}
