import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp } from './app.ts';
import { ConfigError, loadConfig, loadDotEnv } from './config.ts';
import { KeyDecryptionError } from './keys/service.ts';
import { DatabaseUrlError } from './db/index.ts';
import { MigrationError } from './db/migrate.ts';

const STARTUP_ERRORS = [ConfigError, KeyDecryptionError, DatabaseUrlError, MigrationError];

async function main() {
  loadDotEnv();
  const config = loadConfig();
  const { app, lifecycle, services } = await buildApp(config);
  const address = await app.listen({ port: config.port, host: config.host });
  app.log.info({ issuer: config.issuer, address }, 'identity provider ready');
  const stopPurge = config.purgeIntervalSeconds ? services.housekeeping.schedule(config.purgeIntervalSeconds) : () => {};

  // Graceful shutdown: readiness fails first (load balancers stop sending traffic during the
  // drain period), then the server stops accepting, in-flight requests finish within the
  // timeout, and the database connections close.
  const shutdown = async (signal: string) => {
    if (lifecycle.closing) return;
    lifecycle.closing = true;
    stopPurge();
    app.log.info({ signal, drainSeconds: config.shutdown.drainSeconds }, 'shutting down');
    setTimeout(() => {
      app.log.error('in-flight requests did not finish in time; exiting');
      process.exit(1);
    }, (config.shutdown.drainSeconds + config.shutdown.timeoutSeconds) * 1000).unref();
    await sleep(config.shutdown.drainSeconds * 1000);
    await app.close();
    app.log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  if (STARTUP_ERRORS.some((E) => err instanceof E)) {
    console.error(`idp: ${(err as Error).message}`);
  } else {
    console.error('idp: failed to start:', err);
  }
  process.exit(1);
});
