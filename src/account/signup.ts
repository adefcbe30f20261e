import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AuditService } from '../audit/service.ts';
import type { PrismaClient } from '../db/index.ts';
import { isUniqueViolation } from '../lib/errors.ts';
import { composeMail } from '../mail/compose.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Templates } from '../templates/engine.ts';
import type { LoginThrottle } from '../users/throttle.ts';
import { normalizeEmail, type PasswordProblem, type UserService } from '../users/service.ts';
import type { EmailVerification } from './verification.ts';

/** Who may create an account: admins only, people an admin invited, or anyone. */
export type SignUpMode = 'closed' | 'invite' | 'open';

/** Notices to an address that already has an account: at most this many an hour, whoever signs up with it. */
const NOTICES_PER_HOUR = 3;

const NAME_MAX = 200;
const isEmail = z.email();

/** What is wrong with a sign-up form, field by field (the page says it in the person's words). */
export interface SignUpProblems {
  email?: 'invalid' | 'domain';
  name?: 'missing' | 'too_long';
  password?: PasswordProblem;
  terms?: 'required';
}

export interface SignUpInput {
  email: string;
  name: string;
  password: string;
  acceptedTerms: boolean;
  ip: string;
  /** The language of the pages, and of the messages this sign-up sends. */
  lang: string;
  clientId: string;
  /** The sign-in the person signs up in (it waits for the address to be verified). */
  interaction: string;
}

/**
 * `created` and `exists` must read the same to the person: the page shown for both is the same
 * ("check your email"), and the owner of an existing account is told by email instead.
 */
export type SignUpOutcome =
  | { kind: 'closed' }
  | { kind: 'invalid'; problems: SignUpProblems; email: string; name: string }
  | { kind: 'throttled' }
  | { kind: 'created'; userId: string; email: string }
  | { kind: 'exists'; email: string };

/** A new account's name: trimmed; what is wrong with it, if anything. */
export function checkName(raw: string): { name: string; problem?: 'missing' | 'too_long' } {
  const name = raw.normalize('NFC').trim();
  if (!name) return { name, problem: 'missing' };
  return name.length > NAME_MAX ? { name, problem: 'too_long' } : { name };
}

/**
 * Signing up from the sign-in page (SIGNUP=open): an account with a password, an address that
 * is then verified by email. Sign-ups are counted per client address; an address that already
 * has an account is answered like a new one, and its owner is told by email. Only
 * SIGNUP_EMAIL_DOMAINS' addresses may sign up, when it is set.
 */
export function createSignUp(deps: {
  prisma: PrismaClient;
  users: UserService;
  verification: EmailVerification;
  outbox: Outbox;
  templates: Templates;
  throttle: Pick<LoginThrottle, 'hit' | 'accountKey'>;
  audit: AuditService;
  policy: { mode: SignUpMode; emailDomains: readonly string[]; ipMaxPerHour: number; termsRequired: boolean };
}) {
  const { prisma, users, verification, outbox, templates, throttle, audit, policy } = deps;

  function problemsOf(input: SignUpInput): { problems: SignUpProblems; email: string; name: string } {
    const problems: SignUpProblems = {};
    const email = normalizeEmail(input.email).slice(0, 320);
    if (input.email.length > 320 || !isEmail.safeParse(email).success) problems.email = 'invalid';
    else if (policy.emailDomains.length && !policy.emailDomains.includes(email.slice(email.lastIndexOf('@') + 1))) problems.email = 'domain';
    const { name, problem } = checkName(input.name);
    if (problem) problems.name = problem;
    const password = users.passwordProblem(input.password);
    if (password) problems.password = password;
    if (policy.termsRequired && !input.acceptedTerms) problems.terms = 'required';
    return { problems, email, name };
  }

  /** The owner of an existing account is told that someone tried to sign up with its address (a few times an hour at most). */
  async function notifyOwner(user: { id: string; email: string }, input: SignUpInput) {
    if ((await throttle.hit(`signup-notice:${await throttle.accountKey(user.email)}`, 3600)) > NOTICES_PER_HOUR) return;
    await prisma.$transaction((tx) => outbox.enqueue(tx, composeMail(templates, { kind: 'account_exists', to: user.email, lang: input.lang })));
    outbox.wake();
    await audit.record({ actor: 'anonymous', ip: input.ip }, 'user.signup_existing', user.id, { clientId: input.clientId });
  }

  return {
    /** Whether the sign-in page offers to sign up. */
    offered: policy.mode === 'open',

    async signUp(input: SignUpInput): Promise<SignUpOutcome> {
      if (policy.mode !== 'open') return { kind: 'closed' };
      const { problems, email, name } = problemsOf(input);
      if (Object.keys(problems).length) return { kind: 'invalid', problems, email, name };
      if ((await throttle.hit(`signup-ip:${input.ip}`, 3600)) > policy.ipMaxPerHour) return { kind: 'throttled' };
      // Hashed whether or not the address has an account: both answers take the same time.
      const passwordHash = await users.hashPassword(input.password);
      const existing = await users.findByEmail(email);
      if (existing) {
        await notifyOwner(existing, input);
        return { kind: 'exists', email };
      }
      await verification.mayMail(email);
      let user: { id: string; email: string };
      try {
        user = await prisma.$transaction(async (tx) => {
          const created = await tx.user.create({
            data: { id: randomUUID(), email, name, passwordHash, emailVerified: false, termsAcceptedAt: policy.termsRequired ? new Date() : null },
            select: { id: true, email: true },
          });
          await verification.write(tx, created, input.lang, input.interaction);
          return created;
        });
      } catch (err) {
        // Signed up twice at once: the second reads like any existing address.
        if (!isUniqueViolation(err)) throw err;
        const other = await users.findByEmail(email);
        if (other) await notifyOwner(other, input);
        return { kind: 'exists', email };
      }
      outbox.wake();
      await audit.record({ actor: `user:${user.id}`, ip: input.ip }, 'user.signed_up', user.id, { clientId: input.clientId });
      return { kind: 'created', userId: user.id, email: user.email };
    },
  };
}

export type SignUp = ReturnType<typeof createSignUp>;
