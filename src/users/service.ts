import { randomUUID } from 'node:crypto';
import argon2 from 'argon2';
import commonPassword from 'common-password-checker';
import { z } from 'zod';
import { containsText, likeSafePiece, LITERAL_SEARCH_SCAN_LIMIT, type Dialect, type PrismaClient, type User } from '../db/index.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import type { GrantService, GrantView } from '../grants/service.ts';
import type { ConfigCache } from '../lib/config-cache.ts';
import { attributesSchema, parseAttributes } from '../lib/claims.ts';
import { sha256 } from '../lib/crypto.ts';
import { badRequest, conflict, isUniqueViolation, notFound } from '../lib/errors.ts';
import { parseInput } from '../lib/validation.ts';

/** argon2id cost; OWASP's baseline (19 MiB, 2 passes, 1 lane) is the default and the floor. */
export interface PasswordPolicy {
  memoryKib: number;
  iterations: number;
  parallelism: number;
  minLength: number;
}

const PASSWORD_MIN_LENGTH = 8;
const PASSWORD_MAX_LENGTH = 1024;

/** Visually identical variants of an address must never become two accounts. */
export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

const emailSchema = z
  .string()
  .max(320, 'must be at most 320 characters')
  .transform(normalizeEmail)
  .pipe(z.email('must be a valid email address'));

/** NFC only: no case folding and no truncation, so what the user typed is what is hashed. */
const passwordSchema = z
  .string()
  .max(PASSWORD_MAX_LENGTH * 4, `must be at most ${PASSWORD_MAX_LENGTH} characters`)
  .transform((p) => p.normalize('NFC'))
  .pipe(
    z
      .string()
      .min(PASSWORD_MIN_LENGTH, `must be at least ${PASSWORD_MIN_LENGTH} characters`)
      .max(PASSWORD_MAX_LENGTH, `must be at most ${PASSWORD_MAX_LENGTH} characters`),
  );

const nameSchema = z.string().trim().min(1, 'must not be empty').max(200);

export const createUserSchema = z
  .object({
    email: emailSchema,
    password: passwordSchema.optional(),
    name: nameSchema.optional(),
    emailVerified: z.boolean().default(false),
  })
  .strict();

export const updateUserSchema = z
  .object({
    email: emailSchema,
    name: nameSchema.nullable(),
    emailVerified: z.boolean(),
    attributes: attributesSchema.describe('custom attributes: a JSON object (at most 4096 bytes as JSON, nested at most 5 levels) that claim mappings put into tokens; replaces the whole object'),
  })
  .partial()
  .strict();

export type CreateUserInput = z.input<typeof createUserSchema>;
export type UpdateUserInput = z.input<typeof updateUserSchema>;

/** What the admin API and the CLI show of a user: never the password hash. */
export interface UserView {
  id: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  disabled: boolean;
  hasPassword: boolean;
  /** When the person accepted the terms of use at sign-up or on their invitation (TERMS_URL), if they were asked. */
  termsAcceptedAt: Date | null;
  /** Custom attributes (an object), which claim mappings put into tokens. */
  attributes: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

function toUserView(user: User): UserView {
  const { passwordHash, attributes, ...rest } = user;
  return { ...rest, attributes: parseAttributes(attributes), hasPassword: Boolean(passwordHash) };
}

export interface UserListQuery {
  /** Matches a part of the email or the name. */
  q?: string;
  limit: number;
  offset: number;
}

/**
 * What a browser that signed in to an account keeps in its device cookie: the account, and a
 * stamp of its password, so that a new password (a reset, a change) makes every such browser a
 * stranger again.
 */
const deviceKey = (user: Pick<User, 'id' | 'passwordHash'>) => `${user.id}.${sha256(user.passwordHash ?? '').slice(0, 16)}`;

/** Why a new password is refused. */
export type PasswordProblem = { problem: 'too_short'; min: number } | { problem: 'too_long'; max: number } | { problem: 'common' };

/**
 * An administrator acting in person (the console) cannot disable or delete their own account
 * there: one click would lock them out, and perhaps everyone out. Another administrator, the CLI,
 * or the account page's own deletion can.
 */
function refuseSelf(id: string, who: Actor, what: 'disable' | 'delete'): void {
  if (who.actor === `user:${id}`) throw conflict(`you cannot ${what} your own account here: ask another administrator, or use the idp CLI`);
}

export function createUserService(
  prisma: PrismaClient,
  grants: GrantService,
  audit: AuditService,
  cache: ConfigCache,
  dialect: Dialect,
  policy: PasswordPolicy,
) {
  const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: policy.memoryKib, timeCost: policy.iterations, parallelism: policy.parallelism } as const;

