import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import type { CDPSession, Page } from 'playwright-core';
import { withServices } from './seed.ts';

const b64u = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest();
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** What a test may change in what the authenticator signs: another page's origin, another site's RP ID, an old challenge. */
export interface Tampering {
  origin?: string;
  rpId?: string;
  challenge?: string;
  /** The user handle a discoverable passkey returns: another person's id, say. */
  userHandle?: string;
}

/**
 * A software authenticator (a P-256 key, "none" attestation) for tests that speak HTTP: what a
 * security key or a phone's passkey does, in code, so that each rule of the server can be shown
 * with an answer a real authenticator would never give. Browser tests use Chromium's virtual
 * authenticator instead (virtualAuthenticator below).
 */
export class SoftAuthenticator {
  readonly credentialId = randomBytes(16);
  private readonly key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  /** The signature counter; stays 0 when the authenticator does not count (as synced passkeys do). */
  counter = 0;
  private userHandle: string | undefined;
  readonly origin: string;
  private readonly opts: { userVerification?: boolean; counts?: boolean };

  constructor(origin: string, opts: { userVerification?: boolean; counts?: boolean } = {}) {
    this.origin = origin;
    this.opts = opts;
  }

  private flags(attested: boolean) {
    return 0x01 | (this.opts.userVerification === false ? 0 : 0x04) | (attested ? 0x40 : 0);
  }

  private clientData(type: string, challenge: string, t: Tampering) {
    return Buffer.from(JSON.stringify({ type, challenge: t.challenge ?? challenge, origin: t.origin ?? this.origin, crossOrigin: false }));
  }

  register(options: PublicKeyCredentialCreationOptionsJSON, t: Tampering = {}): RegistrationResponseJSON {
    this.userHandle = options.user.id;
    const jwk = this.key.publicKey.export({ format: 'jwk' });
    const coseKey = new Map<number, number | Uint8Array>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x!, 'base64url')],
      [-3, Buffer.from(jwk.y!, 'base64url')],
    ]);
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const authData = Buffer.concat([sha256(t.rpId ?? options.rp.id!), Buffer.from([this.flags(true)]), u32(this.counter), Buffer.alloc(16), idLength, this.credentialId, Buffer.from(isoCBOR.encode(coseKey))]);
    const attestationObject = isoCBOR.encode(
      new Map<string, string | Uint8Array | Map<string, string>>([
        ['fmt', 'none'],
        ['attStmt', new Map<string, string>()],
        ['authData', authData],
      ]),
    );
    const id = b64u(this.credentialId);
    return { id, rawId: id, type: 'public-key', response: { clientDataJSON: b64u(this.clientData('webauthn.create', options.challenge, t)), attestationObject: b64u(attestationObject), transports: ['internal'] }, clientExtensionResults: {} };
  }

  authenticate(options: PublicKeyCredentialRequestOptionsJSON, t: Tampering = {}): AuthenticationResponseJSON {
    if (this.opts.counts) this.counter++;
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, t);
    const authenticatorData = Buffer.concat([sha256(t.rpId ?? options.rpId!), Buffer.from([this.flags(false)]), u32(this.counter)]);
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(clientDataJSON)]), this.key.privateKey);
    const id = b64u(this.credentialId);
    return {
      id,
      rawId: id,
      type: 'public-key',
      response: { clientDataJSON: b64u(clientDataJSON), authenticatorData: b64u(authenticatorData), signature: b64u(signature), ...((t.userHandle ?? this.userHandle) ? { userHandle: t.userHandle ?? this.userHandle } : {}) },
      clientExtensionResults: {},
    };
  }
}

/**
 * Gives a user a passkey through the services, as the account page would (the page itself is
 * tested in test/passkeys-browser.test.ts): the authenticator that holds it, to sign in with.
 */
export async function addPasskey(env: Record<string, string>, user: { userId: string; email: string }, opts: { userVerification?: boolean; counts?: boolean; name?: string } = {}, tampering: Tampering = {}) {
  const authenticator = new SoftAuthenticator(new URL(env.ISSUER!).origin, opts);
  await withServices(env, async ({ mfa }) => {
    const options = await mfa.passkeyCreation({ id: user.userId, email: user.email, name: null });
    const added = await mfa.addPasskey({ actor: `user:${user.userId}`, ip: '127.0.0.1' }, user.userId, { name: opts.name ?? 'Laptop', response: JSON.stringify(authenticator.register(options, tampering)) });
    if (added.kind !== 'added') throw new Error('the passkey was not added');
  });
  return authenticator;
}

/** The options a page's passkey form holds (its data-passkey attribute), as the browser gets them. */
export function passkeyOptions<T = PublicKeyCredentialRequestOptionsJSON>(html: string, action: string): T {
  const form = new RegExp(`<form[^>]*action="[^"]*${action}"[^>]*data-passkey="([^"]*)"`).exec(html);
  if (!form) throw new Error(`no passkey form posting to *${action} on the page`);
  const json = form[1]!.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
  return JSON.parse(json) as T;
}

/** Chromium's virtual authenticator (CDP WebAuthn domain) for a page: a platform authenticator with user verification, which holds discoverable credentials. */
export async function virtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  return { cdp, authenticatorId };
}
