import type { Logger } from 'pino';
import type { Config } from './config.ts';
import { availabilityLog, type Database } from './db/index.ts';
import { createArtifactStore } from './artifacts/store.ts';
import { createRedisArtifacts } from './artifacts/redis.ts';
import { connectRedis } from './lib/redis.ts';
import { createAuditService } from './audit/service.ts';
import { createClientService } from './clients/service.ts';
import { createBackchannelLogout } from './clients/backchannel-logout.ts';
import { createGrantService } from './grants/service.ts';
import { createKeyService } from './keys/service.ts';
import { createResourceService } from './resources/service.ts';
import { createUserService } from './users/service.ts';
import { createUpstreamService } from './federation/upstreams.ts';
import { createFederationService } from './federation/service.ts';
import { createConfigCache } from './lib/config-cache.ts';
import { dataKey as readDataKey } from './lib/server-secrets.ts';
import { createLeases } from './housekeeping/leases.ts';
import { createHousekeeping } from './housekeeping/service.ts';
import { createSignIn } from './users/sign-in.ts';
import { createLogger } from './logger.ts';
import { createOutbox } from './mail/outbox.ts';
import { createAccountTokens } from './account/tokens.ts';
import { createPasswordReset } from './account/password-reset.ts';
import { createInvitations } from './account/invitations.ts';
import { createSignUp } from './account/signup.ts';
import { createEmailVerification } from './account/verification.ts';
import { logTransport, smtpTransport } from './mail/transport.ts';
import { createRoleService } from './roles/service.ts';
import { createTemplates } from './templates/engine.ts';
import { createLoginThrottle } from './users/throttle.ts';
import { createSessionDevices } from './account/devices.ts';
import { createSelfService } from './account/self-service.ts';
import { createMfaService } from './mfa/service.ts';
import { createCeremonies, relyingParty } from './mfa/passkeys.ts';
import { createMfaPolicy } from './mfa/policy.ts';

/** The rules of the product, shared by the HTTP layer and the CLI. */
export function createServices(db: Database, config: Config, log?: Logger) {
  const audit = createAuditService(db.prisma, log);
  const configCache = createConfigCache(db.prisma);
  // Sessions ended on purpose tell the clients they signed in to (back-channel logout, made below).
  // Redis (REDIS_URL): the throttle's counts, and with EPHEMERAL_STORE=redis sessions, interactions and codes.
  const redis = config.redis && connectRedis(config.redis, log && availabilityLog(log, 'Redis'));
  const ephemeral = config.redis?.ephemeral && redis ? createRedisArtifacts(redis) : undefined;
  const artifacts = createArtifactStore(db.prisma, { sessionsEnded: (sessions) => logouts.sessionsEnded(sessions) }, ephemeral);
  const passkeyRp = relyingParty(config.issuer, config.brand.productName);
  // Grants are listed with their clients' names; the client service is made below.
  const grants = createGrantService(artifacts, (ids) => clients.names(ids));
  const users = createUserService(db.prisma, grants, audit, configCache, db.dialect, config.passwords);
  // Upstream client secrets are encrypted with KEY_ENCRYPTION_SECRET (required in production);
  // in development without it, with a generated key kept in the database. Pseudonyms of typed
  // identifiers (throttling keys) are keyed with it too.
  const dataKey = readDataKey(config, db.prisma);
  const upstreams = createUpstreamService(db.prisma, audit, configCache, config, dataKey);
  const resources = createResourceService(db.prisma, audit, configCache, { accessTokenTtl: config.ttl.accessToken });
  const throttle = createLoginThrottle(db, audit, config.throttle, redis, dataKey);
  const clients = createClientService(db.prisma, grants, audit, configCache, resources, db.dialect);
  const logouts = createBackchannelLogout(db.prisma, { clients, audit, issuer: config.issuer, log }, { ...config.backchannelLogout, loopbackAllowed: config.env !== 'production' });
  // What a person reads, on pages and in email: templates, the messages catalogue, the theme.
  const templates = createTemplates(config);
  const outbox = createOutbox(
    db.prisma,
    { audit, secret: dataKey, transport: config.mail.smtpUrl ? smtpTransport(config.mail.smtpUrl, config.mail.from, config.mail.connections) : logTransport(log ?? createLogger('silent')), ...(log ? { log } : {}) },
    config.mail,
  );
  const accountTokens = createAccountTokens(db.prisma);
  // Sign-up, email verification and invitations (src/account/): the terms must be accepted when TERMS_URL is set.
  const termsRequired = Boolean(config.brand.termsUrl);
  const verification = createEmailVerification({ prisma: db.prisma, tokens: accountTokens, outbox, templates, throttle, audit, cache: configCache, issuer: config.issuer, ttlSeconds: config.signup.verificationTtl });
  const signUp = createSignUp({ prisma: db.prisma, users, verification, outbox, templates, throttle, audit, policy: { ...config.signup, termsRequired } });
  const invitations = createInvitations({ prisma: db.prisma, users, tokens: accountTokens, outbox, templates, audit, issuer: config.issuer, termsRequired });
  const federation = createFederationService({ prisma: db.prisma, artifacts, upstreams, users, audit, attempts: throttle, issuer: config.issuer, ...(log ? { log } : {}) });
  const signIn = createSignIn({ users, throttle, audit });
  // The account page: which browser each session is used from, and what a person may do with their own account.
  const devices = createSessionDevices(artifacts, { ttlSeconds: config.ttl.session });
  const roles = createRoleService(db.prisma, audit);
  return {
    verification,
    signUp,
    invitations,
    templates,
    outbox,
    logouts,
    accountTokens,
    passwordReset: createPasswordReset({ prisma: db.prisma, users, tokens: accountTokens, outbox, templates, throttle, audit, issuer: config.issuer, ttlSeconds: config.passwordResetTtl, log }),
    artifacts,
    redis,
    audit,
    grants,
    users,
    upstreams,
    federation,
    configCache,
    clients,
    resources,
    roles,
    mfaPolicy: createMfaPolicy({ mode: config.mfa, clients, roles }),
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
    signIn,
    devices,
    // The second factor: TOTP secrets encrypted with the data key, as upstream client secrets are.
    // Passkeys: the issuer is the relying party (none on an IP address, where browsers refuse them).
    mfa: createMfaService({ prisma: db.prisma, audit, outbox, templates, secret: dataKey, issuer: config.brand.productName ?? new URL(config.issuer).host, ceremonies: passkeyRp && createCeremonies({ rp: passkeyRp, artifacts, secret: dataKey }) }),
    selfService: createSelfService({ prisma: db.prisma, users, grants, artifacts, devices, federation, upstreams, resources, audit, signIn, tokens: accountTokens, outbox, templates, configCache, counters: throttle, issuer: config.issuer }),
    housekeeping: createHousekeeping({ artifacts, audit, throttle, mail: outbox, accountTokens, logouts }, { auditRetentionDays: config.auditRetentionDays, mailRetentionDays: config.mail.retentionDays }),
    leases: createLeases(db.prisma),
  };
}

export type Services = ReturnType<typeof createServices>;

/** The provider's ports (src/oidc/provider.ts), from the services. */
export const providerPorts = (s: Services) => ({ accounts: s.users, apis: s.resources, roles: s.roles, clients: s.clients, artifacts: s.artifacts, counters: s.throttle, audit: s.audit, devices: s.devices, mfaPolicy: s.mfaPolicy, logouts: s.logouts });
