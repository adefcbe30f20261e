import { accessToken, refresh, signIn } from './auth.ts';

/** An answer of the admin API that is not a success: its status and its own words. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    description: string,
  ) {
    super(description);
  }
}

const PREFIX = '/admin/v1';

async function send(method: string, path: string, body: unknown, token: string): Promise<Response> {
  return fetch(`${PREFIX}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/**
 * One admin API call with the admin's own token. An expired token is refreshed once; a refused
 * refresh sends the admin to sign in again. Errors come back as ApiError with the API's message.
 */
export async function call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const again = () => signIn(location.pathname + location.search);
  let response = await send(method, path, body, await accessToken().catch(again));
  if (response.status === 401) response = await send(method, path, body, await refresh().then((s) => s.accessToken, again));
  if (response.status === 204) return undefined as T;
  const data = (await response.json().catch(() => ({}))) as { error?: string; error_description?: string };
  if (!response.ok) throw new ApiError(response.status, data.error ?? 'error', data.error_description ?? response.statusText);
  return data as T;
}

export const get = <T,>(path: string) => call<T>('GET', path);

/** A page of a list (the admin API's paging). */
export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

/** A query string from the values that are set. */
export function query(values: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams(Object.entries(values).filter((e): e is [string, string | number] => e[1] !== undefined && e[1] !== '').map(([k, v]) => [k, String(v)]));
  const text = params.toString();
  return text ? `?${text}` : '';
}
