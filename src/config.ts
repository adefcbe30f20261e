import { existsSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { LOOPBACK_HOSTS } from './lib/constants.ts';
import { StartupError } from './lib/errors.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const seconds = (fallback: number) => z.coerce.number().int().positive().max(10 * 365 * 24 * 3600).default(fallback);

const secret = z.string().min(32, 'must be at least 32 characters long');

/** An IPv4 or IPv6 address, optionally with a prefix length. */
function isAddressOrCidr(value: string): boolean {
  const [address = '', prefix, ...rest] = value.split('/');
  const family = isIP(address);
  if (!family || rest.length) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

/**
 * Which X-Forwarded-For hops to believe: none (`false`), the last N (a hop count: the proxies in
 * front), or those added by proxies at the listed addresses. Never every hop: a client would
 * choose its own address by prepending one.
 */
function parseTrustProxy(value: string, ctx: z.RefinementCtx): false | number | string[] {
  const v = value.trim();
  if (v === '' || v === 'false' || v === '0') return false;
  if (v === 'true') {
    ctx.addIssue({ code: 'custom', message: 'true would trust every X-Forwarded-For hop, so a client could choose its own address: give the number of proxies in front (e.g. 1) or their addresses (e.g. 10.0.0.0/8,192.168.1.10)' });
    return z.NEVER;
  }
  if (/^\d+$/.test(v)) {
    if (Number(v) > 10) ctx.addIssue({ code: 'custom', message: 'must be a number of proxies between 0 and 10, or a list of their addresses' });
    return Number(v);
  }
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = list.filter((s) => !isAddressOrCidr(s));
  if (bad.length) ctx.addIssue({ code: 'custom', message: `not an IP address or CIDR range: ${bad.join(', ')} (give false, the number of proxies in front, or their addresses)` });
  return list;
}

/** An image on this server (a path, e.g. a file of THEME_DIR/assets) or anywhere over https. */
const imageUrl = z
  .string()
  .max(2048)
  .refine((v) => (v.startsWith('/') && !v.startsWith('//') && !v.includes('\\')) || (URL.canParse(v) && new URL(v).protocol === 'https:'), 'must be an https URL or a path on this server such as /assets/logo.svg');
const link = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2048);

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  ISSUER: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  DATABASE_URL: z.string().min(1).default('file:./data/idp.db'),
  COOKIE_SECRETS: z
    .string()
    .transform((value) => value.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(secret).min(1, 'must list at least one secret'))
    .optional(),
  KEY_ENCRYPTION_SECRET: secret.optional(),
  METRICS_TOKEN: z.string().min(32, 'must be at least 32 characters long').optional(),
  TRUST_PROXY: z.string().default('false').transform(parseTrustProxy),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  REQUEST_TIMEOUT_SECONDS: z.coerce.number().min(1).max(600).default(30),
  KEEP_ALIVE_TIMEOUT_SECONDS: z.coerce.number().min(1).max(600).default(72),
  MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  ACCESS_TOKEN_TTL: seconds(10 * 60),
  ID_TOKEN_TTL: seconds(10 * 60),
  REFRESH_TOKEN_TTL: seconds(14 * 24 * 3600),
  REFRESH_TOKEN_IDLE_TTL: seconds(7 * 24 * 3600),
  AUTHORIZATION_CODE_TTL: seconds(60),
  SESSION_TTL: seconds(14 * 24 * 3600),
  INTERACTION_TTL: seconds(30 * 60),
  PASSWORD_RESET_TTL: z.coerce.number().int().min(300).max(24 * 3600).default(30 * 60),
  SIGNUP: z.enum(['closed', 'invite', 'open'], { error: 'must be closed, invite or open' }).default('closed'),
  SIGNUP_EMAIL_DOMAINS: z
    .string()
    .transform((v) => v.split(/[\s,]+/).filter(Boolean).map((d) => d.toLowerCase().replace(/^@/, '')))
    .refine((domains) => domains.every((d) => /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/.test(d)), 'must be domain names separated by commas, such as example.com,example.org')
    .default([]),
  REQUIRE_VERIFIED_EMAIL: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
  MFA: z.enum(['optional', 'required'], { error: 'must be optional or required' }).default('optional'),
  MFA_REMEMBER_DAYS: z.coerce.number().int().min(0).max(365).default(0),
  REQUIRE_PAR: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
  DPOP_REQUIRE_NONCE: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
  EMAIL_VERIFICATION_TTL: z.coerce.number().int().min(3600).max(30 * 24 * 3600).default(24 * 3600),
  SIGNUP_IP_MAX_PER_HOUR: z.coerce.number().int().min(1).max(1_000_000).default(10),
  WORKERS: z
    .union([z.literal('auto'), z.coerce.number().int().min(1).max(256)], { error: 'must be a whole number of processes or "auto"' })
    .default(1),
  PASSWORD_HASH_MEMORY_KIB: z.coerce.number().int().min(19 * 1024, 'must be at least 19456 (OWASP baseline)').max(4 * 1024 * 1024).default(19 * 1024),
  PASSWORD_HASH_ITERATIONS: z.coerce.number().int().min(2, 'must be at least 2 (OWASP baseline)').max(100).default(2),
  PASSWORD_HASH_PARALLELISM: z.coerce.number().int().min(1).max(16).default(1),
  PASSWORD_MIN_LENGTH: z.coerce.number().int().min(8, 'must be at least 8').max(128).default(8),
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
  REDIS_PREFIX: z.string().max(100).default('idp:'),
  EPHEMERAL_STORE: z.enum(['database', 'redis'], { error: 'must be database or redis' }).default('database'),
  LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).max(10_000).default(30),
  LOGIN_IP_MAX_FAILURES: z.coerce.number().int().min(1).max(1_000_000).default(100),
  LOGIN_WAIT_INCREMENT_SECONDS: z.coerce.number().int().min(1).max(24 * 3600).default(60),
  LOGIN_MAX_WAIT_SECONDS: z.coerce.number().int().min(1).max(7 * 24 * 3600).default(900),
  INTERACTIONS_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(60),
  DEVICE_CODES_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(10),
  LOGIN_FAILURE_RESET_SECONDS: z.coerce.number().int().min(60).max(30 * 24 * 3600).default(12 * 3600),
  JWKS_CACHE_SECONDS: z.coerce.number().int().min(0).max(24 * 3600).default(300),
  KEY_PREPUBLICATION_SECONDS: z.coerce.number().int().min(0).max(30 * 24 * 3600).default(900),
  KEY_REFRESH_SECONDS: z.coerce.number().int().min(1).max(3600).default(30),
  CONFIG_REFRESH_SECONDS: z.coerce.number().min(0.05).max(60).default(1),
  KEY_ROTATION_DAYS: z.coerce.number().min(0).max(3650).default(0),
  PURGE_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(7 * 24 * 3600).default(600),
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  RECENT_AUTH_SECONDS: z.coerce.number().int().min(30).max(24 * 3600).default(300),
  SHUTDOWN_DRAIN_SECONDS: z.coerce.number().min(0).max(300).default(0),
  SHUTDOWN_TIMEOUT_SECONDS: z.coerce.number().positive().max(600).default(10),
  SMTP_URL: z
    .url({ protocol: /^smtps?$/, error: 'must be an smtp:// or smtps:// URL, e.g. smtps://user:password@smtp.example.com' })
    .optional(),
  MAIL_FROM: z.string().trim().min(3).max(320).optional(),
  MAIL_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
  MAIL_RETRY_SECONDS: z.coerce.number().min(0.1).max(24 * 3600).default(30),
  MAIL_POLL_SECONDS: z.coerce.number().min(0.05).max(3600).default(5),
  MAIL_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  MAIL_CONNECTIONS: z.coerce.number().int().min(1).max(50).default(4),
  LOGOUT_RETRY_BASE_SECONDS: z.coerce.number().min(0.05).max(3600).default(10),
  LOGOUT_POLL_SECONDS: z.coerce.number().min(0.05).max(3600).default(5),
  LOGOUT_DELIVERY_HOURS: z.coerce.number().min(0.001).max(24 * 7).default(24),
  LOGOUT_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(60).default(5),
  DEFAULT_LOCALE: z.string().regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/, 'must be a language tag such as en or ko').default('en'),
  PRODUCT_NAME: z.string().trim().min(1).max(100).optional(),
  BRAND_COLOR: z.string().regex(/^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/, 'must be a hex colour such as #2563eb').default('#2563eb'),
  BRAND_LOGO_URL: imageUrl.optional(),
  BRAND_FAVICON_URL: imageUrl.optional(),
  SUPPORT_URL: link.optional(),
  TERMS_URL: link.optional(),
  PRIVACY_URL: link.optional(),
  THEME_DIR: z
    .string()
    .min(1)
    .refine((v) => existsSync(v) && statSync(v).isDirectory(), 'must be an existing folder')
    .optional(),
  GOOGLE_CLIENT_ID: z.string().min(1).max(500).optional(),
  GOOGLE_CLIENT_SECRET: z.string().min(1).max(500).optional(),
  GOOGLE_ISSUER: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).default('https://accounts.google.com'),
  GOOGLE_HOSTED_DOMAINS: z
    .string()
    .transform((v) => v.split(/[\s,]+/).filter(Boolean).map((d) => d.toLowerCase()))
    .default([]),
});

