import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { Database } from './db/index.ts';
import { createAuditService } from './audit/service.ts';
import { createClientService } from './clients/service.ts';
import { createGrantService } from './grants/service.ts';
import { createKeyService } from './keys/service.ts';
import { createResourceService } from './resources/service.ts';
import { createUserService } from './users/service.ts';

/** The rules of the product, shared by the HTTP layer and the CLI. */
export function createServices(db: Database, config: Config, log?: Logger) {
  const audit = createAuditService(db.prisma, log);
  const grants = createGrantService(db.prisma);
  return {
    audit,
    grants,
    users: createUserService(db.prisma, grants, audit),
    clients: createClientService(db.prisma, grants, audit),
    resources: createResourceService(db.prisma, audit, { accessTokenTtl: config.ttl.accessToken }),
    keys: createKeyService(db.prisma, config.keyEncryptionSecret),
  };
}

export type Services = ReturnType<typeof createServices>;
