import type { Config } from './config.ts';
import type { Database } from './db/index.ts';
import { createClientService } from './clients/service.ts';
import { createKeyService } from './keys/service.ts';
import { createResourceService } from './resources/service.ts';
import { createUserService } from './users/service.ts';

/** The rules of the product, shared by the HTTP layer and the CLI. */
export function createServices(db: Database, config: Config) {
  return {
    users: createUserService(db.prisma),
    clients: createClientService(db.prisma),
    resources: createResourceService(db.prisma, { accessTokenTtl: config.ttl.accessToken }),
    keys: createKeyService(db.prisma, config.keyEncryptionSecret),
  };
}

export type Services = ReturnType<typeof createServices>;
