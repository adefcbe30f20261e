import { z } from 'zod';
import { form, text, ticked } from '../forms.ts';

export { passkeyAddForm, totpAddForm } from '../forms.ts';

/** What the interaction pages accept, checked by Fastify before a handler runs (the building blocks: ../forms.ts). */
export const interactionParams = z.object({ uid: z.string().min(1).max(200) });
export const upstreamParams = interactionParams.extend({ provider: z.string().min(1).max(100) });
export const upstreamCallbackParams = z.object({ provider: z.string().min(1).max(100) });

export const csrfForm = form({});
export const loginForm = form({ email: text(320), password: text(4096) });
export const linkForm = form({ link: text(200), password: text(4096) });
export const forgotForm = form({ email: text(320) });
export const resetForm = form({ password: text(4096) });
/** A password reset link's token (base64url, 256 bits); anything else is simply not a live link. */
export const resetParams = z.object({ token: z.string().min(1).max(200) });
/** What the login page may be told on arrival. */
export const loginPageQuery = z.object({ notice: z.enum(['password_changed']).optional().catch(undefined) });
export const signupForm = form({ email: text(320), name: text(400), password: text(4096), terms: ticked });
export const verifyCodeForm = form({ code: text(20) });
/** A code from an authenticator app, or a recovery code. */
export const secondFactorForm = form({ code: text(64), remember: ticked });
/** The browser's answer to a passkey's challenge (WebAuthn's JSON); a longer one is not one. */
export const passkeyForm = form({ response: text(16_384), remember: ticked });
/** The pages of the second step: a passkey, an authenticator app, a recovery code. */
export const secondFactorMethodParams = interactionParams.extend({ method: z.enum(['passkey', 'app', 'recovery']) });
export const invitationForm = form({ name: text(400), password: text(4096), terms: ticked });
/** An emailed link's token, in its query (base64url, 256 bits); anything else is simply not a live link. */
export const emailLinkQuery = z.object({ token: z.string().max(200).catch('') });
