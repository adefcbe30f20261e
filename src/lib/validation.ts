import type { z } from 'zod';
import { badRequest } from './errors.ts';

type Issue = z.core.$ZodIssue;

/**
 * Each problem of a refused input: where it is and why. A value that fits none of a union's forms
 * is explained in the one form whose type it has (an object given for "a name or an object" is
 * told which of its fields is wrong), not as a bare "Invalid input".
 */
export function problems(issues: readonly Issue[], prefix: readonly PropertyKey[] = []): { path: PropertyKey[]; message: string }[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union') {
      const typed = (issue.errors ?? []).filter((form) => !form.every((i) => i.code === 'invalid_type' && i.path.length === 0));
      if (typed.length === 1) return problems(typed[0]!, path);
    }
    return [{ path, message: issue.message }];
  });
}

/** Parses input with a schema; a failure becomes one 400 naming every bad field and why. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const detail = problems(result.error.issues)
    .map((p) => (p.path.length ? `${p.path.join('.')}: ${p.message}` : p.message))
    .join('; ');
  throw badRequest(detail);
}
