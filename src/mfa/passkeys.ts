import { isIP } from 'node:net';
import {
  type AuthenticationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type WebAuthnCredential,
} from '@simplewebauthn/server';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { MODEL, type ArtifactStore } from '../artifacts/store.ts';
import { keyedTag } from '../lib/crypto.ts';

/** How long a ceremony may take, from the page that offers it to the answer (the browser's own prompt times out sooner). */
const CHALLENGE_TTL_SECONDS = 600;
const TIMEOUT_MS = 300_000;
/** A browser's answer is a few hundred bytes, up to a few kilobytes with attestation: more is not one. */
const MAX_RESPONSE_LENGTH = 16_384;

/**
 * What a challenge is bound to: one sign-in (`sign-in:<interaction uid>`), or one person on
 * their account page (`account:<user id>`). A challenge answers only the ceremony it was made
 * for, and only once.
 */
export type Binding = `sign-in:${string}` | `account:${string}`;
type Ceremony = 'register' | 'authenticate';

export interface RelyingParty {
  /** The issuer's host name: the passkeys work on it and its subdomains' pages only. */
  id: string;
  /** The issuer's origin: the only page a browser's answer may come from. */
  origin: string;
  name: string;
}

/**
 * The relying party is the issuer: its host is the RP ID, its origin the only accepted origin.
 * Browsers refuse WebAuthn on an IP address: such an issuer has no passkeys.
 */
export function relyingParty(issuer: string, productName: string | undefined): RelyingParty | undefined {
  const url = new URL(issuer);
  if (isIP(url.hostname.replace(/^\[|\]$/g, ''))) return undefined;
  return { id: url.hostname, origin: url.origin, name: productName || url.hostname };
}

/** A browser's answer, as the pages post it (JSON text), or null when it is not one. */
export function parseResponse<T extends RegistrationResponseJSON | AuthenticationResponseJSON>(text: string): T | null {
  if (!text || text.length > MAX_RESPONSE_LENGTH) return null;
  try {
    const value = JSON.parse(text) as Partial<T> | null;
    return value && typeof value === 'object' && typeof value.id === 'string' && typeof value.rawId === 'string' && value.type === 'public-key' && value.response && typeof value.response === 'object' ? (value as T) : null;
  } catch {
    return null;
  }
}

/** What a verified registration keeps: public parts only. */
export interface NewCredential {
  credentialId: string;
  publicKey: string;
  counter: number;
  transports: string[];
  deviceType: string;
  backedUp: boolean;
}

/** A stored credential, as verification needs it. */
export interface StoredCredential {
  credentialId: string;
  publicKey: string;
  counter: number;
  transports: string;
}

const NONCE_BYTES = 16;
const TAG_BYTES = 16;
const PURPOSE = 'passkey-challenge';

/**
 * The WebAuthn ceremonies (W3C Web Authentication, through @simplewebauthn/server): options for
 * the browser, and the verification of its answer against its challenge, the issuer's origin and
 * RP ID. A challenge is 16 random bytes, when it expires, and a tag over both and what it is for
 * (the binding and the ceremony) under a key derived from the data key: nothing is written when
 * a page offers a passkey (every login page does), and the answer is checked to be to a
 * challenge we made, for this, in time; it is then used up, once, as an expiring artifact (of
 * parallel answers to one challenge, one gets through). Stores no credential itself:
 * src/mfa/service.ts does.
 */
