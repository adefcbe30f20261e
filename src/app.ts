import { readFileSync } from 'node:fs';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import type { DestinationStream, Logger } from 'pino';
import { createBackground, type Background } from './background.ts';
import type { Config } from './config.ts';
import { availabilityLog, openDatabase, type Database } from './db/index.ts';
import { migrate, pendingMigrations } from './db/migrate.ts';
import { badRequest } from './lib/errors.ts';
import { cookieSecrets } from './lib/server-secrets.ts';
import { createLogger } from './logger.ts';
import { createProvider } from './oidc/provider.ts';
import { createKeyring, type Keyring, type OidcHolder } from './oidc/keyring.ts';
import { sendJsonError } from './http/errors.ts';
import { interactionRoutes } from './http/interactions/index.ts';
import { providerMount } from './http/provider-mount.ts';
import { adminApi } from './http/admin/index.ts';
import { createViews } from './http/views.ts';
import { providerPages } from './http/provider-pages.ts';
import { siteRoutes } from './http/site.ts';
import { accountRoutes } from './http/account/index.ts';
import { consoleRoutes } from './http/console.ts';
import { createServices, providerPorts, type Services } from './services.ts';
import { healthRoutes, type Lifecycle } from './http/health.ts';
import { createMetrics, type Metrics } from './metrics.ts';

export interface App {
  app: FastifyInstance;
  /** The provider in service (rebuilt when signing keys change) and its keys. */
  oidc: OidcHolder;
  keyring: Keyring;
  /** The periodic work: configuration and key refresh, purge (src/background.ts). */
  background: Background;
  db: Database;
  services: Services;
  metrics: Metrics;
  lifecycle: Lifecycle;
}

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function containsNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (depth > 20 || !value || typeof value !== 'object') return false;
  return Object.entries(value).some(([k, v]) => k.includes('\u0000') || containsNul(v, depth + 1));
}

export interface BuildOptions {
  /** Where log lines go (standard output when absent). */
  logDestination?: DestinationStream;
}

/** Migrations applied, the admin API registered, the cookie keys at hand: what every start needs. */
async function prepare(db: Database, services: Services, config: Config, log: Logger): Promise<readonly string[]> {
  const applied = await migrate(db);
  if (applied.length) log.info({ migrations: applied }, 'applied database migrations');
  await services.resources.ensureAdminApi();
  await services.roles.ensureBuiltIns();
  // The account page's own client, named in the default language (the sign-in page shows its name).
  const t = services.templates.catalogue.translator(config.defaultLocale);
  await services.clients.ensureAccountClient(config.issuer, t('account.clientName'));
  await services.clients.ensureConsoleClient(config.issuer, t('console.clientName'));
  await services.outbox.warm();
  const upgraded = await services.clients.upgradeLegacyRegistrations();
  if (upgraded) log.info({ clients: upgraded }, 'client registrations upgraded: API scopes are now allowed per API');
  return cookieSecrets(config, db.prisma);
}

/**
 * Brings the database to where every instance can start, signing keys included. Run once before
 * starting several processes at the same time.
 */
export async function prepareDatabase(config: Config, log: Logger): Promise<void> {
  const db = await openDatabase(config.databaseUrl);
  try {
    const services = createServices(db, config, log);
    await prepare(db, services, config, log);
    await services.keys.loadPrivateJwks();
  } finally {
    await db.close();
  }
}

