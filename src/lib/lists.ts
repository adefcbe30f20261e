/**
 * The one list envelope of the admin API and the CLI: every list is `{items, total}`, and a paged
 * one also says which page (`limit`, `offset`).
 */
export const listOf = <T>(items: T[], page?: { total: number; limit: number; offset: number }) => ({
  items,
  total: page?.total ?? items.length,
  ...(page ? { limit: page.limit, offset: page.offset } : {}),
});
