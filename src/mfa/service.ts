import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import type { Actor, AuditService } from '../audit/service.ts';
import type { PrismaClient } from '../db/index.ts';
import { decrypt, encrypt, hashSecret, randomId, sha256, verifySecret } from '../lib/crypto.ts';
import { conflict, notFound } from '../lib/errors.ts';
import { composeMail } from '../mail/compose.ts';
import type { Outbox } from '../mail/outbox.ts';
import type { Templates } from '../templates/engine.ts';
import { type Binding, type Ceremonies, parseResponse } from './passkeys.ts';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';

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
/** Passkeys per person. */
const MAX_PASSKEYS = 10;

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
  items: (FactorView & { type: 'totp' | 'passkey' })[];
  recoveryCodesLeft: number;
}

export type Confirmation = { kind: 'confirmed'; recoveryCodes: string[] | null } | { kind: 'wrong' };

export interface PasskeyView extends FactorView {
  /** Synced between the person's devices (a passkey manager), or kept on one authenticator. */
  synced: boolean;
}

/** The second factors a person can give at sign-in. */
export interface Methods {
  totp: boolean;
  passkey: boolean;
}

/** Who a passkey proved, and how (RFC 8176: a hardware- or software-protected key; `user` when the person was verified on the device). */
export interface PasskeyProof {
  userId: string;
  amr: string[];
}

