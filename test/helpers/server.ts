import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { buildApp, type App, type BuildOptions } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createTestDatabase } from './database.ts';

/** Set in the run that keeps sessions, interactions and codes in Redis (a vitest project): its Redis URL. */
const EPHEMERAL_REDIS = process.env.TEST_EPHEMERAL_STORE === 'redis' ? process.env.TEST_REDIS_URL : undefined;

/** Deletes every key under a server's prefix. */
async function forgetRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 500 }) as AsyncIterable<string[]>) if (keys.length) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

export interface TestServer {
  issuer: string;
  databaseUrl: string;
  env: Record<string, string>;
  current: App;
  /** Stops the server and starts a new one on the same port and database. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Closes an app as a suite's teardown must: never hanging the run. Every 10 s the close is still
 * waiting, it says on stderr what is still open (so that a slow teardown names its cause) and
 * closes the HTTP connections that remain, the only thing a test's client can leave behind.
 */
async function closeApp(app: App): Promise<void> {
  const started = Date.now();
  // Where it listens (an app built but never listening, or closed already, has no address).
  const address = app.app.server.address();
  const origin = address && typeof address === 'object' ? `port ${address.port}` : 'no port';
  const watch = setInterval(() => {
    const { server } = app.app;
    server.getConnections((_err, open) => {
      const resources = process.getActiveResourcesInfo().join(', ');
      console.error(`closing the app on ${origin} for ${Math.round((Date.now() - started) / 1000)} s: ${open} connections open, resources: ${resources}; closing the connections`);
      server.closeAllConnections();
    });
  }, 10_000);
  try {
    await app.app.close();
  } finally {
    clearInterval(watch);
  }
}

/** A real server on 127.0.0.1 (its issuer's host may be `localhost`), on a fresh database of its own (SQLite or PostgreSQL, per the run). */
export async function startServer(extraEnv: Record<string, string> = {}, options: BuildOptions & { port?: number; issuerHost?: string } = {}): Promise<TestServer> {
  const database = await createTestDatabase();
  const port = options.port ?? (await freePort());
  // `localhost` for passkeys: browsers refuse WebAuthn on an IP address.
  const issuer = `http://${options.issuerHost ?? '127.0.0.1'}:${port}`;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: issuer,
    DATABASE_URL: database.url,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Every browser of a test suite is on 127.0.0.1: the per-address limit on sign-ins started
    // is tested on its own (test/security/resources.test.ts).
    INTERACTIONS_PER_MINUTE: '100000',
    // Suites age rows in the database and count what a purge deletes: the app's own periodic
    // purge is tested on its own (test/housekeeping.test.ts).
    PURGE_INTERVAL_SECONDS: '0',
    // The run with short-lived state in Redis (TEST_EPHEMERAL_STORE=redis): each server under keys
    // of its own; a suite that names EPHEMERAL_STORE itself chooses for its servers.
    ...(EPHEMERAL_REDIS && extraEnv.EPHEMERAL_STORE === undefined ? { REDIS_URL: EPHEMERAL_REDIS, REDIS_PREFIX: `test-${randomUUID()}:`, EPHEMERAL_STORE: 'redis' } : {}),
    ...extraEnv,
  };
  const config = loadConfig(env);

  async function start(): Promise<App> {
    const app = await buildApp(config, options);
    await app.app.listen({ port, host: '127.0.0.1' });
    return app;
  }

  const server: TestServer = {
    issuer,
    databaseUrl: env.DATABASE_URL!,
    env,
    current: await start(),
    async restart() {
      await closeApp(server.current);
      server.current = await start();
    },
    async close() {
      await closeApp(server.current);
      await database.drop();
      if (env.EPHEMERAL_STORE === 'redis') await forgetRedisKeys(env.REDIS_URL!, env.REDIS_PREFIX!);
    },
  };
  return server;
}

export interface Instance {
  url: string;
  app: App;
  close(): Promise<void>;
}

/** Another instance of the same service: same configuration and database, another port. */
export async function startInstance(env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const app = await buildApp(loadConfig({ ...env, PORT: String(port) }));
  await app.app.listen({ port, host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${port}`, app, close: () => closeApp(app) };
}
