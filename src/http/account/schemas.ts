import { z } from 'zod';
import { form, text } from '../forms.ts';

export { passkeyAddForm, totpAddForm as mfaAddForm } from '../forms.ts';

/** What the account page accepts (the building blocks: ../forms.ts). */
export const csrfForm = form({});
export const profileForm = form({ name: text(1000) });
export const passwordForm = form({ current: text(4096), password: text(4096) });
export const deleteForm = form({ email: text(400) });

export const emailForm = form({ email: text(320) });
export const emailTokenParams = z.object({ token: z.string().min(1).max(200) });
/** What a page may be told on arrival: what was just done. */
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