/**
 * Wires database → services → provider → routes → background work. Never listens: server.ts and
 * the tests do; the background work starts when the app is ready and stops when it closes.
 */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<App> {
  const log = createLogger(config.logLevel, options.logDestination);
  const metrics = createMetrics();
  const lifecycle: Lifecycle = { closing: false };
  const availability = availabilityLog(log);
  const db = await openDatabase(config.databaseUrl, (model, operation, seconds, error) => {
    metrics.dbQueries.observe({ model, operation }, seconds);
    availability(error);
  });
  try {
    const services = createServices(db, config, log);
    const secrets = await prepare(db, services, config, log);
    const views = createViews(services.templates, config);
    const keyring = await createKeyring({
      keys: services.keys,
      leases: services.leases,
      config,
      log,
      build: (jwks) => createProvider({ config, jwks, cookieSecrets: secrets, ports: providerPorts(services), pages: providerPages(views), log, metrics }),
    });
    const oidc = keyring.holder;
    // Logout tokens are signed with the keys the provider signs ID tokens with, as they change.
    services.logouts.useKeys(() => oidc.jwks);

    const { trustProxy, http } = config;
    const requestMs = http.requestSeconds * 1000;
    const app = Fastify({
      loggerInstance: log as FastifyBaseLogger,
      // The last N hops (the proxies in front), or the hops added by the listed proxies.
      trustProxy: typeof trustProxy === 'number' ? (_address: string, hop: number) => hop < trustProxy : trustProxy && [...trustProxy],
      bodyLimit: 64 * 1024,
      routerOptions: { maxParamLength: 200 },
      // A request (headers and body) must arrive whole within the timeout, however slowly it
      // trickles in; Node checks open requests at the interval given here.
      requestTimeout: requestMs,
      keepAliveTimeout: http.keepAliveSeconds * 1000,
      http: { headersTimeout: Math.min(requestMs, 60_000), connectionsCheckingInterval: Math.min(Math.max(requestMs / 4, 250), 30_000) },
    });
    app.server.maxHeadersCount = 100;
    app.server.maxConnections = http.maxConnections;
    const background = createBackground(
      [
        { name: 'config-refresh', everySeconds: config.configRefreshSeconds, firstAfterSeconds: 0, run: () => services.configCache.refresh() },
        { name: 'key-refresh', everySeconds: config.keys.refreshSeconds, run: () => keyring.refresh() },
        // Every instance delivers due mail; each message is held by one of them while it is sent.
        { name: 'mail', everySeconds: config.mail.pollSeconds, firstAfterSeconds: 0, run: () => services.outbox.deliverDue() },
        // Every instance delivers due back-channel logout notices, each held by one of them.
        { name: 'backchannel-logout', everySeconds: config.backchannelLogout.pollSeconds, firstAfterSeconds: 0, run: () => services.logouts.deliverDue() },
        ...(config.purgeIntervalSeconds
          ? [{ name: 'purge', everySeconds: config.purgeIntervalSeconds, firstAfterSeconds: Math.min(5, config.purgeIntervalSeconds), once: true, run: async () => log.info({ purged: await services.housekeeping.purge() }, 'purged expired artifacts') }]
          : []),
      ],
      { leases: services.leases, log },
    );
    app.addHook('onReady', async () => {
      background.start();
      // A message written by a request is delivered at once, not at the next poll.
      services.outbox.onWake(() => void background.runNow('mail').catch(() => {}));
      services.logouts.onWake(() => void background.runNow('backchannel-logout').catch(() => {}));
    });
    app.addHook('onClose', async () => {
      await background.stop();
      services.outbox.close();
      await services.redis?.close();
      await db.close();
    });
    // No NUL characters in any parsed input: nothing legitimate contains them, and PostgreSQL
    // refuses them in text (which would otherwise surface as a 500).
    app.addHook('preHandler', async (req) => {
      if (containsNul(req.query) || containsNul(req.params) || containsNul(req.body)) throw badRequest('NUL characters are not allowed in the request');
    });
    // Timed from the raw response, so that responses the provider writes itself count too.
    app.addHook('onRequest', async (req, reply) => {
      const start = performance.now();
      reply.raw.once('finish', () => {
        const route = req.routeOptions.url ?? 'unmatched';
        metrics.httpRequests.observe({ method: req.method, route, status_code: String(reply.raw.statusCode) }, (performance.now() - start) / 1000);
      });
    });

    app.setErrorHandler(sendJsonError);

    await app.register(cookie, { secret: [...secrets] });
    await app.register(providerMount, { oidc, clients: services.clients, config, views });
    await app.register(interactionRoutes, { oidc, services, views, config, csrfKey: secrets[0]!, metrics });
    await app.register(adminApi, { services, issuer: config.issuer, jwks: () => oidc.jwks, version: PACKAGE_VERSION, pageHeaders: views.headers, settings: { config, locales: views.catalogue.locales } });
    await app.register(accountRoutes, { oidc, services, views, config, csrfKey: secrets[0]! });
    await app.register(consoleRoutes, { views, issuer: config.issuer });

    // On the root instance: its not-found handler answers every unknown path.
    await siteRoutes(app, { views, issuer: config.issuer, secure: config.secure });
    const database = { ping: () => db.ping(), pendingMigrations: () => pendingMigrations(db) };
    await app.register(healthRoutes, { database, redis: services.redis, metrics, lifecycle, keysLoaded: () => oidc.jwks.length > 0, metricsToken: config.metricsToken, production: config.env === 'production' });

    return { app, oidc, keyring, background, db, services, metrics, lifecycle };
  } catch (err) {
    await db.close();
    throw err;
  }
}
