import type { JWK } from 'jose';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Leases } from '../housekeeping/leases.ts';
import type { KeyService } from '../keys/service.ts';

/** The provider in service and the keys it was built with; both change together. */
export interface OidcHolder {
  current: Provider;
  jwks: JWK[];
}

/**
 * oidc-provider reads its keys once, when it is built. To change keys without a restart, every
 * instance checks the key set in the database every KEY_REFRESH_SECONDS (a background job, see
 * src/background.ts) and, when it changed (a rotation started, a new key's time came, a retired
 * key expired), builds a new provider with the new keys and swaps it in. Requests already running
 * finish on the old one. A scheduled rotation (KEY_ROTATION_DAYS) is made by one instance, the
 * holder of the `key-rotation` lease.
 */
export async function createKeyring(opts: { keys: KeyService; leases: Leases; config: Config; log: Logger; build: (jwks: JWK[]) => Provider }) {
  const { keys, config, log } = opts;
  let jwks = await keys.loadPrivateJwks();
  let version = await keys.version();
  const holder: OidcHolder = { current: opts.build(jwks), jwks };

  async function rotateOnSchedule() {
    if (!config.keys.rotationDays) return;
    const newest = await keys.newestActiveAt();
    if (newest && Date.now() - newest.getTime() < config.keys.rotationDays * 24 * 3600 * 1000) return;
    // One instance rotates; the others see the new keys on their next check.
    if (!(await opts.leases.acquire('key-rotation', 3600))) return;
    await keys.rotate({ actor: 'schedule' }).catch((err: unknown) => log.debug({ err }, 'scheduled rotation skipped'));
  }

  return {
    holder,

    /** Applies key changes; true when the provider was rebuilt. */
    async refresh(): Promise<boolean> {
      await rotateOnSchedule();
      await keys.advance();
      const next = await keys.version();
      if (next === version) return false;
      jwks = await keys.loadPrivateJwks();
      holder.current = opts.build(jwks);
      holder.jwks = jwks;
      version = next;
      log.info({ kids: jwks.map((k) => k.kid) }, 'signing keys reloaded');
      return true;
    },
  };
}

export type Keyring = Awaited<ReturnType<typeof createKeyring>>;
