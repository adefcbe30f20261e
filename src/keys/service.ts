import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { PrismaClient } from '../db/index.ts';
import { decrypt, encrypt } from '../lib/crypto.ts';

/**
 * RS256 is what every OpenID Connect client expects for ID tokens; ES256 and EdDSA are
 * offered to APIs that want smaller, faster-to-sign access tokens.
 */
const KEY_SPECS = [
  { alg: 'RS256', generate: () => generateKeyPair('RS256', { modulusLength: 2048, extractable: true }) },
  { alg: 'ES256', generate: () => generateKeyPair('ES256', { extractable: true }) },
  { alg: 'EdDSA', generate: () => generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true }) },
] as const;

const PURPOSE = 'signing-keys';

export class KeyDecryptionError extends Error {
  override name = 'KeyDecryptionError';
}

export interface SigningKeySummary {
  kid: string;
  alg: string;
  state: string;
  createdAt: Date;
}

export function createKeyService(prisma: PrismaClient, keyEncryptionSecret: string | undefined) {
  const seal = (jwk: JWK) => (keyEncryptionSecret ? encrypt(JSON.stringify(jwk), keyEncryptionSecret, PURPOSE) : JSON.stringify(jwk));

  async function generate(alg: (typeof KEY_SPECS)[number]['alg']) {
    const spec = KEY_SPECS.find((s) => s.alg === alg)!;
    const { privateKey, publicKey } = await spec.generate();
    const kid = randomUUID();
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    await prisma.signingKey.create({
      data: { kid, alg, publicJwk: JSON.stringify(publicJwk), privateJwk: seal(privateJwk), encrypted: Boolean(keyEncryptionSecret) },
    });
  }

  return {
    /**
     * The private JWKS for the provider. Missing algorithms get a key on first start; keys stored
     * in plaintext are encrypted in place once KEY_ENCRYPTION_SECRET is configured.
     */
    async loadPrivateJwks(): Promise<JWK[]> {
      const existing = await prisma.signingKey.findMany({ where: { state: 'active' }, select: { alg: true } });
      for (const spec of KEY_SPECS) {
        if (!existing.some((k) => k.alg === spec.alg)) await generate(spec.alg);
      }
      const rows = await prisma.signingKey.findMany({ where: { state: 'active' }, orderBy: { createdAt: 'desc' } });
      const jwks: JWK[] = [];
      for (const row of rows) {
        if (row.encrypted && !keyEncryptionSecret) {
          throw new KeyDecryptionError('signing keys are encrypted at rest but KEY_ENCRYPTION_SECRET is not set');
        }
        let plain: string;
        try {
          plain = row.encrypted ? decrypt(row.privateJwk, keyEncryptionSecret!, PURPOSE) : row.privateJwk;
        } catch {
          throw new KeyDecryptionError('signing keys cannot be decrypted: KEY_ENCRYPTION_SECRET differs from the one they were encrypted with');
        }
        const jwk = JSON.parse(plain) as JWK;
        if (!row.encrypted && keyEncryptionSecret) {
          await prisma.signingKey.update({ where: { kid: row.kid }, data: { privateJwk: seal(jwk), encrypted: true } });
        }
        jwks.push(jwk);
      }
      // The first key of each algorithm signs: RS256 first so that it is the default everywhere.
      return jwks.sort((a, b) => KEY_SPECS.findIndex((s) => s.alg === a.alg) - KEY_SPECS.findIndex((s) => s.alg === b.alg));
    },

    async list(): Promise<SigningKeySummary[]> {
      return prisma.signingKey.findMany({ select: { kid: true, alg: true, state: true, createdAt: true }, orderBy: { createdAt: 'asc' } });
    },
  };
}

export type KeyService = ReturnType<typeof createKeyService>;
