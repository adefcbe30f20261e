import type { z } from 'zod';
import { badRequest } from './errors.ts';

/** Parses input with a schema; a failure becomes one 400 naming every bad field and why. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const detail = result.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
  throw badRequest(detail);
}
