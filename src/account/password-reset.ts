import type { Logger } from 'pino';
import type { Actor, AuditService } from '../audit/service.ts';
import { notFound } from '../lib/errors.ts';
import type { PrismaClient } from '../db/index.ts';
import { composeMail } from '../mail/compose.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Templates } from '../templates/engine.ts';
import type { LoginThrottle } from '../users/throttle.ts';
import type { PasswordProblem, UserService } from '../users/service.ts';
import type { AccountTokens } from './tokens.ts';

/** Reset requests one address may cause, and one client address may make, per window. */
const PER_ADDRESS = 3;
const PER_IP = 30;
const WINDOW_SECONDS = 15 * 60;

export type ResetOutcome = { kind: 'done'; userId: string; email: string; returnTo: string | null } | { kind: 'invalid' } | ({ kind: 'weak' } & PasswordProblem);

/**
 * "Forgot password?": a single-use link by email (30 minutes by default, only its hash stored);
 * the new password ends every session and refresh token of the account, makes its trusted
 * browsers strangers again, and is announced to the address. A request answers the same, at the
 * same speed, whether or not the address has an account: the work is done after the answer.
 */
export function createPasswordReset(deps: {
  prisma: PrismaClient;
  users: UserService;
  tokens: AccountTokens;
  outbox: Outbox;
  templates: Templates;
  throttle: Pick<LoginThrottle, 'hit' | 'accountKey'>;
  audit: AuditService;
  issuer: string;
  ttlSeconds: number;
  log?: Logger | undefined;
}) {
  const { prisma, users, tokens, outbox, templates, audit } = deps;
  const linkFor = (token: string) => `${deps.issuer}/password/reset/${token}`;

  async function send(email: string, lang: string, ip: string, returnTo: string | null): Promise<void> {
    // An address is sent at most a few links per window, whoever asks.
    if ((await deps.throttle.hit(`reset:${await deps.throttle.accountKey(email)}`, WINDOW_SECONDS)) > PER_ADDRESS) return;
    const user = await users.findByEmail(email);
    if (!user || user.disabled) return;
    await write(user, lang, returnTo);
    await audit.record({ actor: 'anonymous', ip }, 'user.password_reset_requested', user.id);
  }

  /** The link and its message, written together. */
  async function write(user: { id: string; email: string }, lang: string, returnTo: string | null): Promise<void> {
    await prisma.$transaction(async (tx) => {
      const { token } = await tokens.issue(tx, { purpose: 'reset_password', email: user.email, userId: user.id, ttlSeconds: deps.ttlSeconds, data: { returnTo, lang } });
      await outbox.enqueue(tx, composeMail(templates, { kind: 'password_reset', to: user.email, lang, link: linkFor(token), vars: { minutes: Math.round(deps.ttlSeconds / 60) } }));
    });
    outbox.wake();
  }

  return {
    /**
     * Asks for a link to `email`. False when this client address asked too often (the page says
     * so); otherwise true at once, whether or not the address has an account: the lookup and the
     * message happen after the answer. `returnTo`: the sign-in to continue afterwards.
     */
    async request(input: { email: string; lang: string; ip: string; returnTo: string | null }): Promise<boolean> {
      if ((await deps.throttle.hit(`reset-ip:${input.ip}`, WINDOW_SECONDS)) > PER_IP) return false;
      setImmediate(() => {
        send(input.email, input.lang, input.ip, input.returnTo).catch((err: unknown) => deps.log?.error({ err }, 'password reset request failed'));
      });
      return true;
    },

    /** An admin sends the user a link (in the default language); refused for a disabled account. */
    async sendByAdmin(userId: string, who: Actor): Promise<void> {
      const user = await users.findActive(userId);
      if (!user) throw notFound(`no enabled user ${userId}`);
      await write(user, templates.catalogue.defaultLocale, null);
      await audit.record(who, 'user.password_reset_requested', user.id, { byAdmin: true });
    },

    /** Whether a link still works (to show its form, or a page saying it expired). */
    async check(token: string): Promise<'live' | 'spent' | 'unknown'> {
      if (await tokens.find('reset_password', token)) return 'live';
      return (await tokens.isSpent('reset_password', token)) ? 'spent' : 'unknown';
    },

    /** Sets the new password with the link (which then stops working). */
    async complete(input: { token: string; password: string; ip: string }): Promise<ResetOutcome> {
      const live = await tokens.find('reset_password', input.token);
      if (!live?.userId) return { kind: 'invalid' };
      const problem = users.passwordProblem(input.password);
      if (problem) return { kind: 'weak', ...problem };
      const passwordHash = await users.hashPassword(input.password);
      const data = JSON.parse(live.data ?? '{}') as { returnTo?: string | null; lang?: string };
      const used = await prisma.$transaction(async (tx) => {
        const row = await tokens.use(tx, 'reset_password', input.token);
        if (!row?.userId) return null;
        // The link proved the address as well.
        const user = await tx.user.update({ where: { id: row.userId }, data: { passwordHash, emailVerified: true } });
        await tokens.revokeForUser(tx, user.id, ['reset_password']);
        await outbox.enqueue(tx, composeMail(templates, { kind: 'password_changed', to: user.email, lang: data.lang ?? templates.catalogue.defaultLocale }));
        return user;
      });
      if (!used) return { kind: 'invalid' };
      outbox.wake();
      await users.passwordChanged(used.id);
      await audit.record({ actor: `user:${used.id}`, ip: input.ip }, 'user.password_reset', used.id);
      return { kind: 'done', userId: used.id, email: used.email, returnTo: data.returnTo ?? null };
    },
  };
}

export type PasswordReset = ReturnType<typeof createPasswordReset>;
