import { buildApp } from './app.ts';
import { ConfigError, loadConfig, loadDotEnv } from './config.ts';
import { KeyDecryptionError } from './keys/service.ts';
import { DatabaseUrlError } from './db/index.ts';
import { MigrationError } from './db/migrate.ts';

const STARTUP_ERRORS = [ConfigError, KeyDecryptionError, DatabaseUrlError, MigrationError];

async function main() {
  loadDotEnv();
  const config = loadConfig();
  const { app } = await buildApp(config);
  const address = await app.listen({ port: config.port, host: config.host });
  app.log.info({ issuer: config.issuer, address }, 'identity provider ready');

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    app.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  if (STARTUP_ERRORS.some((E) => err instanceof E)) {
    console.error(`idp: ${(err as Error).message}`);
  } else {
    console.error('idp: failed to start:', err);
  }
  process.exit(1);
});
