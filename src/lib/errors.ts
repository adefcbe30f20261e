/**
 * The one error type of the product. `expose` says whether the message is meant for whoever made
 * the request or ran the command; anything else that escapes to a boundary (HTTP, the CLI, the
 * start-up) is logged there and answered with a generic message.
 */
export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;

  constructor(status: number, code: string, message: string, options: { expose?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.code = code;
    this.expose = options.expose ?? status < 500;
  }
}

/** What stops the service or a command from starting (configuration, database, keys): one line, exit code 1. */
export class StartupError extends AppError {
  override name = 'StartupError';

  constructor(code: string, message: string) {
    super(500, code, message, { expose: true });
  }
}

export const badRequest = (message: string, code = 'invalid_request') => new AppError(400, code, message);
export const notFound = (message: string) => new AppError(404, 'not_found', message);
export const conflict = (message: string) => new AppError(409, 'conflict', message);

/** Whether an error's message is meant to be shown (an expected failure, not a bug). */
export const isExposed = (err: unknown): err is AppError => err instanceof AppError && err.expose;

/** Prisma's unique-constraint violation (a concurrent or duplicate insert). */
export const isUniqueViolation = (err: unknown) => (err as { code?: string } | null)?.code === 'P2002';

/**
 * Why a delivery to another server failed (mail, back-channel logout), as kept in a `lastError`
 * and logged: the message without any address of a page (a server that quotes the request back
 * would otherwise have its link stored) and cut short.
 */
export function redactedError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, '[link]')
    .replace(/[\r\n\t]+/g, ' ')
    .slice(0, 300);
}
