import type { Config } from '../config.ts';
import type { PrismaClient } from '../db/index.ts';
import { randomToken } from './crypto.ts';
import { isUniqueViolation } from './errors.ts';

/**
 * Outside production, secrets that were not configured are generated once and kept in the
 * database, so that every instance on the same database shares them and restarts keep them.
 */
async function persistedSecret(prisma: PrismaClient, name: string): Promise<string> {
  const existing = await prisma.serverSecret.findUnique({ where: { name } });
  if (existing) return existing.value;
  try {
    return (await prisma.serverSecret.create({ data: { name, value: randomToken(32) } })).value;
  } catch (err) {
    // Another instance created it first: use theirs.
    if (!isUniqueViolation(err)) throw err;
    return (await prisma.serverSecret.findUniqueOrThrow({ where: { name } })).value;
  }
}

/** The cookie signing keys: configured (COOKIE_SECRETS), or one generated and kept in the database. */
export async function cookieSecrets(config: Pick<Config, 'cookieSecrets'>, prisma: PrismaClient): Promise<readonly string[]> {
  return config.cookieSecrets ?? [await persistedSecret(prisma, 'cookie-secret')];
}

/**
 * The data key (upstream client secrets, TOTP secrets, mail bodies, pseudonyms, passkey
 * challenges): KEY_ENCRYPTION_SECRET, or one generated and kept in the database, read once per
 * process; a failed read is tried again at the next call.
 */
export function dataKey(config: Pick<Config, 'keyEncryptionSecret'>, prisma: PrismaClient): () => Promise<string> {
  const configured = config.keyEncryptionSecret;
  if (configured) return () => Promise.resolve(configured);
  let key: Promise<string> | undefined;
  return () => {
    key ??= persistedSecret(prisma, 'data-encryption-key').catch((err: unknown) => {
      key = undefined;
      throw err;
    });
    return key;
  };
}