export interface Config {
  readonly env: 'development' | 'production' | 'test';
  readonly port: number;
  readonly host: string;
  readonly issuer: string;
  /** The issuer's origin (scheme, host, port): where every form must come from. */
  readonly issuerOrigin: string;
  /** An https issuer: Secure and prefixed cookies, HSTS, https-only browser endpoints. */
  readonly secure: boolean;
  readonly databaseUrl: string;
  /** Cookie signing keys, newest first. Generated and stored in the database when not configured outside production. */
  readonly cookieSecrets: readonly string[] | undefined;
  readonly keyEncryptionSecret: string | undefined;
  /** Bearer token for /metrics and the details of /readyz (unset: open outside production, closed in it). */
  readonly metricsToken: string | undefined;
  /** Which X-Forwarded-* hops to believe: none, the last N, or those from these proxy addresses/ranges. */
  readonly trustProxy: false | number | readonly string[];
  /**
   * Bounds on every connection: the whole request (headers and body) must arrive within
   * `requestSeconds`; an idle keep-alive connection closes after `keepAliveSeconds`; at most
   * `maxConnections` are open at once.
   */
  readonly http: { readonly requestSeconds: number; readonly keepAliveSeconds: number; readonly maxConnections: number };
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly ttl: {
    readonly accessToken: number;
    readonly idToken: number;
    /** Absolute, from the login; rotation never extends it. */
    readonly refreshToken: number;
    /** A refresh token unused for this long expires, however much absolute lifetime is left. */
    readonly refreshTokenIdle: number;
    readonly authorizationCode: number;
    readonly session: number;
    readonly interaction: number;
    /** A grant must outlive every refresh token and session built on it. */
    readonly grant: number;
  };
  /** How long a password reset link works, in seconds. */
  readonly passwordResetTtl: number;
  /**
   * Who may create an account (closed: admins only; invite: people an admin invited; open:
   * anyone, from the sign-in page), from which email domains (empty: any), whether an address
   * must be verified before a password sign-in completes, how long a verification link and code
   * work (seconds), and sign-ups one client address may make per hour.
   */
  readonly signup: { readonly mode: 'closed' | 'invite' | 'open'; readonly emailDomains: readonly string[]; readonly requireVerifiedEmail: boolean; readonly verificationTtl: number; readonly ipMaxPerHour: number };
  /**
   * Second factor at sign-in: `optional` (only for people who set one up, and where an app or a
   * role requires one: Client.requireMfa, Role.requireMfa), or `required` of everyone.
   */
  readonly mfa: 'optional' | 'required';
  /** Days a browser may skip the second factor after giving it, when the person ticks "Remember this browser"; 0: never offered. */
  readonly mfaRememberDays: number;
  /** Every authorization request must be pushed first (PAR, RFC 9126); a client may require it of itself anyway. */
  readonly requirePar: boolean;
  /** Every DPoP proof must carry a nonce the server issued (RFC 9449 §8); without it, nonces are offered and accepted. */
  readonly dpopRequireNonce: boolean;
  /** Processes serving requests (node:cluster); "auto" is one per core. */
  readonly workers: number;
  /** How often every instance checks whether clients or APIs changed elsewhere (they are cached). */
  readonly configRefreshSeconds: number;
  /** argon2id cost and the minimum password length. */
  readonly passwords: { readonly memoryKib: number; readonly iterations: number; readonly parallelism: number; readonly minLength: number };
  /** Redis (REDIS_URL): the login throttle's counts, and with `ephemeral` the short-lived protocol state (EPHEMERAL_STORE=redis). */
  readonly redis: { readonly url: string; readonly prefix: string; readonly ephemeral: boolean } | undefined;
  /** Sign-ins (interactions) a client address may start per minute while not signed in. */
  readonly interactionsPerMinute: number;
  /** Device-flow forms (user codes typed, approvals) a client address may send per minute (RFC 8628 §5.1). */
  readonly deviceCodesPerMinute: number;
  /** Login throttling (see ThrottlePolicy). */
  readonly throttle: { readonly maxFailures: number; readonly ipMaxFailures: number; readonly waitIncrementSeconds: number; readonly maxWaitSeconds: number; readonly resetSeconds: number };
  readonly keys: {
    /** Max-age resource servers may cache the JWKS for (sent as Cache-Control on /jwks). */
    readonly jwksCacheSeconds: number;
    /** How long a new key is published before it signs; at least jwksCacheSeconds. */
    readonly prepublicationSeconds: number;
    /** How often every instance looks for key changes. */
    readonly refreshSeconds: number;
    /** Rotate automatically when the newest key is this old (0: only on demand). */
    readonly rotationDays: number;
  };
  /** Seconds between purges of expired artifacts (0: never, e.g. when an external job does it). */
  readonly purgeIntervalSeconds: number;
  readonly auditRetentionDays: number;
  /** The account page's sensitive actions (password, deletion, unlinking) need a sign-in at most this many seconds old. */
  readonly recentAuthSeconds: number;
  /** On SIGTERM: seconds readiness fails before the server stops accepting, and the bound on in-flight requests. */
  readonly shutdown: { readonly drainSeconds: number; readonly timeoutSeconds: number };
  /**
   * Email: SMTP (unset: messages are logged instead, outside production), the sender, and the
   * outbox's retries (the first after `retrySeconds`, then doubling, at most `maxAttempts`), and
   * how many days sent messages are kept (failed ones: 90).
   */
  readonly mail: { readonly smtpUrl: string | undefined; readonly from: string; readonly maxAttempts: number; readonly retrySeconds: number; readonly pollSeconds: number; readonly retentionDays: number; readonly connections: number };
  /**
   * Back-channel logout notices (src/clients/backchannel-logout.ts): the first retry after
   * `retrySeconds`, then doubling (at most an hour apart); given up after `deliveryHours`; each
   * POST bounded by `timeoutSeconds`; due notices looked for every `pollSeconds`.
   */
  readonly backchannelLogout: { readonly retrySeconds: number; readonly pollSeconds: number; readonly deliveryHours: number; readonly timeoutSeconds: number };
  /** The language of pages when nothing in the request chooses one. */
  readonly defaultLocale: string;
  /** What the pages show of the operator's brand (src/http/views.ts). */
  readonly brand: {
    readonly productName: string | undefined;
    readonly colour: string;
    readonly logoUrl: string | undefined;
    readonly faviconUrl: string | undefined;
    readonly supportUrl: string | undefined;
    readonly termsUrl: string | undefined;
    readonly privacyUrl: string | undefined;
  };
  /** A folder whose templates, messages and assets replace the built-in ones, file by file. */
  readonly themeDir: string | undefined;
  /** "Continue with Google", when GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET are set. */
  readonly google: { readonly clientId: string; readonly clientSecret: string; readonly issuer: string; readonly hostedDomains: readonly string[] } | undefined;
}

