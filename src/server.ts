import cluster from 'node:cluster';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildApp, prepareDatabase } from './app.ts';
import { loadConfig, loadDotEnv, type Config } from './config.ts';
import { isExposed, StartupError } from './lib/errors.ts';
import { createLogger } from './logger.ts';

/** Why the server could not listen, in one line that names the setting. */
function listenFailure(err: unknown, config: Config): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE') return new StartupError('port_in_use', `PORT: ${config.port} on ${config.host} is already in use by another process; stop it, or set another PORT`);
  if (code === 'EACCES') return new StartupError('port_not_allowed', `PORT: this process may not listen on port ${config.port} (ports below 1024 need privileges); set another PORT`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new StartupError('host_not_here', `HOST: ${config.host} is not an address of this machine; set HOST to one (127.0.0.1, 0.0.0.0)`);
  return err;
}

/** One serving process: the only place that listens. */
async function serve(config: Config) {
  const { app, lifecycle } = await buildApp(config);
  const address = await app.listen({ port: config.port, host: config.host }).catch(async (err: unknown) => {
    await app.close();
    throw listenFailure(err, config);
  });
  app.log.info({ issuer: config.issuer, address }, 'identity provider ready');

  // Graceful shutdown: readiness fails first (load balancers stop sending traffic during the
  // drain period), then the server stops accepting, in-flight requests finish within the
  // timeout, the background work stops, and the database connections close.
  const shutdown = async (signal: string) => {
    if (lifecycle.closing) return;
    lifecycle.closing = true;
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

/**
 * WORKERS > 1: this process prepares the database once (migrations, keys, secrets), then runs
 * that many serving processes sharing the port, restarts any that dies, and passes SIGTERM on.
 */
async function supervise(config: Config) {
  const log = createLogger(config.logLevel);
  await prepareDatabase(config, log);
  let stopping = false;
  const fork = () => cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    log.warn({ pid: worker.process.pid, code, signal }, 'worker died; starting another');
    setTimeout(fork, 500).unref();
  });
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    log.info({ signal, workers: config.workers }, 'stopping workers');
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  for (let i = 0; i < config.workers; i++) fork();
}

async function main() {
  loadDotEnv();
  const config = loadConfig();
  if (cluster.isPrimary && config.workers > 1) return supervise(config);
  return serve(config);
}

main().catch((err: unknown) => {
  if (isExposed(err)) {
    console.error(`idp: ${(err as Error).message}`);
  } else {
    console.error('idp: failed to start:', err);
  }
  process.exit(1);
});