  /** Rules for new passwords (login never re-checks them): configured length, not a common one. */
  const passwordProblem = (password: string): PasswordProblem | null => {
    if (password.length < policy.minLength) return { problem: 'too_short', min: policy.minLength };
    if (password.length > PASSWORD_MAX_LENGTH) return { problem: 'too_long', max: PASSWORD_MAX_LENGTH };
    if (commonPassword(password)) return { problem: 'common' };
    return null;
  };
  const checkNewPassword = (password: string | undefined) => {
    const found = password === undefined ? null : passwordProblem(password);
    if (found?.problem === 'too_short') throw badRequest(`password: must be at least ${found.min} characters`);
    if (found?.problem === 'too_long') throw badRequest(`password: must be at most ${found.max} characters`);
    if (found?.problem === 'common') throw badRequest('password: is one of the most common passwords (found in leaked-password lists); choose another');
  };

  /**
   * The user when `password` (NFC) matches their hash and they are enabled. A password that
   * verified is re-hashed when the configured cost changed since it was stored.
   */
  async function checkPassword(user: User, hash: string, password: string): Promise<User | null> {
    if (!(await argon2.verify(hash, password)) || user.disabled) return null;
    if (argon2.needsRehash(hash, ARGON2_OPTIONS)) {
      await prisma.user.updateMany({ where: { id: user.id, passwordHash: hash }, data: { passwordHash: await argon2.hash(password, ARGON2_OPTIONS) } });
      await cache.changed();
    }
    return user;
  }

  // Verified against when the email is unknown, so that an unknown account costs the same time
  // as a wrong password and does not reveal which addresses have accounts.
  let dummyHash: Promise<string> | undefined;

  async function find(id: string): Promise<User> {
    const user = await prisma.user.findUnique({ where: { id } });
    if (!user) throw notFound(`no user with id ${id}`);
    return user;
  }

  const duplicate = (email: string) => conflict(`a user with email ${email} already exists`);

