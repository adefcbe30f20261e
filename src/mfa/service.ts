import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import type { Actor, AuditService } from '../audit/service.ts';
import type { PrismaClient } from '../db/index.ts';
import { decrypt, encrypt, hashSecret, randomId, verifySecret } from '../lib/crypto.ts';
import { conflict, notFound } from '../lib/errors.ts';
import { composeMail } from '../mail/compose.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Templates } from '../templates/engine.ts';

/** The key the TOTP secrets are encrypted with is derived for this purpose only. */
const PURPOSE = 'mfa-totp';
/** RFC 6238 as every authenticator app reads it: SHA-1, 6 digits, 30 seconds. */
const PERIOD = 30;
/** Codes of the step before and after the current one are accepted too (clock drift, RFC 6238 §5.2). */
const WINDOW = 1;
const RECOVERY_CODES = 10;
/** Crockford's base32 (no i, l, o, u), lower case: 16 characters are 80 bits. */
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const NAME_MAX = 100;
/** Confirmed authenticator apps per person. */
const MAX_FACTORS = 5;

export interface FactorView {
  id: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** An enrolment waiting for its first code: what the person copies into their authenticator app. */
export interface Enrolment {
  factorId: string;
  /** The secret in base32, as apps take it typed. */
  secret: string;
  /** The otpauth:// URI the QR code holds. */
  uri: string;
  /** The QR code, a data: URL of an SVG image. */
  qr: string;
}

/** What an administrator sees of a person's second factors: never a secret. */
export interface FactorsOverview {
  items: (FactorView & { type: string })[];
  recoveryCodesLeft: number;
}

export type Confirmation = { kind: 'confirmed'; recoveryCodes: string[] | null } | { kind: 'wrong' };

const normalizeRecoveryCode = (code: string) => code.toLowerCase().replace(/[\s-]/g, '');

function recoveryCode(): string {
  // 32 divides 256: every byte maps to one character without bias.
  const chars = [...randomBytes(16)].map((b) => RECOVERY_ALPHABET[b % 32]).join('');
  return chars.match(/.{4}/g)!.join('-');
}

/**
 * A second factor for people who opt in: authenticator apps (TOTP, RFC 6238) and single-use
 * recovery codes. The one owner of the MfaFactor and RecoveryCode tables. TOTP secrets are
 * encrypted at rest; recovery codes are kept only as hashes. Neither is ever logged or audited.
 */
export function createMfaService(deps: {
  prisma: PrismaClient;
  audit: AuditService;
  outbox: Outbox;
  templates: Templates;
  /** The data encryption key (KEY_ENCRYPTION_SECRET, or the generated one). */
  secret: () => Promise<string>;
  /** The issuer an authenticator app shows: the product's name, or the issuer's host. */
  issuer: string;
}) {
  const { prisma, audit } = deps;

  const totp = (secret: string, label = '') => new TOTP({ issuer: deps.issuer, label, algorithm: 'SHA1', digits: 6, period: PERIOD, secret: Secret.fromBase32(secret) });

  async function enrolment(factorId: string, secretEnc: string, email: string): Promise<Enrolment> {
    const secret = decrypt(secretEnc, await deps.secret(), PURPOSE);
    const uri = totp(secret, email).toString();
    const svg = await QRCode.toString(uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
    return { factorId, secret, uri, qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
  }

  /** A new set of recovery codes (the old set ends), inside `tx`; returns the codes, to be shown once. */
  async function newRecoveryCodes(tx: Pick<PrismaClient, 'recoveryCode'>, userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODES }, recoveryCode);
    await tx.recoveryCode.deleteMany({ where: { userId } });
    await tx.recoveryCode.createMany({ data: codes.map((code) => ({ id: randomId(), userId, codeHash: hashSecret(normalizeRecoveryCode(code)) })) });
    return codes;
  }

  return {
    /** Whether the person must give a second factor to sign in with their password. */
    async required(userId: string): Promise<boolean> {
      return (await prisma.mfaFactor.count({ where: { userId, confirmedAt: { not: null } } })) > 0;
    },

    /** The person's confirmed authenticator apps, oldest first. */
    async factors(userId: string): Promise<FactorView[]> {
      return prisma.mfaFactor.findMany({ where: { userId, confirmedAt: { not: null } }, orderBy: { createdAt: 'asc' }, select: { id: true, name: true, createdAt: true, lastUsedAt: true } });
    },

    async recoveryCodesLeft(userId: string): Promise<number> {
      return prisma.recoveryCode.count({ where: { userId, usedAt: null } });
    },

    /** The person's authenticator apps and unused recovery codes, for an administrator (404 for no such user). */
    async overview(userId: string): Promise<FactorsOverview> {
      if (!(await prisma.user.findUnique({ where: { id: userId }, select: { id: true } }))) throw notFound(`no user ${userId}`);
      const [items, recoveryCodesLeft] = await Promise.all([
        prisma.mfaFactor.findMany({ where: { userId, confirmedAt: { not: null } }, orderBy: { createdAt: 'asc' }, select: { id: true, type: true, name: true, createdAt: true, lastUsedAt: true } }),
        prisma.recoveryCode.count({ where: { userId, usedAt: null } }),
      ]);
      return { items, recoveryCodesLeft };
    },

    /**
     * An administrator turns the person's two-step verification off: every authenticator app
     * (confirmed or not) and recovery code goes, and the person is told by email (in the default
     * language, like the other messages an administrator sends). 404 for no such user, 409 when
     * they have no second factor. Returns how many authenticator apps were removed.
     */
    async resetAll(who: Actor, userId: string): Promise<number> {
      const user = await prisma.user.findUnique({ where: { id: userId }, select: { email: true } });
      if (!user) throw notFound(`no user ${userId}`);
      const removed = await prisma.$transaction(async (tx) => {
        const confirmed = await tx.mfaFactor.count({ where: { userId, confirmedAt: { not: null } } });
        if (!confirmed) throw conflict('the user has no second factor');
        await tx.mfaFactor.deleteMany({ where: { userId } });
        await tx.recoveryCode.deleteMany({ where: { userId } });
        await deps.outbox.enqueue(tx, composeMail(deps.templates, { kind: 'mfa_reset', to: user.email, lang: deps.templates.catalogue.defaultLocale }));
        return confirmed;
      });
      deps.outbox.wake();
      await audit.record(who, 'mfa.reset', userId, { factors: removed });
      return removed;
    },

    /** Whether the person may add another authenticator app. */
    async mayAdd(userId: string): Promise<boolean> {
      return (await prisma.mfaFactor.count({ where: { userId, confirmedAt: { not: null } } })) < MAX_FACTORS;
    },

    /** Starts adding an authenticator app: a new secret, not used at sign-in until confirmed. Replaces any other unconfirmed one. */
    async start(userId: string, email: string): Promise<Enrolment> {
      const secretEnc = encrypt(new Secret({ size: 20 }).base32, await deps.secret(), PURPOSE);
      const id = randomId();
      await prisma.$transaction([prisma.mfaFactor.deleteMany({ where: { userId, confirmedAt: null } }), prisma.mfaFactor.create({ data: { id, userId, type: 'totp', name: '', secretEnc } })]);
      return enrolment(id, secretEnc, email);
    },

    /** The unconfirmed enrolment `factorId` of the person, to show again; null when there is none. */
    async pending(userId: string, factorId: string, email: string): Promise<Enrolment | null> {
      const row = await prisma.mfaFactor.findFirst({ where: { id: factorId, userId, confirmedAt: null } });
      return row ? enrolment(row.id, row.secretEnc, email) : null;
    },

    /**
     * Confirms an enrolment with a first code from the app: only then is it asked for at sign-in.
     * The first confirmed app also brings ten recovery codes, returned to be shown once.
     */
    async confirm(who: Actor, userId: string, input: { factorId: string; name: string; code: string }): Promise<Confirmation> {
      const row = await prisma.mfaFactor.findFirst({ where: { id: input.factorId, userId, confirmedAt: null } });
      if (!row) throw notFound('no such enrolment');
      const secret = decrypt(row.secretEnc, await deps.secret(), PURPOSE);
      const code = input.code.replace(/\s/g, '');
      const delta = /^\d{6}$/.test(code) ? totp(secret).validate({ token: code, window: WINDOW }) : null;
      if (delta === null) return { kind: 'wrong' };
      const step = Math.floor(Date.now() / 1000 / PERIOD) + delta;
      const name = input.name.trim().slice(0, NAME_MAX);
      const recoveryCodes = await prisma.$transaction(async (tx) => {
        const first = (await tx.mfaFactor.count({ where: { userId, confirmedAt: { not: null } } })) === 0;
        await tx.mfaFactor.update({ where: { id: row.id }, data: { name, confirmedAt: new Date(), lastStep: step } });
        return first ? newRecoveryCodes(tx, userId) : null;
      });
      await audit.record(who, 'mfa.totp_added', userId, { factor: row.id });
      if (recoveryCodes) await audit.record(who, 'mfa.recovery_codes_regenerated', userId, { first: true });
      return { kind: 'confirmed', recoveryCodes };
    },

    /** Removes an authenticator app; removing the last one also removes the recovery codes. */
    async remove(who: Actor, userId: string, factorId: string): Promise<void> {
      await prisma.$transaction(async (tx) => {
        const { count } = await tx.mfaFactor.deleteMany({ where: { id: factorId, userId, confirmedAt: { not: null } } });
        if (!count) throw notFound('no such authenticator app');
        if ((await tx.mfaFactor.count({ where: { userId, confirmedAt: { not: null } } })) === 0) await tx.recoveryCode.deleteMany({ where: { userId } });
      });
      await audit.record(who, 'mfa.totp_removed', userId, { factor: factorId });
    },

    /** A new set of recovery codes, to be shown once; the old set stops working. Only with an authenticator app. */
    async regenerate(who: Actor, userId: string): Promise<string[]> {
      const codes = await prisma.$transaction(async (tx) => {
        if ((await tx.mfaFactor.count({ where: { userId, confirmedAt: { not: null } } })) === 0) throw notFound('no second factor');
        return newRecoveryCodes(tx, userId);
      });
      await audit.record(who, 'mfa.recovery_codes_regenerated', userId);
      return codes;
    },

    /**
     * A code from one of the person's authenticator apps, at sign-in. Each code is accepted
     * once: the step it was accepted for is kept, and a code of that step or an earlier one is
     * refused (the update is conditional, so two parallel uses cannot both pass).
     */
    async verifyTotp(userId: string, input: string): Promise<boolean> {
      const code = input.replace(/\s/g, '');
      if (!/^\d{6}$/.test(code)) return false;
      const key = await deps.secret();
      const now = Math.floor(Date.now() / 1000 / PERIOD);
      for (const row of await prisma.mfaFactor.findMany({ where: { userId, confirmedAt: { not: null } } })) {
        const delta = totp(decrypt(row.secretEnc, key, PURPOSE)).validate({ token: code, window: WINDOW });
        if (delta === null) continue;
        const step = now + delta;
        const { count } = await prisma.mfaFactor.updateMany({ where: { id: row.id, OR: [{ lastStep: null }, { lastStep: { lt: step } }] }, data: { lastStep: step, lastUsedAt: new Date() } });
        if (count) return true;
      }
      return false;
    },

    /**
     * A recovery code, at sign-in: used once (a conditional update), audited, and the person is
     * told by email. Compared in constant time with each of the person's unused codes.
     */
    async useRecoveryCode(who: Actor, userId: string, input: string, lang: string): Promise<boolean> {
      const code = normalizeRecoveryCode(input);
      if (!code) return false;
      const unused = await prisma.recoveryCode.findMany({ where: { userId, usedAt: null }, select: { id: true, codeHash: true } });
      const match = unused.find((r) => verifySecret(code, r.codeHash));
      if (!match) return false;
      const user = await prisma.user.findUnique({ where: { id: userId }, select: { email: true } });
      if (!user) return false;
      const used = await prisma.$transaction(async (tx) => {
        const { count } = await tx.recoveryCode.updateMany({ where: { id: match.id, usedAt: null }, data: { usedAt: new Date() } });
        if (!count) return false;
        await deps.outbox.enqueue(tx, composeMail(deps.templates, { kind: 'mfa_recovery_code_used', to: user.email, lang, vars: { left: unused.length - 1 } }));
        return true;
      });
      if (!used) return false;
      deps.outbox.wake();
      await audit.record(who, 'mfa.recovery_code_used', userId, { left: unused.length - 1 });
      return true;
    },
  };
}

export type MfaService = ReturnType<typeof createMfaService>;
