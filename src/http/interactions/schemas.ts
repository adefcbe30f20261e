import { z } from 'zod';

/**
 * What the interaction pages accept, checked by Fastify before a handler runs (as the admin API's
 * schemas are). A form field that is missing, not a string or too long reads as empty, so the page
 * answers as it does for an empty field (a wrong password, say) instead of a bare 400.
 */
const text = (max: number) => z.string().max(max).catch('');

/** Every form carries the CSRF token of its page (checked by the CSRF plugin after validation). */
const form = <T extends z.ZodRawShape>(shape: T) =>
  z.preprocess((body) => (body && typeof body === 'object' ? body : {}), z.object({ _csrf: z.string().max(1024).optional().catch(undefined), ...shape }));

export const interactionParams = z.object({ uid: z.string().min(1).max(200) });
export const upstreamParams = interactionParams.extend({ provider: z.string().min(1).max(100) });
export const upstreamCallbackParams = z.object({ provider: z.string().min(1).max(100) });

export const csrfForm = form({});
export const loginForm = form({ email: text(320), password: text(4096) });
export const linkForm = form({ link: text(200), password: text(4096) });
