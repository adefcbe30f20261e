import type { FastifyReply, FastifyRequest } from 'fastify';
import { isDatabaseUnavailable, UNAVAILABLE_BODY } from '../lib/db-errors.ts';
import { AppError, isExposed } from '../lib/errors.ts';

/**
 * How any error is answered over HTTP, as JSON (APIs) or as a page (browsers): an expected
 * failure says what is wrong; the database out of reach is a 503 to retry; a request Fastify
 * itself refused (malformed, too large) is a 4xx; anything else is a 500 with no detail, logged.
 */
export interface ErrorAnswer {
  status: number;
  code: string;
  description: string;
  headers: Record<string, string>;
  /** A failure of ours, to be logged. */
  internal: boolean;
}

const UNAVAILABLE = { code: UNAVAILABLE_BODY.error, description: UNAVAILABLE_BODY.error_description };

export function answerFor(err: unknown): ErrorAnswer {
  if (isExposed(err)) return { status: err.status, code: err.code, description: err.message, headers: {}, internal: err.status >= 500 };
  if (isDatabaseUnavailable(err)) return { status: 503, ...UNAVAILABLE, headers: { 'retry-after': '5' }, internal: false };
  const { statusCode, message } = err as { statusCode?: number; message?: string };
  if (statusCode && statusCode >= 400 && statusCode < 500) return { status: statusCode, code: 'invalid_request', description: String(message), headers: {}, internal: false };
  return { status: 500, code: 'server_error', description: 'An unexpected error occurred.', headers: {}, internal: true };
}

/** The JSON answer of every API route (RFC 6749 §5.2's shape: error, error_description). */
export function sendJsonError(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  const answer = answerFor(err);
  if (answer.internal) req.log.error({ err }, 'request failed');
  return reply.code(answer.status).headers(answer.headers).send({ error: answer.code, error_description: answer.description });
}

/** What a person is shown for an error: the wording of every error page. */
export interface ErrorPage {
  status: number;
  title: string;
  message: string;
  headers: Record<string, string>;
  internal: boolean;
}

const PAGES: Readonly<Record<string, { title: string; message: string }>> = {
  interaction_expired: { title: 'This sign-in has expired', message: 'The sign-in page you used is no longer valid. Go back to the application and start again.' },
  form_rejected: { title: 'This form cannot be accepted', message: 'The form was not sent from this sign-in page, or it has expired. Go back to the application and start again.' },
  federation_rejected: {
    title: 'This sign-in cannot be completed',
    message: 'The answer from the other sign-in service was invalid, expired or already used. You have not been signed in.',
  },
  temporarily_unavailable: { title: 'Temporarily unavailable', message: 'Sign-in is unavailable for a moment. Please try again shortly.' },
  server_error: { title: 'Something went wrong', message: 'Please try again later.' },
};

export function pageFor(err: unknown): ErrorPage {
  const page = (status: number, wording: { title: string; message: string }, headers: Record<string, string> = {}, internal = false) => ({ status, ...wording, headers, internal });
  const code = (err as { code?: unknown } | null)?.code;
  // The CSRF plugin's refusals, and our own refusals of a form, read the same.
  if (typeof code === 'string' && code.startsWith('FST_CSRF')) return page(403, PAGES.form_rejected!);
  if (err instanceof AppError && PAGES[err.code]) return page(err.status, PAGES[err.code]!);
  const answer = answerFor(err);
  const wording = PAGES[answer.code] ?? { title: 'This request cannot be completed', message: isExposed(err) ? err.message : 'The request was malformed.' };
  return page(answer.status, wording, answer.headers, answer.internal);
}
