import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import { isSecretHash, verifySecret } from '../lib/crypto.ts';

/**
 * The one place that changes oidc-provider's own classes (its Client model) and grant handlers,
 * rather than configuring it. Everything else goes through the provider's documented options.
 */

/** What a client registered, as stored (our own fields included). */
export interface RegisteredMetadata {
  redirect_uris?: string[];
  allowed_origins?: string[];
  resource_scopes?: Record<string, string[]>;
}

type ClientInstance = { clientId: string; clientSecret?: string };

/**
 * - `client_secret` as the provider sees it is the stored hash (see the Client adapter): a
 *   presented secret is compared hash to hash, in constant time; after a rotation with an
 *   overlap, the previous secret works until the overlap ends.
 * - `metadata()`, which the provider hands to clients (RFC 7592 reads and updates), leaves out
 *   the hash and our API allowances.
 *
 * Returns how to read a client's full registered metadata, kept per client instance (the
 * provider makes a new instance whenever the stored metadata changes).
 */
export function patchClientModel(provider: Provider, previousSecret: { matchesPreviousSecret(clientId: string, presented: string): Promise<boolean> }) {
  const proto = provider.Client.prototype as unknown as { compareClientSecret: (actual: string) => Promise<boolean>; metadata: (this: unknown) => Record<string, unknown> };
  const stored = proto.metadata;
  proto.compareClientSecret = async function compareClientSecret(this: ClientInstance, actual: string) {
    if (this.clientSecret && verifySecret(actual, this.clientSecret)) return true;
    return previousSecret.matchesPreviousSecret(this.clientId, actual);
  };
  proto.metadata = function withoutStoredHash(this: unknown) {
    const m = stored.call(this);
    if (typeof m.client_secret === 'string' && isSecretHash(m.client_secret)) delete m.client_secret;
    delete m.resource_scopes;
    return m;
  };

  const registeredOf = new WeakMap<object, RegisteredMetadata>();
  return (client: object): RegisteredMetadata => {
    let m = registeredOf.get(client);
    if (!m) {
      m = stored.call(client) as RegisteredMetadata;
      registeredOf.set(client, m);
    }
    return m;
  };
}

/**
 * Back-channel logout: the provider's end_session calls `client.backchannelLogout(sub, sid)` for
 * each client of the ending session that registered a back-channel logout URI, and would POST a
 * logout token at once, once. Instead the notice is queued (src/clients/backchannel-logout.ts),
 * as for every other way a session ends, and delivered with retries.
 */
export function patchBackchannelLogout(provider: Provider, queue: (ended: { accountId: string; clientId: string; sid: string | undefined }) => Promise<void>) {
  const proto = provider.Client.prototype as unknown as { backchannelLogout: (sub: string, sid: string | undefined) => Promise<void> };
  proto.backchannelLogout = async function queued(this: ClientInstance, sub: string, sid: string | undefined) {
    await queue({ accountId: sub, clientId: this.clientId, sid });
  };
}

/**
 * Wraps the handler of one grant type (the provider's own, registered when it was made): the
 * refresh_token grant's reuse interval (src/oidc/refresh-reuse.ts) needs to act before and after
 * the provider's rotation, with the client already authenticated.
 */
export function wrapGrantHandler(provider: Provider, grantType: string, wrap: (handler: (ctx: KoaContextWithOIDC) => Promise<void>) => (ctx: KoaContextWithOIDC) => Promise<void>) {
  const handlers = instance(provider)?.grantTypeHandlers;
  const handler = handlers?.get(grantType);
  if (!handlers || !handler) throw new Error(`oidc-provider has no ${grantType} grant handler to wrap`);
  handlers.set(grantType, wrap(handler));
}

/**
 * Where findAccount's `claims()` puts a client's mapped claims (claim_mappings): a symbol key,
 * which the provider's spreads of the account's claims keep and nothing else reads.
 */
export const MAPPED_CLAIMS = Symbol('mapped claims');

/**
 * The provider keeps only the claims its static `claims` configuration lists for the granted
 * scopes (lib/helpers/claims.js), so the claims an admin mapped for a client would never reach
 * it. Its Claims class, which filters the claims of every ID token and userinfo response (JSON
 * and signed), adds them after filtering; a filtered claim of the same name wins (none may share one).
 */
export function patchMappedClaims(provider: Provider) {
  const proto = (provider as unknown as { Claims: { prototype: { available: Record<PropertyKey, unknown>; result: () => Promise<Record<string, unknown>> } } }).Claims.prototype;
  const filtered = proto.result;
  proto.result = async function withMappedClaims(this: { available: Record<PropertyKey, unknown> }) {
    const claims = await filtered.call(this);
    const mapped = this.available[MAPPED_CLAIMS] as Record<string, unknown> | undefined;
    return mapped ? { ...mapped, ...claims } : claims;
  };
}