/** RFC 8176: a passkey synced between devices is a software-protected key (swk), one kept on one authenticator a hardware-protected one (hwk). */
const keyAmr = (deviceType: string) => (deviceType === 'multiDevice' ? 'swk' : 'hwk');

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
  /** Passkeys' ceremonies; absent when the issuer is an IP address (browsers refuse WebAuthn there). */
  ceremonies: Ceremonies | undefined;
}) {
  const { prisma, audit } = deps;

  /** How many second factors of each kind the person has: confirmed authenticator apps, passkeys. */
  const counts = async (tx: Pick<PrismaClient, 'user'>, userId: string) => {
    // One statement, at every password sign-in: both counts through the person's row.
    const row = await tx.user.findUnique({ where: { id: userId }, select: { _count: { select: { mfaFactors: { where: { confirmedAt: { not: null } } }, passkeys: true } } } });
    return { totp: row?._count.mfaFactors ?? 0, passkey: row?._count.passkeys ?? 0 };
  };
  const none = (c: { totp: number; passkey: number }) => c.totp + c.passkey === 0;
  /** After a factor was removed: with none left, the recovery codes go too. */
  const dropCodesIfNone = async (tx: Pick<PrismaClient, 'user' | 'recoveryCode'>, userId: string) => {
    if (none(await counts(tx, userId))) await tx.recoveryCode.deleteMany({ where: { userId } });
  };
  const ceremonies = () => {
    if (!deps.ceremonies) throw notFound('passkeys need an issuer with a host name');
    return deps.ceremonies;
  };
  const credentialsOf = (userId: string) => prisma.passkey.findMany({ where: { userId }, select: { credentialId: true, transports: true } });

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
    /** Whether passkeys work here (the issuer has a host name). */
    passkeysEnabled: deps.ceremonies !== undefined,

    /** Whether the person must give a second factor to sign in with their password. */
    async required(userId: string): Promise<boolean> {
      return !none(await counts(prisma, userId));
    },

    /** What changes whenever the person's second factors do (one added, removed, or all reset): a remembered browser is bound to it. */
    async stamp(userId: string): Promise<string> {
      const [apps, keys] = await Promise.all([
        prisma.mfaFactor.findMany({ where: { userId, confirmedAt: { not: null } }, select: { id: true } }),
        prisma.passkey.findMany({ where: { userId }, select: { id: true } }),
      ]);
      return sha256([...apps, ...keys].map((f) => f.id).sort().join(',')).slice(0, 16);
    },

    /** Which second factors the person can give. */
    async methods(userId: string): Promise<Methods> {
      const c = await counts(prisma, userId);
      return { totp: c.totp > 0, passkey: c.passkey > 0 && deps.ceremonies !== undefined };
    },

    /** The person's confirmed authenticator apps, oldest first. */
    async factors(userId: string): Promise<FactorView[]> {
      return prisma.mfaFactor.findMany({ where: { userId, confirmedAt: { not: null } }, orderBy: { createdAt: 'asc' }, select: { id: true, name: true, createdAt: true, lastUsedAt: true } });
    },

    async recoveryCodesLeft(userId: string): Promise<number> {
      return prisma.recoveryCode.count({ where: { userId, usedAt: null } });
    },

    /** The person's authenticator apps, passkeys and unused recovery codes, for an administrator (404 for no such user). */
    async overview(userId: string): Promise<FactorsOverview> {
      if (!(await prisma.user.findUnique({ where: { id: userId }, select: { id: true } }))) throw notFound(`no user ${userId}`);
      const [apps, passkeys, recoveryCodesLeft] = await Promise.all([
        prisma.mfaFactor.findMany({ where: { userId, confirmedAt: { not: null } }, orderBy: { createdAt: 'asc' }, select: { id: true, name: true, createdAt: true, lastUsedAt: true } }),
        prisma.passkey.findMany({ where: { userId }, orderBy: { createdAt: 'asc' }, select: { id: true, name: true, createdAt: true, lastUsedAt: true } }),
        prisma.recoveryCode.count({ where: { userId, usedAt: null } }),
      ]);
      return { items: [...apps.map((a) => ({ ...a, type: 'totp' as const })), ...passkeys.map((p) => ({ ...p, type: 'passkey' as const }))], recoveryCodesLeft };
    },

    /**
     * An administrator turns the person's two-step verification off: every authenticator app
     * (confirmed or not), passkey and recovery code goes, and the person is told by email (in the
     * default language, like the other messages an administrator sends). 404 for no such user,
     * 409 when they have no second factor. Returns how many factors were removed.
     */
    async resetAll(who: Actor, userId: string): Promise<number> {
      const user = await prisma.user.findUnique({ where: { id: userId }, select: { email: true } });
      if (!user) throw notFound(`no user ${userId}`);
      const removed = await prisma.$transaction(async (tx) => {
        const c = await counts(tx, userId);
        if (none(c)) throw conflict('the user has no second factor');
        await tx.mfaFactor.deleteMany({ where: { userId } });
        await tx.passkey.deleteMany({ where: { userId } });
        await tx.recoveryCode.deleteMany({ where: { userId } });
        await deps.outbox.enqueue(tx, composeMail(deps.templates, { kind: 'mfa_reset', to: user.email, lang: deps.templates.catalogue.defaultLocale }));
        return c.totp + c.passkey;
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
        const first = none(await counts(tx, userId));
        await tx.mfaFactor.update({ where: { id: row.id }, data: { name, confirmedAt: new Date(), lastStep: step } });
        return first ? newRecoveryCodes(tx, userId) : null;
      });
      await audit.record(who, 'mfa.totp_added', userId, { factor: row.id });
      if (recoveryCodes) await audit.record(who, 'mfa.recovery_codes_regenerated', userId, { first: true });
      return { kind: 'confirmed', recoveryCodes };
    },

    /** Removes an authenticator app; removing the last second factor also removes the recovery codes. */
    async remove(who: Actor, userId: string, factorId: string): Promise<void> {
      await prisma.$transaction(async (tx) => {
        const { count } = await tx.mfaFactor.deleteMany({ where: { id: factorId, userId, confirmedAt: { not: null } } });
        if (!count) throw notFound('no such authenticator app');
        await dropCodesIfNone(tx, userId);
      });
      await audit.record(who, 'mfa.totp_removed', userId, { factor: factorId });
    },

    /** A new set of recovery codes, to be shown once; the old set stops working. Only with a second factor. */
    async regenerate(who: Actor, userId: string): Promise<string[]> {
      const codes = await prisma.$transaction(async (tx) => {
        if (none(await counts(tx, userId))) throw notFound('no second factor');
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

    // ---- passkeys (WebAuthn): the ceremonies are in ./passkeys.ts

    /** The person's passkeys, oldest first. */
    async passkeys(userId: string): Promise<PasskeyView[]> {
      const rows = await prisma.passkey.findMany({ where: { userId }, orderBy: { createdAt: 'asc' }, select: { id: true, name: true, createdAt: true, lastUsedAt: true, deviceType: true } });
      return rows.map(({ deviceType, ...row }) => ({ ...row, synced: deviceType === 'multiDevice' }));
    },

    /** Whether the person may add another passkey. */
    async mayAddPasskey(userId: string): Promise<boolean> {
      return deps.ceremonies !== undefined && (await prisma.passkey.count({ where: { userId } })) < MAX_PASSKEYS;
    },

    /** Options for the person's browser to create a passkey, on their account page or (`binding`) during a sign-in that requires one (answered through addPasskey). */
    async passkeyCreation(user: { id: string; email: string; name: string | null }, binding: Binding = `account:${user.id}`): Promise<PublicKeyCredentialCreationOptionsJSON> {
      return ceremonies().registrationOptions(binding, user, await credentialsOf(user.id));
    },

    /**
     * The browser's answer to passkeyCreation (JSON text): the passkey is kept under `name`. Like
     * a first authenticator app, a first passkey brings ten recovery codes, returned to be shown once.
     */
    async addPasskey(who: Actor, userId: string, input: { response: string; name: string }, binding: Binding = `account:${userId}`): Promise<{ kind: 'added'; recoveryCodes: string[] | null; amr: string[] } | { kind: 'failed' }> {
      const response = parseResponse<RegistrationResponseJSON>(input.response);
      const credential = response && (await ceremonies().verifyRegistration(binding, response));
      if (!credential) return { kind: 'failed' };
      const id = randomId();
      const name = input.name.trim().slice(0, NAME_MAX);
      const recoveryCodes = await prisma.$transaction(async (tx) => {
        if ((await tx.passkey.count({ where: { userId } })) >= MAX_PASSKEYS) throw conflict('the person has as many passkeys as allowed');
        if (await tx.passkey.findUnique({ where: { credentialId: credential.credentialId }, select: { id: true } })) return undefined;
        const first = none(await counts(tx, userId));
        const { transports, ...rest } = credential;
        await tx.passkey.create({ data: { id, userId, name, ...rest, transports: JSON.stringify(transports) } });
        return first ? newRecoveryCodes(tx, userId) : null;
      });
      // A credential already registered (to anyone): browsers exclude the person's own, so this one is not theirs to add.
      if (recoveryCodes === undefined) return { kind: 'failed' };
      await audit.record(who, 'mfa.passkey_added', userId, { factor: id });
      if (recoveryCodes) await audit.record(who, 'mfa.recovery_codes_regenerated', userId, { first: true });
      return { kind: 'added', recoveryCodes, amr: [keyAmr(credential.deviceType)] };
    },

    /** Removes a passkey; removing the last second factor also removes the recovery codes. */
    async removePasskey(who: Actor, userId: string, passkeyId: string): Promise<void> {
      await prisma.$transaction(async (tx) => {
        const { count } = await tx.passkey.deleteMany({ where: { id: passkeyId, userId } });
        if (!count) throw notFound('no such passkey');
        await dropCodesIfNone(tx, userId);
      });
      await audit.record(who, 'mfa.passkey_removed', userId, { factor: passkeyId });
    },

    /**
     * Options for the browser to sign in with a passkey during the sign-in `uid`: any of
     * `userId`'s passkeys after their password, or (no `userId`) anyone's discoverable passkey;
     * null when passkeys do not work here.
     */
    async passkeyRequest(uid: string, userId?: string): Promise<PublicKeyCredentialRequestOptionsJSON | null> {
      if (!deps.ceremonies) return null;
      return deps.ceremonies.authenticationOptions(`sign-in:${uid}`, userId ? await credentialsOf(userId) : undefined);
    },

    /**
     * The browser's answer to passkeyRequest (JSON text): who it proves, or null. After a
     * password (`userId`), the passkey must be theirs; without one, it must have verified the
     * person (a PIN, a fingerprint…), since it is the whole sign-in. The signature counter must
     * have moved on (when the authenticator keeps one), and moves on here at most once.
     */
    async verifyPasskey(uid: string, text: string, userId?: string): Promise<PasskeyProof | null> {
      const response = parseResponse<AuthenticationResponseJSON>(text);
      if (!response || !deps.ceremonies) return null;
      const row = await prisma.passkey.findUnique({ where: { credentialId: response.id } });
      if (!row || (userId !== undefined && row.userId !== userId)) return null;
      // The user handle a discoverable passkey returns is the id of the person it was made for.
      const handle = response.response.userHandle;
      if (handle && handle !== Buffer.from(row.userId).toString('base64url')) return null;
      const binding: Binding = `sign-in:${uid}`;
      const result = await deps.ceremonies.verifyAuthentication(binding, response, row, userId === undefined);
      if (!result) return null;
      const { count } = await prisma.passkey.updateMany({ where: { id: row.id, counter: row.counter }, data: { counter: result.counter, lastUsedAt: new Date() } });
      if (!count) return null;
      return { userId: row.userId, amr: [keyAmr(row.deviceType), ...(result.userVerified ? ['user'] : [])] };
    },
  };
}

export type MfaService = ReturnType<typeof createMfaService>;
