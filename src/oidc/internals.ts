import type Provider from 'oidc-provider';
import { isSecretHash, verifySecret } from '../lib/crypto.ts';

/**
 * The one place that changes oidc-provider's own classes (its Client model), rather than
 * configuring it. Everything else goes through the provider's documented options.
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