class ConfigError extends StartupError {
  override name = 'ConfigError';

  constructor(message: string) {
    super('invalid_configuration', message);
  }
}

/** Loads `.env` from the working directory, if there is one; real environment variables win. */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

/**
 * The rules between variables, judged on what was given (each only where its variables are
 * valid on their own), so that every problem is reported in the same pass as the others.
 */
function crossProblems(env: NodeJS.ProcessEnv, invalid: ReadonlySet<string>): string[] {
  const given = (name: string) => (invalid.has(name) ? undefined : env[name]?.trim() || undefined);
  const problems: string[] = [];
  const issuerText = given('ISSUER');
  const issuerUrl = issuerText && URL.canParse(issuerText) ? new URL(issuerText) : undefined;
  if (issuerUrl && (issuerUrl.search || issuerUrl.hash)) problems.push('ISSUER: must not contain a query or a fragment');
  if (given('NODE_ENV') === 'production') {
    // Without ISSUER the issuer is http://localhost:PORT, which production allows.
    if (issuerUrl && issuerUrl.protocol !== 'https:' && !LOOPBACK_HOSTS.has(issuerUrl.hostname)) problems.push('ISSUER: must be https in production (http is only allowed for localhost)');
    if (!env.COOKIE_SECRETS) problems.push('COOKIE_SECRETS: required in production (comma-separated, each at least 32 characters)');
    if (!env.KEY_ENCRYPTION_SECRET) problems.push('KEY_ENCRYPTION_SECRET: required in production (at least 32 characters)');
    if (!env.SMTP_URL) problems.push('SMTP_URL: required in production: password reset and email verification send mail (smtps://user:password@smtp.example.com)');
  }
  if (!invalid.has('KEY_PREPUBLICATION_SECONDS') && !invalid.has('JWKS_CACHE_SECONDS') && Number(given('KEY_PREPUBLICATION_SECONDS') ?? 900) < Number(given('JWKS_CACHE_SECONDS') ?? 300)) {
    problems.push('KEY_PREPUBLICATION_SECONDS: must be at least JWKS_CACHE_SECONDS, or resource servers meet keys they have not cached yet');
  }
  if (given('EPHEMERAL_STORE') === 'redis' && !given('REDIS_URL')) problems.push('EPHEMERAL_STORE: redis needs REDIS_URL (redis://…)');
  if (Boolean(env.GOOGLE_CLIENT_ID) !== Boolean(env.GOOGLE_CLIENT_SECRET)) {
    problems.push('GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET: set both to enable "Continue with Google", or neither');
  }
  return problems;
}

