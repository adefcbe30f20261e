import type { ArtifactStore } from '../artifacts/store.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import { ACCOUNT_CLIENT_ID } from '../clients/service.ts';
import type { PrismaClient } from '../db/index.ts';
import type { FederationService } from '../federation/service.ts';
import type { UpstreamService } from '../federation/upstreams.ts';
import type { GrantService, GrantView } from '../grants/service.ts';
import type { ConfigCache } from '../lib/config-cache.ts';
import { sha256 } from '../lib/crypto.ts';
import { AppError, notFound } from '../lib/errors.ts';
import { ADMIN_API, OIDC_SCOPES } from '../lib/scopes.ts';
import { composeMail } from '../mail/compose.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { ResourceService } from '../resources/service.ts';
import type { Templates } from '../templates/engine.ts';
import { normalizeEmail, type PasswordProblem, type UserService, type UserView } from '../users/service.ts';
import type { SignIn } from '../users/sign-in.ts';
import type { LoginThrottle } from '../users/throttle.ts';
import { describeUserAgent, type SessionDevices } from './devices.ts';
import type { AccountTokens } from './tokens.ts';

/** One thing an app may do: words of the catalogue (`key`), an API's own description, or the bare scope name. */
export interface ScopeLine {
  name: string;
  key?: string;
  description?: string;
}

/** An app that holds the person's consent (a grant), and what it may do, in words. */
export interface AppView {
  grantId: string;
  clientId: string;
  name: string;
  permissions: ScopeLine[];
  apis: { name?: string; nameKey?: string; scopes: ScopeLine[] }[];
  grantedAt: Date;
}

/** A browser session of the person. `handle` names it in forms (never its id, which is its cookie's value). */
export interface SessionView {
  handle: string;
  current: boolean;
  browser: string | null;
  os: string | null;
  ip: string | null;
  signedInAt: Date | null;
  lastSeenAt: Date | null;
}

/** An account at another sign-in service that signs in to this one. */
export interface IdentityView {
  id: string;
  service: string;
  email: string | null;
  linkedAt: Date;
  lastSignInAt: Date | null;
}

export interface Overview {
  user: UserView;
  sessions: SessionView[];
  apps: AppView[];
  identities: IdentityView[];
}

export type PasswordChange = { kind: 'changed'; otherSessionsEnded: number } | { kind: 'wrong_current' } | { kind: 'throttled'; wait: number } | ({ kind: 'weak' } & PasswordProblem);

/** What a request acting on the person's own account tells the rules. */
export interface Caller {
  userId: string;
  /** The uid of the browser session the request comes from (kept when others are signed out). */
  sessionUid: string;
  ip: string;
  /** The language of the page, for any email the action sends. */
  lang: string;
}

const ALL_TOKEN_PURPOSES = ['verify_email', 'reset_password', 'invite', 'change_email'] as const;

/** Characters a name shown to people must not hold (control characters, bidirectional overrides). */
const UNSAFE_TEXT = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;
const NAME_MAX = 200;

/** How a form names one of the person's sessions: a hash of its uid, so that the page shows neither its id nor its uid. */
const sessionHandle = (uid: string) => sha256(`session:${uid}`).slice(0, 22);

interface SessionPayload {
  uid?: string;
  loginTs?: number;
}

export interface SelfServiceDeps {
  /** For the transactions that change the account and write the email announcing it. */
  prisma: PrismaClient;
  users: UserService;
  grants: GrantService;
  artifacts: Pick<ArtifactStore, 'sessionsOf' | 'endSession'>;
  devices: SessionDevices;
  federation: FederationService;
  upstreams: Pick<UpstreamService, 'list' | 'findEnabled'>;
  resources: Pick<ResourceService, 'describe'>;
  audit: AuditService;
  signIn: Pick<SignIn, 'throttled'>;
  tokens: AccountTokens;
  outbox: Outbox;
  templates: Templates;
  configCache: ConfigCache;
  /** Email changes asked per person and hour. */
  counters: Pick<LoginThrottle, 'hit'>;
  issuer: string;
}

