import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { Database } from './db/index.ts';
import { createArtifactStore } from './artifacts/store.ts';
import { createAuditService } from './audit/service.ts';
import { createClientService } from './clients/service.ts';
import { createGrantService } from './grants/service.ts';
import { createKeyService } from './keys/service.ts';
import { createResourceService } from './resources/service.ts';
import { createUserService } from './users/service.ts';
import { createUpstreamService } from './federation/upstreams.ts';
import { createFederationService } from './federation/service.ts';
import { createConfigCache } from './lib/config-cache.ts';
import { persistedSecret } from './lib/server-secrets.ts';
import { createLeases } from './housekeeping/leases.ts';
import { createHousekeeping } from './housekeeping/service.ts';
import { createSignIn } from './users/sign-in.ts';
import { createLoginThrottle } from './users/throttle.ts';

/** The rules of the product, shared by the HTTP layer and the CLI. */
export function createServices(db: Database, config: Config, log?: Logger) {
  const audit = createAuditService(db.prisma, log);
  const configCache = createConfigCache(db.prisma);
  const artifacts = createArtifactStore(db.prisma);
  // Grants are listed with their clients' names; the client service is made below.
  const grants = createGrantService(artifacts, (ids) => clients.names(ids));
  const users = createUserService(db.prisma, grants, audit, configCache, db.dialect, config.passwords);
  // Upstream client secrets are encrypted with KEY_ENCRYPTION_SECRET (required in production);
  // in development without it, with a generated key kept in the database. Pseudonyms of typed
  // identifiers (throttling keys) are keyed with it too.
  const dataKey = () => (config.keyEncryptionSecret ? Promise.resolve(config.keyEncryptionSecret) : persistedSecret(db.prisma, 'data-encryption-key'));
  const upstreams = createUpstreamService(db.prisma, audit, config, dataKey);
  const resources = createResourceService(db.prisma, audit, configCache, { accessTokenTtl: config.ttl.accessToken });
  const throttle = createLoginThrottle(db, audit, config.throttle, config.redis, dataKey);
  const clients = createClientService(db.prisma, grants, audit, configCache, resources, db.dialect);
  return {
    artifacts,
    audit,
    grants,
    users,
    upstreams,
    federation: createFederationService({ prisma: db.prisma, artifacts, upstreams, users, audit, attempts: throttle, issuer: config.issuer, ...(log ? { log } : {}) }),
    configCache,
    clients,
    resources,
    keys: createKeyService(
      db.prisma,
      config.keyEncryptionSecret,
      {
        prepublicationSeconds: config.keys.prepublicationSeconds,
        async maxTokenLifetime() {
          return Math.max(config.ttl.idToken, config.ttl.accessToken, await resources.longestAccessTokenTtl());
        },
      },
      audit,
    ),
    throttle,
    signIn: createSignIn({ users, throttle, audit }),
    housekeeping: createHousekeeping({ artifacts, audit, throttle }, { auditRetentionDays: config.auditRetentionDays }),
    leases: createLeases(db.prisma),
  };
}

export type Services = ReturnType<typeof createServices>;

/** The provider's ports (src/oidc/provider.ts), from the services. */
export const providerPorts = (s: Services) => ({ accounts: s.users, apis: s.resources, clients: s.clients, artifacts: s.artifacts, counters: s.throttle, audit: s.audit });
