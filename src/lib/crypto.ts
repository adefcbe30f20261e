import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from './errors.ts';

/** A URL-safe random string carrying `bytes` bytes of entropy. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A random identifier of letters and digits only: safe in URLs, shells and command lines (an id
 * starting with "-" would read as an option). Rejection sampling keeps it uniform.
 */
export function randomId(length = 22): string {
  let id = '';
  while (id.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && id.length < length) id += ALPHANUMERIC[byte % 62];
    }
  }
  return id;
}

/** SHA-256 of a string, base64url (stored secret hashes, a DPoP proof's `ath`). */
export const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('base64url');

/**
 * Client secrets are 256-bit random values, so a single SHA-256 is enough to make the stored
 * value useless to whoever reads the database (no dictionary to try), and it keeps the token
 * endpoint fast. Passwords, which people choose, use argon2id instead.
 */
export function hashSecret(secret: string): string {
  return `${HASH_PREFIX}${sha256(secret)}`;
}

const HASH_PREFIX = 'sha256:';

export const isSecretHash = (value: string) => value.startsWith(HASH_PREFIX);

/** Whether two secrets are equal, in time that does not depend on where they differ. */
export function secretEquals(presented: string, expected: string): boolean {
  return verifySecret(presented, hashSecret(expected));
}

export function verifySecret(presented: string, storedHash: string): boolean {
  const expected = Buffer.from(storedHash, 'utf8');
  const actual = Buffer.from(hashSecret(presented), 'utf8');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

const ENCRYPTION_PREFIX = 'v1';

function encryptionKey(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'idp-at-rest', purpose, 32));
}

/** AES-256-GCM with a key derived from `secret` for one `purpose`; the output is self-describing. */
export function encrypt(plaintext: string, secret: string, purpose: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', encryptionKey(secret, purpose), iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [ENCRYPTION_PREFIX, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
}

class DecryptionError extends AppError {
  override name = 'DecryptionError';

  constructor(message: string) {
    super(500, 'decryption_failed', message, { expose: false });
  }
}

export function decrypt(sealed: string, secret: string, purpose: string): string {
  const [version, iv, tag, ciphertext] = sealed.split('.');
  if (version !== ENCRYPTION_PREFIX || !iv || !tag || !ciphertext) throw new DecryptionError('unrecognised encrypted value');
  try {
    const decipher = createDecipheriv('aes-256-gcm', encryptionKey(secret, purpose), Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new DecryptionError('the value cannot be decrypted with this secret');
  }
}

/**
 * A stable stand-in for a value that must not be stored as typed (an identifier someone typed,
 * which may be a password typed into the wrong field): HMAC-SHA256 under a key derived from
 * `secret` for one `purpose`, 128 bits, base64url. Equal values give equal pseudonyms, so they
 * can still be counted and correlated; without the secret, nothing can be learned from one.
 */
export function pseudonym(value: string, secret: string, purpose: string): string {
  return keyedTag(value, secret, `pseudonym:${purpose}`).toString('base64url');
}

/** HMAC-SHA256 of `value` under a key derived from `secret` for one `purpose`, 128 bits: made and checked only by the secret's holders. */
export function keyedTag(value: string | Uint8Array, secret: string, purpose: string): Buffer {
  return createHmac('sha256', encryptionKey(secret, purpose)).update(value).digest().subarray(0, 16);
}
