import { z } from 'zod';

/**
 * What the account page accepts, checked before a handler runs. As on the sign-in pages, a form
 * field that is missing, not a string or too long reads as empty, so the page answers as it
 * does for an empty field instead of with a bare 400.
 */
const text = (max: number) => z.string().max(max).catch('');

/** Every form carries the CSRF token of its page (checked by the account page's guard). */
const form = <T extends z.ZodRawShape>(shape: T) =>
  z.preprocess((body) => (body && typeof body === 'object' ? body : {}), z.object({ _csrf: z.string().max(1024).optional().catch(undefined), ...shape }));

export const csrfForm = form({});
export const profileForm = form({ name: text(1000) });
export const passwordForm = form({ current: text(4096), password: text(4096) });
export const deleteForm = form({ email: text(400) });
/** Adding an authenticator app: the enrolment the page showed, a name for it, and a first code from it. */
export const mfaAddForm = form({ factorId: text(100), name: text(400), code: text(20) });
/** A new passkey: its name, and the browser's answer (WebAuthn's JSON; a longer one is not one). */
export const passkeyAddForm = form({ name: text(400), response: text(16_384) });

/** What a page may be told on arrival: what was just done. */
export const emailForm = form({ email: text(320) });
export const emailTokenParams = z.object({ token: z.string().min(1).max(200) });
export const DONE = ['email_change_sent', 'name_saved', 'password_changed', 'session_ended', 'sessions_ended', 'app_revoked', 'unlinked', 'mfa_added', 'mfa_removed', 'passkey_added', 'passkey_removed'] as const;
export const overviewQuery = z.object({ done: z.enum(DONE).optional().catch(undefined) });

export const signInQuery = z.object({ return: z.string().max(300).optional().catch(undefined), reauth: z.literal('1').optional().catch(undefined) });
export const callbackQuery = z.object({
  state: z.string().max(200).optional().catch(undefined),
  code: z.string().max(500).optional().catch(undefined),
  error: z.string().max(200).optional().catch(undefined),
});
export const signedOutQuery = z.object({ state: z.string().max(50).optional().catch(undefined) });

export const sessionParams = z.object({ handle: z.string().min(1).max(100) });
export const grantParams = z.object({ grantId: z.string().min(1).max(200) });
export const identityParams = z.object({ identityId: z.string().min(1).max(200) });
export const factorParams = z.object({ factorId: z.string().min(1).max(100) });
