declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  import type { KoaContextWithOIDC } from 'oidc-provider';

  /** A provider's internal state, as far as src/oidc/internals.ts reaches into it. */
  export default function instance(provider: object): { grantTypeHandlers: Map<string, (ctx: KoaContextWithOIDC) => Promise<void>> } | undefined;
}