  return {
    async create(input: CreateUserInput, who: Actor): Promise<UserView> {
      const data = parseInput(createUserSchema, input);
      checkNewPassword(data.password);
      if (await prisma.user.findUnique({ where: { email: data.email }, select: { id: true } })) throw duplicate(data.email);
      const passwordHash = data.password ? await argon2.hash(data.password, ARGON2_OPTIONS) : null;
      try {
        const user = await prisma.user.create({
          data: { id: randomUUID(), email: data.email, passwordHash, name: data.name ?? null, emailVerified: data.emailVerified },
        });
        await audit.record(who, 'user.created', user.id, { email: user.email });
        return toUserView(user);
      } catch (err) {
        if (isUniqueViolation(err)) throw duplicate(data.email);
        throw err;
      }
    },

    async list(query: UserListQuery): Promise<{ items: UserView[]; total: number }> {
      const q = query.q?.trim();
      const { piece, exact } = likeSafePiece(q ?? '');
      const where = piece ? { OR: [{ email: containsText(dialect, piece.toLowerCase()) }, { name: containsText(dialect, piece) }] } : {};
      if (q && !exact) {
        const needle = q.toLowerCase();
        const rows = await prisma.user.findMany({ where, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: LITERAL_SEARCH_SCAN_LIMIT });
        const matched = rows.filter((u) => u.email.includes(needle) || (u.name ?? '').toLowerCase().includes(needle));
        return { items: matched.slice(query.offset, query.offset + query.limit).map(toUserView), total: matched.length };
      }
      const [rows, total] = await Promise.all([
        prisma.user.findMany({ where, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: query.limit, skip: query.offset }),
        prisma.user.count({ where }),
      ]);
      return { items: rows.map(toUserView), total };
    },

    async get(id: string): Promise<UserView> {
      return toUserView(await find(id));
    },

    async update(id: string, patch: UpdateUserInput, who: Actor): Promise<UserView> {
      const data = parseInput(updateUserSchema, patch);
      const current = await find(id);
      if (data.email && data.email !== current.email && (await prisma.user.findUnique({ where: { email: data.email }, select: { id: true } }))) {
        throw duplicate(data.email);
      }
      try {
        const user = await prisma.user.update({
          where: { id },
          // A new address is unverified unless the admin says otherwise.
          data: {
            ...data,
            ...(data.attributes ? { attributes: JSON.stringify(data.attributes) } : {}),
            ...(data.email && data.email !== current.email && data.emailVerified === undefined ? { emailVerified: false } : {}),
          },
        });
        await cache.changed();
        await audit.record(who, 'user.updated', id, { fields: Object.keys(data) });
        return toUserView(user);
      } catch (err) {
        if (isUniqueViolation(err)) throw duplicate(data.email!);
        throw err;
      }
    },

    /** A disabled user cannot sign in, and their sessions and tokens end at once. */
    async setDisabled(id: string, disabled: boolean, who: Actor): Promise<UserView> {
      if (disabled) refuseSelf(id, who, 'disable');
      await find(id);
      const user = await prisma.user.update({ where: { id }, data: { disabled } });
      await cache.changed();
      if (disabled) await grants.revokeAllForUser(id, { sessions: true });
      await audit.record(who, disabled ? 'user.disabled' : 'user.enabled', id);
      return toUserView(user);
    },

    async delete(id: string, who: Actor): Promise<void> {
      refuseSelf(id, who, 'delete');
      await find(id);
      await grants.revokeAllForUser(id, { sessions: true });
      await prisma.user.deleteMany({ where: { id } });
      await cache.changed();
      await audit.record(who, 'user.deleted', id);
    },

    /** A new password signs the user out everywhere: sessions and refresh tokens end. */
    async setPassword(id: string, password: string, who: Actor): Promise<void> {
      const parsed = parseInput(z.object({ password: passwordSchema }), { password });
      checkNewPassword(parsed.password);
      await find(id);
      await prisma.user.update({ where: { id }, data: { passwordHash: await argon2.hash(parsed.password, ARGON2_OPTIONS) } });
      await cache.changed();
      await grants.revokeAllForUser(id, { sessions: true });
      await audit.record(who, 'user.password_set', id);
    },

    /** What is wrong with a new password (NFC), for a page to say in its own words; null when nothing. */
    passwordProblem: (password: string) => passwordProblem(password.normalize('NFC')),

    /** The hash to store for a new password that passwordProblem accepted. */
    hashPassword: (password: string) => argon2.hash(password.normalize('NFC'), ARGON2_OPTIONS),

    /** After a password was changed outside setPassword (a reset): every instance forgets the user; every session and refresh token ends. */
    async passwordChanged(id: string): Promise<void> {
      await cache.changed();
      await grants.revokeAllForUser(id, { sessions: true });
    },

    async listGrants(id: string): Promise<GrantView[]> {
      await find(id);
      return grants.listForUser(id);
    },

    async revokeGrant(id: string, grantId: string, who: Actor): Promise<void> {
      await find(id);
      if (!(await grants.revoke(id, grantId))) throw notFound(`user ${id} holds no grant ${grantId}`);
      await audit.record(who, 'grant.revoked', grantId, { userId: id });
    },

    /** Revokes every grant of the user and the tokens issued under them; returns how many grants. */
    async revokeAllGrants(id: string, who: Actor): Promise<number> {
      await find(id);
      const count = await grants.revokeAllForUser(id);
      await audit.record(who, 'grant.revoked', id, { userId: id, all: true, count });
      return count;
    },

    /** Signs the user out of every browser session; returns how many sessions ended. */
    async revokeSessions(id: string, who: Actor): Promise<number> {
      await find(id);
      const count = await grants.revokeSessions(id);
      await audit.record(who, 'session.revoked', id, { count });
      return count;
    },

    /** The account with this (normalized) email, enabled or not, if any. */
    findByEmail(email: string): Promise<User | null> {
      return prisma.user.findUnique({ where: { email: normalizeEmail(email) } });
    },

    /** The account with this email, if any: its id, and the key a browser it signed in on holds (the trusted-device check). */
    async accountForEmail(email: string): Promise<{ id: string; deviceKey: string } | null> {
      const user = await prisma.user.findUnique({ where: { email: normalizeEmail(email) }, select: { id: true, passwordHash: true } });
      return user && { id: user.id, deviceKey: deviceKey(user) };
    },

    deviceKey,

    /** The key of an enabled account by id, read from the database (never the cache): a new password makes it another. */
    async currentDeviceKey(id: string): Promise<string | null> {
      const user = await prisma.user.findUnique({ where: { id }, select: { id: true, passwordHash: true, disabled: true } });
      return user && !user.disabled ? deviceKey(user) : null;
    },

    /**
     * The enabled user `id`, read on every token, userinfo and page request of a signed-in user:
     * served from the process's cache (see ConfigCache). Sign-in itself always reads the database.
     */
    async findActive(id: string): Promise<User | null> {
      const user = await cache.get(`user:${id}`, () => prisma.user.findUnique({ where: { id } }));
      return user && !user.disabled ? user : null;
    },

    /** The enabled user `id` when `password` is theirs (proof of the account, e.g. before linking). */
    async verifyPassword(id: string, password: string): Promise<User | null> {
      const user = await prisma.user.findUnique({ where: { id } });
      const normalized = password.normalize('NFC');
      if (!user?.passwordHash || normalized.length > PASSWORD_MAX_LENGTH) return null;
      return checkPassword(user, user.passwordHash, normalized);
    },

    /**
     * Returns the user when the email and password match an enabled account with a password.
     * Every failure takes the same path and (statistically) the same time.
     */
    async authenticate(email: string, password: string): Promise<User | null> {
      const normalizedPassword = password.normalize('NFC');
      if (normalizedPassword.length > PASSWORD_MAX_LENGTH) return null;
      const user = await prisma.user.findUnique({ where: { email: normalizeEmail(email) } });
      if (!user?.passwordHash) {
        dummyHash ??= argon2.hash(randomUUID(), ARGON2_OPTIONS);
        await argon2.verify(await dummyHash, normalizedPassword);
        return null;
      }
      return checkPassword(user, user.passwordHash, normalizedPassword);
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
