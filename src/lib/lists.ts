/**
 * The one list envelope of the admin API and the CLI: every list is `{items, total}`, and a paged
 * one also says which page (`limit`, `offset`).
 */
export function listOf<T>(items: T[]): { items: T[]; total: number };
export function listOf<T>(items: T[], page: { total: number; limit: number; offset: number }): { items: T[]; total: number; limit: number; offset: number };
export function listOf<T>(items: T[], page?: { total: number; limit: number; offset: number }) {
  return {
    items,
    total: page?.total ?? items.length,
    ...(page ? { limit: page.limit, offset: page.offset } : {}),
  };
}
