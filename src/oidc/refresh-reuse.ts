import { setTimeout as sleep } from 'node:timers/promises';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { MODEL, type ArtifactStore } from '../artifacts/store.ts';

/**
 * The refresh-token reuse interval (per client, `refresh_token_reuse_interval` seconds; 0 by
 * default). Refresh tokens rotate at every use, and a rotated-out token presented again revokes
 * the grant: two tabs or threads of one app refreshing at once would sign the person out. Within
 * the client's interval after a rotation, the rotated-out token presented again by the same client
 * gets the same successor (and a new access token), as long as that successor is unused; outside
 * it, or once the successor was used, the reuse revokes the grant as always.
 *
 * Of parallel refreshes with one token, the first claims the rotation (one row, atomically) and
 * rotates; the others wait for it to name the successor, then refresh with that successor without
 * rotating it.
 */

/** How long a rotation that is under way may take before the others stop waiting for it. */
const IN_FLIGHT_SECONDS = 30;
/** How long a parallel refresh waits for the rotation it raced with, and how often it looks. */
const WAIT_MS = 5000;
const POLL_MS = 25;

interface Rotation {
  clientId: string;
  successor?: string;
}

type Handler = (ctx: KoaContextWithOIDC) => Promise<void>;

/** `intervalOf`: the client's reuse interval in seconds (0: strict), read from its registered metadata. */
export function refreshTokenReuse(store: Pick<ArtifactStore, 'claim' | 'save' | 'find' | 'destroy'>, intervalOf: (client: object) => number) {
  /** Requests that refresh with the successor of a rotation already made: that successor is not rotated again. */
  const sameSuccessor = new WeakSet<object>();

  /** The rotation of `presented`, once it names its successor; undefined when there is none (any more) or it does not in time. */
  async function rotationOf(presented: string): Promise<Rotation | undefined> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const row = await store.find(MODEL.refreshRotation, presented);
      if (!row || (row.expiresAt && row.expiresAt.getTime() <= Date.now())) return undefined;
      const rotation = JSON.parse(row.payload) as Rotation;
      if (rotation.successor || Date.now() >= deadline) return rotation.successor ? rotation : undefined;
      await sleep(POLL_MS);
    }
  }

  async function unused(refreshToken: string): Promise<boolean> {
    const row = await store.find('RefreshToken', refreshToken);
    return Boolean(row && !row.consumedAt && (!row.expiresAt || row.expiresAt.getTime() > Date.now()));
  }

  return {
    /** The provider's `rotateRefreshToken`: every refresh rotates, except one handed the successor of a rotation already made. */
    rotates: (ctx: KoaContextWithOIDC) => !sameSuccessor.has(ctx),

    /** The refresh_token grant's handler, with the reuse interval of the client asking. */
    wrap: (handler: Handler): Handler =>
      async function refreshWithReuseInterval(ctx) {
        const { client, params } = ctx.oidc;
        const interval = client ? intervalOf(client) : 0;
        const presented = params?.refresh_token;
        if (!client || !interval || typeof presented !== 'string' || !presented) return handler(ctx);

        const clientId = client.clientId;
        if (await store.claim(MODEL.refreshRotation, presented, { clientId }, IN_FLIGHT_SECONDS)) {
          let successor: unknown;
          try {
            await handler(ctx);
            if (ctx.oidc.entities.RotatedRefreshToken) successor = (ctx.body as { refresh_token?: unknown } | undefined)?.refresh_token;
          } finally {
            if (typeof successor === 'string') await store.save(MODEL.refreshRotation, presented, { clientId, successor } satisfies Rotation, interval);
            else await store.destroy(MODEL.refreshRotation, presented);
          }
          return;
        }

        const rotation = await rotationOf(presented);
        if (rotation?.successor && rotation.clientId === clientId && (await unused(rotation.successor))) {
          params.refresh_token = rotation.successor;
          sameSuccessor.add(ctx);
        }
        // Otherwise the rotated-out token goes on as presented: the provider revokes the grant.
        return handler(ctx);
      },
  };
}
