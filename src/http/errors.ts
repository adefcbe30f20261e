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

/**
 * What a person is shown for an error: which page of the messages catalogue (`error.<page>.*`),
 * with its status and headers. The words are in views/locales/.
 */
export interface ErrorPage {
  status: number;
  page: string;
  headers: Record<string, string>;
  /** A failure of ours, to be logged. */
  internal: boolean;
}

/** Our own refusals and failures that have a page of their own. */
const OWN_PAGES: ReadonlySet<string> = new Set(['interaction_expired', 'interaction_unknown', 'form_rejected', 'federation_rejected', 'too_many_requests', 'temporarily_unavailable', 'server_error']);

/** The provider's refusals that a person may meet, worded for them; any other reads as a bad request. */
const PROVIDER_PAGES: ReadonlySet<string> = new Set(['invalid_client', 'invalid_redirect_uri', 'invalid_scope', 'invalid_target', 'unauthorized_client']);

export const providerErrorPage = (error: string) => (PROVIDER_PAGES.has(error) ? error : 'request');

export function pageFor(err: unknown): ErrorPage {
  const code = (err as { code?: unknown } | null)?.code;
  // The CSRF plugin's refusals, and our own refusals of a form, read the same.
  if (typeof code === 'string' && code.startsWith('FST_CSRF')) return { status: 403, page: 'form_rejected', headers: {}, internal: false };
  if (err instanceof AppError && OWN_PAGES.has(err.code)) return { status: err.status, page: err.code, headers: {}, internal: err.status >= 500 };
  const answer = answerFor(err);
  return { status: answer.status, page: OWN_PAGES.has(answer.code) ? answer.code : 'malformed', headers: answer.headers, internal: answer.internal };
}
