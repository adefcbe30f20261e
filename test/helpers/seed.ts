import { cliActor } from '../../src/audit/service.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/index.ts';
import { AppError } from '../../src/lib/errors.ts';
import { createServices, type Services } from '../../src/services.ts';

/** Runs `fn` with the services on the database of a server under test (its environment), in this process. */
export async function withServices<T>(env: Record<string, string>, fn: (services: Services) => Promise<T>): Promise<T> {
  const config = loadConfig(env);
  const db = await openDatabase(config.databaseUrl);
  const services = createServices(db, config);
  try {
    await services.outbox.warm();
    return await fn(services);
  } finally {
    await services.redis?.close();
    await db.close();
  }
}

/**
 * A user, an API and a client for it, created through the services as an admin would (the CLI's
 * own tests go through the `idp` command: test/cli.test.ts, test/cli-admin.test.ts).
 */
export async function seed(env: Record<string, string>, opts: { redirectUri: string; public?: boolean }) {
  const email = `user-${Math.random().toString(36).slice(2)}@example.com`;
  const password = 'a long enough password';
  const who = cliActor();
  return withServices(env, async ({ users, resources, clients }) => {
    const user = await users.create({ email, password, name: 'Test User' }, who);
    await resources.create({ identifier: 'https://api.example.com', scopes: ['read', 'write'] }, who).catch((err: unknown) => {
      if (!(err instanceof AppError && err.status === 409)) throw err;
    });
    const { client, clientSecret } = await clients.create(
      {
        name: 'Test App',
        redirectUris: [opts.redirectUri],
        postLogoutRedirectUris: [`${new URL(opts.redirectUri).origin}/logged-out`],
        grantTypes: ['authorization_code', 'refresh_token'],
        scope: 'openid profile email offline_access',
        apis: { 'https://api.example.com': ['read', 'write'] },
        public: Boolean(opts.public),
      },
      who,
    );
    return { email, password, userId: user.id, clientId: client.clientId, clientSecret };
  });
}