/** Reads and validates the configuration once; every problem is reported, one line per variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  const issues = parsed.success ? [] : parsed.error.issues;
  const problems = [
    ...issues.map((issue) => `${String(issue.path[0] ?? '(environment)')}: ${issue.message}`),
    ...crossProblems(env, new Set(issues.map((issue) => String(issue.path[0])))),
  ];
  if (!parsed.success || problems.length) throw new ConfigError(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  const e = parsed.data;
  const issuer = (e.ISSUER ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  const issuerUrl = new URL(issuer);

  return Object.freeze({
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    issuer,
    issuerOrigin: issuerUrl.origin,
    secure: issuerUrl.protocol === 'https:',
    databaseUrl: e.DATABASE_URL,
    cookieSecrets: e.COOKIE_SECRETS,
    keyEncryptionSecret: e.KEY_ENCRYPTION_SECRET,
    metricsToken: e.METRICS_TOKEN,
    trustProxy: Array.isArray(e.TRUST_PROXY) ? Object.freeze(e.TRUST_PROXY) : e.TRUST_PROXY,
    http: Object.freeze({ requestSeconds: e.REQUEST_TIMEOUT_SECONDS, keepAliveSeconds: e.KEEP_ALIVE_TIMEOUT_SECONDS, maxConnections: e.MAX_CONNECTIONS }),
    logLevel: e.LOG_LEVEL,
    ttl: Object.freeze({
      accessToken: e.ACCESS_TOKEN_TTL,
      idToken: e.ID_TOKEN_TTL,
      refreshToken: e.REFRESH_TOKEN_TTL,
      refreshTokenIdle: Math.min(e.REFRESH_TOKEN_IDLE_TTL, e.REFRESH_TOKEN_TTL),
      authorizationCode: e.AUTHORIZATION_CODE_TTL,
      session: e.SESSION_TTL,
      interaction: e.INTERACTION_TTL,
      grant: Math.max(e.REFRESH_TOKEN_TTL, e.SESSION_TTL),
    }),
    passwords: Object.freeze({
      memoryKib: e.PASSWORD_HASH_MEMORY_KIB,
      iterations: e.PASSWORD_HASH_ITERATIONS,
      parallelism: e.PASSWORD_HASH_PARALLELISM,
      minLength: e.PASSWORD_MIN_LENGTH,
    }),
    redis: e.REDIS_URL ? Object.freeze({ url: e.REDIS_URL, prefix: e.REDIS_PREFIX, ephemeral: e.EPHEMERAL_STORE === 'redis' }) : undefined,
    interactionsPerMinute: e.INTERACTIONS_PER_MINUTE,
    deviceCodesPerMinute: e.DEVICE_CODES_PER_MINUTE,
    throttle: Object.freeze({
      maxFailures: e.LOGIN_MAX_FAILURES,
      ipMaxFailures: e.LOGIN_IP_MAX_FAILURES,
      waitIncrementSeconds: e.LOGIN_WAIT_INCREMENT_SECONDS,
      maxWaitSeconds: e.LOGIN_MAX_WAIT_SECONDS,
      resetSeconds: e.LOGIN_FAILURE_RESET_SECONDS,
    }),
    keys: Object.freeze({
      jwksCacheSeconds: e.JWKS_CACHE_SECONDS,
      prepublicationSeconds: e.KEY_PREPUBLICATION_SECONDS,
      refreshSeconds: e.KEY_REFRESH_SECONDS,
      rotationDays: e.KEY_ROTATION_DAYS,
    }),
    passwordResetTtl: e.PASSWORD_RESET_TTL,
    signup: Object.freeze({
      mode: e.SIGNUP,
      emailDomains: Object.freeze(e.SIGNUP_EMAIL_DOMAINS),
      // Anyone may sign up: an address is proven before it signs in, unless the operator says otherwise.
      requireVerifiedEmail: e.REQUIRE_VERIFIED_EMAIL === undefined ? e.SIGNUP === 'open' : e.REQUIRE_VERIFIED_EMAIL === 'true',
      verificationTtl: e.EMAIL_VERIFICATION_TTL,
      ipMaxPerHour: e.SIGNUP_IP_MAX_PER_HOUR,
    }),
    mfa: e.MFA,
    mfaRememberDays: e.MFA_REMEMBER_DAYS,
    requirePar: e.REQUIRE_PAR === 'true',
    dpopRequireNonce: e.DPOP_REQUIRE_NONCE === 'true',
    workers: e.WORKERS === 'auto' ? availableParallelism() : e.WORKERS,
    configRefreshSeconds: e.CONFIG_REFRESH_SECONDS,
    purgeIntervalSeconds: e.PURGE_INTERVAL_SECONDS,
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    recentAuthSeconds: e.RECENT_AUTH_SECONDS,
    shutdown: Object.freeze({ drainSeconds: e.SHUTDOWN_DRAIN_SECONDS, timeoutSeconds: e.SHUTDOWN_TIMEOUT_SECONDS }),
    mail: Object.freeze({
      smtpUrl: e.SMTP_URL,
      from: e.MAIL_FROM ?? `"${(e.PRODUCT_NAME ?? 'Sign-in').replaceAll('"', '')}" <no-reply@${issuerUrl.hostname}>`,
      maxAttempts: e.MAIL_MAX_ATTEMPTS,
      retrySeconds: e.MAIL_RETRY_SECONDS,
      pollSeconds: e.MAIL_POLL_SECONDS,
      retentionDays: e.MAIL_RETENTION_DAYS,
      connections: e.MAIL_CONNECTIONS,
    }),
    backchannelLogout: Object.freeze({
      retrySeconds: e.LOGOUT_RETRY_BASE_SECONDS,
      pollSeconds: e.LOGOUT_POLL_SECONDS,
      deliveryHours: e.LOGOUT_DELIVERY_HOURS,
      timeoutSeconds: e.LOGOUT_TIMEOUT_SECONDS,
    }),
    defaultLocale: e.DEFAULT_LOCALE,
    brand: Object.freeze({
      productName: e.PRODUCT_NAME,
      colour: e.BRAND_COLOR,
      logoUrl: e.BRAND_LOGO_URL,
      faviconUrl: e.BRAND_FAVICON_URL,
      supportUrl: e.SUPPORT_URL,
      termsUrl: e.TERMS_URL,
      privacyUrl: e.PRIVACY_URL,
    }),
    themeDir: e.THEME_DIR,
    google:
      e.GOOGLE_CLIENT_ID && e.GOOGLE_CLIENT_SECRET
        ? Object.freeze({ clientId: e.GOOGLE_CLIENT_ID, clientSecret: e.GOOGLE_CLIENT_SECRET, issuer: e.GOOGLE_ISSUER.replace(/\/+$/, ''), hostedDomains: Object.freeze(e.GOOGLE_HOSTED_DOMAINS) })
        : undefined,
  });
}
