import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { PrismaClient } from '../db/index.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import { decrypt, encrypt } from '../lib/crypto.ts';
import { conflict, StartupError } from '../lib/errors.ts';

/**
 * RS256 is what every OpenID Connect client expects for ID tokens; ES256 and EdDSA are
 * offered to APIs that want smaller, faster-to-sign access tokens.
 */
const KEY_SPECS = [
  { alg: 'RS256', generate: () => generateKeyPair('RS256', { modulusLength: 2048, extractable: true }) },
  { alg: 'ES256', generate: () => generateKeyPair('ES256', { extractable: true }) },
  { alg: 'EdDSA', generate: () => generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true }) },
] as const;

type Alg = (typeof KEY_SPECS)[number]['alg'];

const PURPOSE = 'signing-keys';
/** Clock skew allowed for when a retired key's last tokens expire. */
const SKEW_SECONDS = 60;
const STATE_ORDER: Record<string, number> = { active: 0, next: 1, retired: 2 };

class KeyDecryptionError extends StartupError {
  override name = 'KeyDecryptionError';

  constructor(message: string) {
    super('key_decryption_failed', message);
  }
}

export interface SigningKeySummary {
  kid: string;
  alg: string;
  state: string;
  createdAt: Date;
  activatesAt: Date | null;
  retiredAt: Date | null;
  removeAfter: Date | null;
}

export interface KeyPolicy {
  /** How long a new key is published before it signs: at least the JWKS cache time of resource servers. */
  prepublicationSeconds: number;
  /** The longest lifetime of anything the keys sign (ID tokens, JWT access tokens), in seconds. */
  maxTokenLifetime(): Promise<number>;
}

const summary = { kid: true, alg: true, state: true, createdAt: true, activatesAt: true, retiredAt: true, removeAfter: true } as const;

export function createKeyService(prisma: PrismaClient, keyEncryptionSecret: string | undefined, policy: KeyPolicy, audit?: AuditService) {
  const seal = (jwk: JWK) => (keyEncryptionSecret ? encrypt(JSON.stringify(jwk), keyEncryptionSecret, PURPOSE) : JSON.stringify(jwk));

  async function generate(alg: Alg, state: 'active' | 'next', activatesAt: Date | null) {
    const spec = KEY_SPECS.find((s) => s.alg === alg)!;
    const { privateKey, publicKey } = await spec.generate();
    const kid = randomUUID();
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    await prisma.signingKey.create({
      data: { kid, alg, publicJwk: JSON.stringify(publicJwk), privateJwk: seal(privateJwk), encrypted: Boolean(keyEncryptionSecret), state, activatesAt },
    });
    return kid;
  }

  /** The first start: an active key for every algorithm that has none (nothing was signed yet). */
  async function ensureKeys() {
    const existing = await prisma.signingKey.findMany({ where: { state: { in: ['active', 'next'] } }, select: { alg: true } });
    for (const spec of KEY_SPECS) {
      if (!existing.some((k) => k.alg === spec.alg)) await generate(spec.alg, 'active', null);
    }
  }

  /**
   * Moves keys along their life: a `next` key whose time has come signs from now on, the key it
   * replaces is retired (still published until every token it signed has expired), and retired
   * keys past that point are deleted. Idempotent, so every instance may run it.
   */
  async function advance(now = new Date()): Promise<boolean> {
    let changed = false;
    const due = await prisma.signingKey.findMany({ where: { state: 'next', activatesAt: { lte: now } } });
    if (due.length) {
      const removeAfter = new Date(now.getTime() + ((await policy.maxTokenLifetime()) + SKEW_SECONDS) * 1000);
      for (const key of due) {
        // Two idempotent steps, no transaction: between them both keys are active, and the newer
        // one signs (see loadPrivateJwks); every instance may run this at the same time.
        await prisma.signingKey.updateMany({ where: { kid: key.kid, state: 'next' }, data: { state: 'active' } });
        await prisma.signingKey.updateMany({ where: { alg: key.alg, state: 'active', kid: { not: key.kid }, createdAt: { lt: key.createdAt } }, data: { state: 'retired', retiredAt: now, removeAfter } });
      }
      changed = true;
    }
    const { count } = await prisma.signingKey.deleteMany({ where: { state: 'retired', removeAfter: { lte: now } } });
    return changed || count > 0;
  }

  return {
    /**
     * The private JWKS for the provider: active keys first (the first key of an algorithm is the
     * one that signs), then the published-only ones. Keys stored in plaintext are encrypted in
     * place once KEY_ENCRYPTION_SECRET is configured.
     */
    async loadPrivateJwks(): Promise<JWK[]> {
      await ensureKeys();
      await advance();
      const rows = await prisma.signingKey.findMany({ orderBy: { createdAt: 'desc' } });
      rows.sort((a, b) => (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) || KEY_SPECS.findIndex((s) => s.alg === a.alg) - KEY_SPECS.findIndex((s) => s.alg === b.alg));
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
      return jwks;
    },

    /** A fingerprint of the key set: when it changes, every instance reloads its keys. */
    async version(): Promise<string> {
      const rows = await prisma.signingKey.findMany({ select: { kid: true, state: true }, orderBy: { kid: 'asc' } });
      return rows.map((r) => `${r.kid}:${r.state}`).join(',');
    },

    advance,

    /**
     * Starts a rotation: a new key per algorithm, published now, signing only after the
     * pre-publication period, so that resource servers have it cached before they meet it.
     */
    async rotate(who: Actor): Promise<SigningKeySummary[]> {
      if (await prisma.signingKey.count({ where: { state: 'next' } })) throw conflict('a rotation is already under way: its keys are published and not yet signing');
      const activatesAt = new Date(Date.now() + policy.prepublicationSeconds * 1000);
      const kids: string[] = [];
      for (const spec of KEY_SPECS) kids.push(await generate(spec.alg, 'next', activatesAt));
      await audit?.record(who, 'keys.rotated', null, { kids, activatesAt: activatesAt.toISOString() });
      return prisma.signingKey.findMany({ where: { kid: { in: kids } }, select: summary });
    },

    /** When the newest active key was made, to rotate on a schedule. */
    async newestActiveAt(): Promise<Date | null> {
      const newest = await prisma.signingKey.findFirst({ where: { state: { in: ['active', 'next'] } }, orderBy: { createdAt: 'desc' }, select: { createdAt: true } });
      return newest?.createdAt ?? null;
    },

    async list(): Promise<SigningKeySummary[]> {
      return prisma.signingKey.findMany({ select: summary, orderBy: { createdAt: 'asc' } });
    },
  };
}

export type KeyService = ReturnType<typeof createKeyService>;