export function createCeremonies(deps: { rp: RelyingParty; artifacts: Pick<ArtifactStore, 'claim'>; secret: () => Promise<string> }) {
  const { rp, artifacts } = deps;

  const tag = async (binding: Binding, ceremony: Ceremony, body: Uint8Array) => keyedTag(Buffer.concat([Buffer.from(`${ceremony}\n${binding}\n`), body]), await deps.secret(), PURPOSE);

  /** A new challenge for this binding and ceremony, good for CHALLENGE_TTL_SECONDS. */
  async function challengeFor(binding: Binding, ceremony: Ceremony): Promise<Uint8Array<ArrayBuffer>> {
    const body = Buffer.alloc(NONCE_BYTES + 4);
    randomBytes(NONCE_BYTES).copy(body);
    body.writeUInt32BE(Math.floor(Date.now() / 1000) + CHALLENGE_TTL_SECONDS, NONCE_BYTES);
    const challenge = new Uint8Array(NONCE_BYTES + 4 + TAG_BYTES);
    challenge.set(body);
    challenge.set(await tag(binding, ceremony, body), NONCE_BYTES + 4);
    return challenge;
  }

  /** The challenge the answer signed must be one we made for this binding and ceremony, unexpired and unused; it is used up here. */
  const expected = (binding: Binding, ceremony: Ceremony) => async (challenge: string) => {
    const bytes = Buffer.from(challenge, 'base64url');
    if (bytes.length !== NONCE_BYTES + 4 + TAG_BYTES || bytes.toString('base64url') !== challenge) return false;
    const body = bytes.subarray(0, NONCE_BYTES + 4);
    if (!timingSafeEqual(bytes.subarray(NONCE_BYTES + 4), await tag(binding, ceremony, body))) return false;
    const expiresIn = body.readUInt32BE(NONCE_BYTES) - Math.floor(Date.now() / 1000);
    if (expiresIn <= 0) return false;
    return artifacts.claim(MODEL.passkeyChallenge, challenge, { binding, ceremony }, expiresIn);
  };

  return {
    rp,

    /** Options to create a discoverable passkey for the person (its user handle is their id), never one they already have on that authenticator. */
    async registrationOptions(binding: Binding, user: { id: string; email: string; name: string | null }, existing: { credentialId: string; transports: string }[]): Promise<PublicKeyCredentialCreationOptionsJSON> {
      const options = await generateRegistrationOptions({
        challenge: await challengeFor(binding, 'register'),
        rpName: rp.name,
        rpID: rp.id,
        userName: user.email,
        userDisplayName: user.name || user.email,
        userID: new TextEncoder().encode(user.id),
        attestationType: 'none',
        timeout: TIMEOUT_MS,
        excludeCredentials: existing.map((c) => ({ id: c.credentialId, transports: JSON.parse(c.transports) as string[] })),
        authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
      });
      return options;
    },

    /** The answer to registrationOptions: the new credential, or null when it does not verify (wrong origin, RP ID or challenge, a challenge used before…). */
    async verifyRegistration(binding: Binding, response: RegistrationResponseJSON): Promise<NewCredential | null> {
      try {
        const { verified, registrationInfo } = await verifyRegistrationResponse({ response, expectedChallenge: expected(binding, 'register'), expectedOrigin: rp.origin, expectedRPID: rp.id, requireUserVerification: false });
        if (!verified) return null;
        const { credential, credentialDeviceType, credentialBackedUp } = registrationInfo;
        return {
          credentialId: credential.id,
          publicKey: Buffer.from(credential.publicKey).toString('base64url'),
          counter: credential.counter,
          transports: credential.transports ?? [],
          deviceType: credentialDeviceType,
          backedUp: credentialBackedUp,
        };
      } catch {
        return null;
      }
    },

    /**
     * Options to sign in. With `allow` (a password was given): any of those credentials, user
     * verification preferred. Without: a discoverable credential of anyone, user verification
     * required, since the passkey is then the whole sign-in.
     */
    async authenticationOptions(binding: Binding, allow?: { credentialId: string; transports: string }[]): Promise<PublicKeyCredentialRequestOptionsJSON> {
      const options = await generateAuthenticationOptions({
        challenge: await challengeFor(binding, 'authenticate'),
        rpID: rp.id,
        timeout: TIMEOUT_MS,
        userVerification: allow ? 'preferred' : 'required',
        allowCredentials: (allow ?? []).map((c) => ({ id: c.credentialId, transports: JSON.parse(c.transports) as string[] })),
      });
      return options;
    },

    /** The answer to authenticationOptions, checked against the stored credential: its new counter, or null. */
    async verifyAuthentication(binding: Binding, response: AuthenticationResponseJSON, stored: StoredCredential, requireUserVerification: boolean): Promise<{ counter: number; userVerified: boolean } | null> {
      const credential: WebAuthnCredential = {
        id: stored.credentialId,
        publicKey: new Uint8Array(Buffer.from(stored.publicKey, 'base64url')),
        counter: stored.counter,
        transports: JSON.parse(stored.transports) as WebAuthnCredential['transports'],
      };
      try {
        const { verified, authenticationInfo } = await verifyAuthenticationResponse({ response, expectedChallenge: expected(binding, 'authenticate'), expectedOrigin: rp.origin, expectedRPID: rp.id, credential, requireUserVerification });
        return verified ? { counter: authenticationInfo.newCounter, userVerified: authenticationInfo.userVerified } : null;
      } catch {
        // A counter that went backwards (a cloned authenticator), a bad signature, a foreign challenge.
        return null;
      }
    },
  };
}

export type Ceremonies = ReturnType<typeof createCeremonies>;
