import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Actor, AuditService } from '../audit/service.ts';
import type { PrismaClient } from '../db/index.ts';
import { badRequest, conflict, isUniqueViolation } from '../lib/errors.ts';
import { parseInput } from '../lib/validation.ts';
import { composeMail } from '../mail/compose.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Templates } from '../templates/engine.ts';
import { createUserSchema, type PasswordProblem, type UserService } from '../users/service.ts';
import { checkName } from './signup.ts';
import type { AccountTokens } from './tokens.ts';

/** Where an invitation's link leads: a page outside any sign-in. */
export const INVITATION_PATH = '/invitation';

/** How long an invitation's link works. */
const INVITATION_TTL_SECONDS = 7 * 24 * 3600;

/** What an admin gives: the address, and optionally the person's name and the language of the message. */
export const invitationSchema = createUserSchema
  .pick({ email: true, name: true })
  .extend({ locale: z.string().min(2).max(35).optional().describe('the language of the invitation (a language of the pages; default: DEFAULT_LOCALE)') })
  .strict();

export type InvitationInput = z.input<typeof invitationSchema>;

export interface InvitationView {
  email: string;
  name: string | null;
  expiresAt: Date;
}

export type InvitationState = { state: 'live'; email: string; name: string | null } | { state: 'accepted' } | { state: 'expired' } | { state: 'unknown' };

export type AcceptOutcome =
  | { kind: 'accepted'; userId: string; email: string }
  | { kind: 'invalid'; problems: { name?: 'missing' | 'too_long'; password?: PasswordProblem; terms?: 'required' }; name: string }
  | { kind: 'exists' }
  | { kind: 'spent' };

interface InvitationData {
  name?: string | null;
  lang?: string;
}

/**
 * Invitations: an admin invites an address (whatever SIGNUP says; refused when the address has
 * an account); the person follows the emailed link (`/invitation?token=…`, single use, 7 days)
 * to choose their name and password. The account is created verified: the link proved the address.
 */
export function createInvitations(deps: {
  prisma: PrismaClient;
  users: UserService;
  tokens: AccountTokens;
  outbox: Outbox;
  templates: Templates;
  audit: AuditService;
  issuer: string;
  termsRequired: boolean;
}) {
  const { prisma, users, tokens, outbox, templates, audit } = deps;
  const linkFor = (token: string) => `${deps.issuer}${INVITATION_PATH}?token=${token}`;
  const exists = (email: string) => conflict(`a user with email ${email} already exists`);

  return {
    /** Invites an address: a new link replaces any earlier one to the same address. */
    async invite(input: InvitationInput, who: Actor): Promise<InvitationView> {
      const data = parseInput(invitationSchema, input);
      const lang = data.locale ?? templates.catalogue.defaultLocale;
      if (!templates.catalogue.locales.includes(lang)) throw badRequest(`locale: must be one of ${templates.catalogue.locales.join(', ')}`);
      if (await users.findByEmail(data.email)) throw exists(data.email);
      const expiresAt = new Date(Date.now() + INVITATION_TTL_SECONDS * 1000);
      await prisma.$transaction(async (tx) => {
        const invitation: InvitationData = { name: data.name ?? null, lang };
        const { token } = await tokens.issue(tx, { purpose: 'invite', email: data.email, ttlSeconds: INVITATION_TTL_SECONDS, data: invitation });
        await outbox.enqueue(tx, composeMail(templates, { kind: 'invitation', to: data.email, lang, link: linkFor(token), vars: { count: INVITATION_TTL_SECONDS / 86400 } }));
      });
      outbox.wake();
      await audit.record(who, 'user.invited', data.email, { expiresAt: expiresAt.toISOString() });
      return { email: data.email, name: data.name ?? null, expiresAt };
    },

    /** What a link is: live (with the address and the name the admin gave), accepted, expired or replaced, or not ours. */
    async inspect(token: string): Promise<InvitationState> {
      const row = await tokens.lookup('invite', token);
      if (!row) return { state: 'unknown' };
      if (!row.usedAt && row.expiresAt.getTime() > Date.now()) return { state: 'live', email: row.email, name: (JSON.parse(row.data ?? '{}') as InvitationData).name ?? null };
      return { state: row.usedAt && (await users.findByEmail(row.email)) ? 'accepted' : 'expired' };
    },

    /** Accepts an invitation: the account, verified, with the name and password chosen (the link then stops working). */
    async accept(input: { token: string; name: string; password: string; acceptedTerms: boolean; ip: string }): Promise<AcceptOutcome> {
      const live = await tokens.find('invite', input.token);
      if (!live) return { kind: 'spent' };
      const { name, problem } = checkName(input.name);
      const problems: Extract<AcceptOutcome, { kind: 'invalid' }>['problems'] = {};
      if (problem) problems.name = problem;
      const password = users.passwordProblem(input.password);
      if (password) problems.password = password;
      if (deps.termsRequired && !input.acceptedTerms) problems.terms = 'required';
      if (Object.keys(problems).length) return { kind: 'invalid', problems, name };
      // An account made meanwhile: by this very invitation (a second submission), or otherwise.
      if (await users.findByEmail(live.email)) return (await tokens.find('invite', input.token)) ? { kind: 'exists' } : { kind: 'spent' };
      const passwordHash = await users.hashPassword(input.password);
      let user: { id: string; email: string } | null;
      try {
        user = await prisma.$transaction(async (tx) => {
          const row = await tokens.use(tx, 'invite', input.token);
          if (!row) return null;
          return tx.user.create({
            data: { id: randomUUID(), email: row.email, name, passwordHash, emailVerified: true, termsAcceptedAt: deps.termsRequired ? new Date() : null },
            select: { id: true, email: true },
          });
        });
      } catch (err) {
        if (isUniqueViolation(err)) return { kind: 'exists' };
        throw err;
      }
      if (!user) return { kind: 'spent' };
      await audit.record({ actor: `user:${user.id}`, ip: input.ip }, 'user.invitation_accepted', user.id, { email: user.email });
      return { kind: 'accepted', userId: user.id, email: user.email };
    },
  };
}

export type Invitations = ReturnType<typeof createInvitations>;