/** How long the link that confirms a new address works. */
const EMAIL_CHANGE_TTL_SECONDS = 24 * 3600;
const EMAIL_CHANGES_PER_HOUR = 3;
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export type EmailChangeRequest = 'sent' | 'same' | 'invalid' | 'throttled';
export type EmailChangeOutcome = { kind: 'changed'; email: string } | { kind: 'spent' } | { kind: 'taken' };

/**
 * What a signed-in person can do with their own account on the account page: see it, rename
 * themselves, change their password, see and end their sessions, revoke an app, unlink another
 * sign-in service, download what is kept about them, and delete the account. Every action is
 * the person's own (`user:<id>` in the audit) and only ever touches their own rows: a session,
 * grant or identity of someone else is "not found".
 */
export function createSelfService(deps: SelfServiceDeps) {
  const { users, grants, artifacts, devices, federation, audit } = deps;
  const actor = (c: Pick<Caller, 'userId' | 'ip'>): Actor => ({ actor: `user:${c.userId}`, ip: c.ip });

  async function sessions(userId: string, currentUid: string | null): Promise<(SessionView & { id: string; uid: string })[]> {
    const rows = (await artifacts.sessionsOf(userId)).filter((r): r is typeof r & { uid: string } => Boolean(r.uid));
    const seen = await devices.of(rows.map((r) => r.uid));
    return rows
      .map((r) => {
        const payload = JSON.parse(r.payload) as SessionPayload;
        const device = seen.get(r.uid);
        const { browser, os } = describeUserAgent(device?.userAgent);
        return {
          id: r.id,
          uid: r.uid,
          handle: sessionHandle(r.uid),
          current: r.uid === currentUid,
          browser,
          os,
          ip: device?.ip ?? null,
          signedInAt: payload.loginTs ? new Date(payload.loginTs * 1000) : null,
          lastSeenAt: device ? new Date(device.lastSeenAt) : null,
        };
      })
      .sort((a, b) => Number(b.current) - Number(a.current) || (b.lastSeenAt?.getTime() ?? 0) - (a.lastSeenAt?.getTime() ?? 0));
  }

  /** The apps that hold the person's consent; the account page itself is not one of them. */
  const appGrants = async (userId: string) => (await grants.listForUser(userId)).filter((g) => g.clientId !== ACCOUNT_CLIENT_ID);

  /** What each app may do, in the consent page's words. */
  async function describeApps(list: GrantView[]): Promise<AppView[]> {
    const described = new Map((await deps.resources.describe([...new Set(list.flatMap((g) => Object.keys(g.apis)))])).map((api) => [api.identifier, api]));
    return list.map((g) => ({
      grantId: g.grantId,
      clientId: g.clientId,
      name: g.clientName ?? g.clientId,
      grantedAt: g.createdAt,
      permissions: g.scopes.map((name): ScopeLine => (OIDC_SCOPES.has(name) ? { name, key: `scope.${name}` } : { name })),
      apis: Object.entries(g.apis).map(([identifier, scopes]) => {
        const admin = identifier === ADMIN_API;
        const api = described.get(identifier);
        return {
          ...(admin ? { nameKey: 'consent.adminApi' } : { name: api?.name ?? identifier }),
          scopes: scopes.map((name): ScopeLine => (admin ? { name, key: `adminScope.${name}` } : { name, ...(api?.scopeDescriptions[name] ? { description: api.scopeDescriptions[name] } : {}) })),
        };
      }),
    }));
  }

  async function identities(userId: string): Promise<(IdentityView & { issuer: string; subject: string; emailVerified: boolean })[]> {
    const rows = await federation.identities(userId);
    if (!rows.length) return [];
    const names = new Map((await deps.upstreams.list()).map((p) => [p.id, p.name]));
    for (const id of new Set(rows.map((r) => r.providerId))) if (!names.has(id)) names.set(id, (await deps.upstreams.findEnabled(id))?.name ?? id);
    return rows.map((r) => ({
      id: r.id,
      service: names.get(r.providerId) ?? r.providerId,
      email: r.email,
      linkedAt: r.createdAt,
      lastSignInAt: r.lastLoginAt,
      issuer: r.issuer,
      subject: r.subject,
      emailVerified: r.emailVerified,
    }));
  }

  const strip = <T extends object, K extends keyof T>(item: T, ...keys: K[]): Omit<T, K> => {
    const copy = { ...item };
    for (const key of keys) delete copy[key];
    return copy;
  };

  return {
    /** Everything the account page shows. */
    async overview(userId: string, currentUid: string): Promise<Overview> {
      const [user, list, apps, linked] = await Promise.all([users.get(userId), sessions(userId, currentUid), appGrants(userId).then(describeApps), identities(userId)]);
      return {
        user,
        sessions: list.map((s) => strip(s, 'id', 'uid')),
        apps,
        identities: linked.map((i) => strip(i, 'issuer', 'subject', 'emailVerified')),
      };
    },

    /** The person's name (empty: none), unless it is too long or holds characters that cannot be shown. */
    async rename(c: Caller, name: string): Promise<'renamed' | 'too_long' | 'invalid'> {
      const value = name.normalize('NFC').trim();
      if (value.length > NAME_MAX) return 'too_long';
      if (UNSAFE_TEXT.test(value)) return 'invalid';
      await users.update(c.userId, { name: value || null }, actor(c));
      return 'renamed';
    },

    /**
     * Asks to move the account to a new address: a link goes to the new address and the change
     * happens only when it is followed (proving the address), within 24 hours. Whether the new
     * address already has an account is not said here: that link then ends on "already in use".
     */
    async requestEmailChange(c: Caller, newEmail: string): Promise<EmailChangeRequest> {
      const email = normalizeEmail(newEmail.slice(0, 320));
      if (!EMAIL_SHAPE.test(email) || UNSAFE_TEXT.test(email)) return 'invalid';
      const user = await users.get(c.userId);
      if (email === user.email) return 'same';
      if ((await deps.counters.hit(`email-change:${c.userId}`, 3600)) > EMAIL_CHANGES_PER_HOUR) return 'throttled';
      await deps.prisma.$transaction(async (tx) => {
        const { token } = await deps.tokens.issue(tx, { purpose: 'change_email', email, userId: c.userId, ttlSeconds: EMAIL_CHANGE_TTL_SECONDS, data: { from: user.email, lang: c.lang } });
        await deps.outbox.enqueue(tx, composeMail(deps.templates, { kind: 'email_change', to: email, lang: c.lang, link: `${deps.issuer}/account/email/confirm/${token}`, vars: { hours: EMAIL_CHANGE_TTL_SECONDS / 3600 } }));
      });
      deps.outbox.wake();
      await audit.record(actor(c), 'user.email_change_requested', c.userId);
      return 'sent';
    },

    /** Whether an email change link still works (to show its confirmation button). */
    async emailChangeLive(token: string): Promise<boolean> {
      return (await deps.tokens.find('change_email', token)) !== null;
    },

    /** Follows the link sent to the new address: the account moves to it, verified, and the old address is told. */
    async confirmEmailChange(token: string, ip: string): Promise<EmailChangeOutcome> {
      const changed = await deps.prisma
        .$transaction(async (tx) => {
          const row = await deps.tokens.use(tx, 'change_email', token);
          if (!row?.userId) return { kind: 'spent' as const };
          const data = JSON.parse(row.data ?? '{}') as { from?: string; lang?: string };
          if (await tx.user.findUnique({ where: { email: row.email }, select: { id: true } })) return { kind: 'taken' as const };
          const user = await tx.user.update({ where: { id: row.userId }, data: { email: row.email, emailVerified: true } });
          await deps.tokens.revokeForUser(tx, user.id, ['change_email', 'verify_email', 'reset_password']);
          if (data.from) await deps.outbox.enqueue(tx, composeMail(deps.templates, { kind: 'email_changed', to: data.from, lang: data.lang ?? deps.templates.catalogue.defaultLocale, vars: { email: row.email } }));
          return { kind: 'changed' as const, email: row.email, userId: user.id };
        })
        .catch((err: unknown) => {
          // The address was taken between the check and the update.
          if ((err as { code?: string }).code === 'P2002') return { kind: 'taken' as const };
          throw err;
        });
      if (changed.kind !== 'changed') return changed;
      deps.outbox.wake();
      await deps.configCache.changed();
      await audit.record({ actor: `user:${changed.userId}`, ip }, 'user.email_changed', changed.userId);
      return { kind: 'changed', email: changed.email };
    },

    /**
     * A new password, with the current one when the account has one (an account that signs in
     * only through another service sets its first). Wrong current passwords count as failed
     * sign-ins (the same throttle). Every other session ends, and every app's tokens: apps ask
     * the person to sign in again; this browser stays signed in. The address is told.
     */
    async changePassword(c: Caller, input: { current: string; next: string }): Promise<PasswordChange> {
      const user = await users.get(c.userId);
      if (user.hasPassword) {
        const checked = await deps.signIn.throttled({ ip: c.ip, email: user.email }, async () => {
          const ok = (await users.verifyPassword(c.userId, input.current)) !== null;
          return { ok, value: ok };
        });
        if (checked.kind === 'throttled') return checked;
        if (!checked.value) {
          await audit.record(actor(c), 'user.password_change_failed', c.userId);
          return { kind: 'wrong_current' };
        }
      }
      const problem = users.passwordProblem(input.next);
      if (problem) return { kind: 'weak', ...problem };
      const passwordHash = await users.hashPassword(input.next);
      await deps.prisma.$transaction(async (tx) => {
        await tx.user.update({ where: { id: c.userId }, data: { passwordHash } });
        await deps.tokens.revokeForUser(tx, c.userId, ['reset_password']);
        await deps.outbox.enqueue(tx, composeMail(deps.templates, { kind: 'account_password_changed', to: user.email, lang: c.lang }));
      });
      deps.outbox.wake();
      await deps.configCache.changed();
      await grants.revokeAllForUser(c.userId);
      const others = (await sessions(c.userId, c.sessionUid)).filter((s) => !s.current);
      const ended = await grants.revokeSessions(c.userId, { exceptUid: c.sessionUid });
      await devices.forget(others.map((s) => s.uid));
      await audit.record(actor(c), user.hasPassword ? 'user.password_changed' : 'user.password_set', c.userId, { self: true, otherSessionsEnded: ended });
      return { kind: 'changed', otherSessionsEnded: ended };
    },

    /** Ends one of the person's other sessions (this browser's is ended by signing out). */
    async signOutSession(c: Caller, handle: string): Promise<void> {
      const session = (await sessions(c.userId, c.sessionUid)).find((s) => s.handle === handle && !s.current);
      if (!session) throw notFound('no such session');
      await artifacts.endSession(session.id);
      await devices.forget([session.uid]);
      await audit.record(actor(c), 'session.ended', c.userId, { reason: 'account_page', session: handle });
    },

    /** Ends every session of the person but this browser's; returns how many. */
    async signOutOthers(c: Caller): Promise<number> {
      const others = (await sessions(c.userId, c.sessionUid)).filter((s) => !s.current);
      const count = await grants.revokeSessions(c.userId, { exceptUid: c.sessionUid });
      await devices.forget(others.map((s) => s.uid));
      await audit.record(actor(c), 'session.revoked', c.userId, { count, self: true });
      return count;
    },

    /** Takes an app's access away: its grant and every token under it (its refresh tokens then fail). */
    async revokeApp(c: Caller, grantId: string): Promise<void> {
      if (!(await appGrants(c.userId)).some((g) => g.grantId === grantId)) throw notFound('no such app');
      await users.revokeGrant(c.userId, grantId, actor(c));
    },

    /** Unlinks another sign-in service, unless it is the last way to sign in (no password, no other service). */
    async unlink(c: Caller, identityId: string): Promise<'unlinked' | 'last_method'> {
      try {
        await federation.unlink(c.userId, identityId, actor(c));
        return 'unlinked';
      } catch (err) {
        if (err instanceof AppError && err.status === 409) return 'last_method';
        throw err;
      }
    },

    /** One of the person's linked services, for the page that asks before unlinking it. */
    async identity(userId: string, identityId: string): Promise<IdentityView> {
      const found = (await identities(userId)).find((i) => i.id === identityId);
      if (!found) throw notFound('no such linked service');
      return strip(found, 'issuer', 'subject', 'emailVerified');
    },

    /**
     * Deletes the account when `typedEmail` is its address: the user, their sessions, grants and
     * tokens, linked services and pending emailed links. The audit keeps its events under the
     * account's id (a random identifier, now naming nobody), without its address. The address is
     * told, in the same transaction as the deletion.
     */
    async deleteAccount(c: Caller, typedEmail: string): Promise<'deleted' | 'mismatch'> {
      const user = await users.get(c.userId);
      if (normalizeEmail(typedEmail.slice(0, 400)) !== user.email) return 'mismatch';
      const uids = (await sessions(c.userId, null)).map((s) => s.uid);
      await grants.revokeAllForUser(c.userId, { sessions: true });
      await devices.forget(uids);
      await deps.prisma.$transaction(async (tx) => {
        await deps.tokens.revokeForUser(tx, c.userId, [...ALL_TOKEN_PURPOSES]);
        await tx.user.deleteMany({ where: { id: c.userId } });
        await deps.outbox.enqueue(tx, composeMail(deps.templates, { kind: 'account_deleted', to: user.email, lang: c.lang }));
      });
      deps.outbox.wake();
      await deps.configCache.changed();
      await audit.record(actor(c), 'user.deleted', c.userId, { self: true });
      await audit.pseudonymize(c.userId);
      return 'deleted';
    },

    /** What is kept about the person, as JSON: profile, linked services, apps, sessions and recent sign-ins. */
    async exportData(userId: string) {
      const [user, linked, apps, list, signIns] = await Promise.all([
        users.get(userId),
        identities(userId),
        appGrants(userId),
        sessions(userId, null),
        audit.list({ action: 'login.succeeded', target: userId, limit: 50, offset: 0 }),
      ]);
      const appNames = new Map(apps.map((g) => [g.clientId, g.clientName]));
      const seen = await devices.of(list.map((s) => s.uid));
      return {
        exportedAt: new Date().toISOString(),
        profile: { id: user.id, email: user.email, emailVerified: user.emailVerified, name: user.name, attributes: user.attributes, hasPassword: user.hasPassword, createdAt: user.createdAt, updatedAt: user.updatedAt },
        linkedSignInServices: linked.map((i) => ({ service: i.service, issuer: i.issuer, subject: i.subject, email: i.email, emailVerified: i.emailVerified, linkedAt: i.linkedAt, lastSignInAt: i.lastSignInAt })),
        connectedApps: apps.map((g) => ({ clientId: g.clientId, name: g.clientName, scopes: g.scopes, apis: g.apis, grantedAt: g.createdAt, expiresAt: g.expiresAt })),
        sessions: list.map((s) => ({ browser: s.browser, os: s.os, userAgent: seen.get(s.uid)?.userAgent ?? null, ip: s.ip, signedInAt: s.signedInAt, lastSeenAt: s.lastSeenAt })),
        recentSignIns: signIns.items.map((e) => {
          const clientId = typeof e.details?.clientId === 'string' ? e.details.clientId : null;
          const provider = typeof e.details?.provider === 'string' ? e.details.provider : null;
          return { at: e.at, ip: e.ip, app: clientId === ACCOUNT_CLIENT_ID ? 'account page' : clientId ? (appNames.get(clientId) ?? clientId) : null, method: provider ? `upstream:${provider}` : e.details?.method === 'passkey' ? 'passkey' : 'password' };
        }),
      };
    },
  };
}

export type SelfService = ReturnType<typeof createSelfService>;
