import { z } from 'zod';

/**
 * The building blocks of what our pages' forms accept (the sign-in pages, the account page),
 * checked before a handler runs. A field that is missing, not a string or too long reads as
 * empty, so the page answers as it does for an empty field instead of with a bare 400.
 */
export const text = (max: number) => z.string().max(max).catch('');

/** Every form carries the CSRF token of its page (checked after validation). */
export const form = <T extends z.ZodRawShape>(shape: T) =>
  z.preprocess((body) => (body && typeof body === 'object' ? body : {}), z.object({ _csrf: z.string().max(1024).optional().catch(undefined), ...shape }));

/** A checkbox: present (any value) when ticked. */
export const ticked = z.unknown().optional().transform((v) => v !== undefined && v !== '');

/** Adding an authenticator app (on the account page, or inside a sign-in that requires one): the enrolment shown, a name, and a first code. */
export const totpAddForm = form({ factorId: text(100), name: text(400), code: text(20) });
/** Adding a passkey: its name, and the browser's answer (WebAuthn's JSON; a longer one is not one). */
export const passkeyAddForm = form({ name: text(400), response: text(16_384) });
