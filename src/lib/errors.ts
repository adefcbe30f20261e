/**
 * An expected failure whose message is safe to show to the caller. Anything else that
 * escapes to a handler is logged and answered with a generic message.
 */
export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const badRequest = (message: string, code = 'invalid_request') => new AppError(400, code, message);
export const notFound = (message: string) => new AppError(404, 'not_found', message);
export const conflict = (message: string) => new AppError(409, 'conflict', message);

/** Prisma's unique-constraint violation (a concurrent or duplicate insert). */
export const isUniqueViolation = (err: unknown) => (err as { code?: string } | null)?.code === 'P2002';
