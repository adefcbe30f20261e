import { randomUUID } from 'node:crypto';
import argon2 from 'argon2';
import { z } from 'zod';
import type { PrismaClient } from '../db/index.ts';
import type { User } from '../generated/prisma/client.ts';
import { conflict, isUniqueViolation } from '../lib/errors.ts';
import { parseInput } from '../lib/validation.ts';

/** OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. */
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19 * 1024, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 1024;

/** Visually identical variants of an address must never become two accounts. */
export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

export const emailSchema = z
  .string()
  .max(320, 'must be at most 320 characters')
  .transform(normalizeEmail)
  .pipe(z.email('must be a valid email address'));

/** NFC only: no case folding and no truncation, so what the user typed is what is hashed. */
export const passwordSchema = z
  .string()
  .transform((p) => p.normalize('NFC'))
  .pipe(
    z
      .string()
      .min(PASSWORD_MIN_LENGTH, `must be at least ${PASSWORD_MIN_LENGTH} characters`)
      .max(PASSWORD_MAX_LENGTH, `must be at most ${PASSWORD_MAX_LENGTH} characters`),
  );

const createUserInput = z.object({
  email: emailSchema,
  password: passwordSchema.optional(),
  name: z.string().trim().min(1).max(200).optional(),
  emailVerified: z.boolean().default(false),
});

export type CreateUserInput = z.input<typeof createUserInput>;

export type PublicUser = Pick<User, 'id' | 'email' | 'name' | 'emailVerified' | 'disabled' | 'createdAt' | 'updatedAt'>;

export function toPublicUser(user: User): PublicUser {
  const { passwordHash: _hash, ...rest } = user;
  return rest;
}

export function createUserService(prisma: PrismaClient) {
  // Verified against when the email is unknown, so that an unknown account costs the same time
  // as a wrong password and does not reveal which addresses have accounts.
  let dummyHash: Promise<string> | undefined;

  return {
    async create(input: CreateUserInput): Promise<PublicUser> {
      const data = parseInput(createUserInput, input);
      if (await prisma.user.findUnique({ where: { email: data.email }, select: { id: true } })) {
        throw conflict(`a user with email ${data.email} already exists`);
      }
      const passwordHash = data.password ? await argon2.hash(data.password, ARGON2_OPTIONS) : null;
      try {
        const user = await prisma.user.create({
          data: { id: randomUUID(), email: data.email, passwordHash, name: data.name ?? null, emailVerified: data.emailVerified },
        });
        return toPublicUser(user);
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict(`a user with email ${data.email} already exists`);
        throw err;
      }
    },

    async findActive(id: string): Promise<User | null> {
      const user = await prisma.user.findUnique({ where: { id } });
      return user && !user.disabled ? user : null;
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
      const ok = await argon2.verify(user.passwordHash, normalizedPassword);
      return ok && !user.disabled ? user : null;
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
