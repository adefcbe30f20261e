import { LOOPBACK_HOSTS } from '../lib/constants.ts';
import { redactedError } from '../lib/errors.ts';
import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import type { Logger } from 'pino';
import type { EndedSessionInfo as EndedSession } from '../artifacts/store.ts';
import type { Actor, AuditService } from '../audit/service.ts';
import type { PrismaClient } from '../db/index.ts';

/** The event a logout token carries (OpenID Connect Back-Channel Logout 1.0 §2.4). */
const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Where a client receives logout tokens, and the algorithm its ID tokens are signed with. */
interface BackchannelTarget {
  uri: string;
  alg: string;
}

/** What the queue needs of the client service. */
export interface BackchannelClients {
  backchannelTargets(clientIds: string[]): Promise<Map<string, BackchannelTarget>>;
}

/** How long a logout token is valid: long enough to arrive, short enough to be useless later. */
const TOKEN_SECONDS = 120;
/** How long one instance holds a notice while it delivers it (each POST is bounded by the timeout). */
const HOLD_MS = 60_000;
const BATCH = 20;
const MAX_BACKOFF_MS = 3600 * 1000;
const SYSTEM: Actor = { actor: 'system:backchannel-logout' };

/** Why a POST failed, as kept and logged: never the token, nor the address of a page. */
const deliveryError = (err: unknown) => redactedError(err instanceof Error && err.name === 'TimeoutError' ? 'no answer in time' : err);

/**
 * Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a browser session ends, for
 * whatever reason (the person signs out at an app, an admin signs them out everywhere, a password
 * reset, a disabled or deleted account), every client the session had signed in to that
 * registered a `backchannel_logout_uri` is told, with a logout token POSTed to that URI.
 *
 * Notices are written to the LogoutDelivery table (this module is its one owner) and delivered by
 * a loop on every instance of the server, with retries and exponential backoff
 * (LOGOUT_RETRY_BASE_SECONDS × 2^(n−1), at most an hour between attempts), so that a client that
 * is down hears of the logout when it is back. After LOGOUT_DELIVERY_HOURS without success the
 * notice is given up (audited `logout.delivery_failed`). The token is signed at each attempt
 * with the provider's current key (it is valid two minutes) and is never stored or logged; its
 * jti is the notice's id, the same across attempts.
 */
export function createBackchannelLogout(
  prisma: PrismaClient,
  deps: { clients: BackchannelClients; audit: AuditService; issuer: string; log?: Logger | undefined },
  policy: { retrySeconds: number; deliveryHours: number; timeoutSeconds: number; loopbackAllowed: boolean },
) {
  /** The provider's private keys (the first of an algorithm signs), set by the running app. */
  let keys: () => readonly JWK[] = () => [];
  let wake: () => void = () => {};
  let woken = false;
  let delivering = false;
  let failing = false;
  /** In production the server never calls its own host: a registrant could aim a logout token at a local service. */
  const allowed = (uri: string) => policy.loopbackAllowed || !LOOPBACK_HOSTS.has(new URL(uri).hostname);
  const backoffMs = (attempts: number) => Math.min(policy.retrySeconds * 1000 * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);

  async function sign(row: { id: string; clientId: string; accountId: string; sid: string | null }, alg: string): Promise<string> {
    const jwks = keys();
    const jwk = jwks.find((k) => k.alg === alg) ?? jwks.find((k) => k.alg === 'RS256') ?? jwks[0];
    if (!jwk?.alg) throw new Error('no signing key is loaded');
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, ...(row.sid ? { sid: row.sid } : {}) })
      .setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'logout+jwt' })
      .setIssuer(deps.issuer)
      .setAudience(row.clientId)
      .setSubject(row.accountId)
      .setIssuedAt(now)
      .setExpirationTime(now + TOKEN_SECONDS)
      .setJti(row.id)
      .sign(await importJWK(jwk, jwk.alg));
  }

  async function post(uri: string, token: string): Promise<void> {
    const res = await fetch(uri, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: token }).toString(),
      signal: AbortSignal.timeout(policy.timeoutSeconds * 1000),
    });
    await res.body?.cancel().catch(() => {});
    // §2.8: 200 on success; 204 is common and harmless.
    if (res.status !== 200 && res.status !== 204) throw new Error(`the client answered ${res.status}`);
  }

  async function deliver(id: string, now: Date): Promise<'delivered' | 'retry' | 'failed' | 'skipped'> {
    const heldUntil = new Date(Date.now() + HOLD_MS);
    const held = await prisma.logoutDelivery.updateMany({
      where: { id, deliveredAt: null, failedAt: null, nextAttemptAt: { lte: now }, OR: [{ lockedUntil: null }, { lockedUntil: { lt: now } }] },
      data: { lockedUntil: heldUntil, attempts: { increment: 1 } },
    });
    if (held.count !== 1) return 'skipped';
    const row = await prisma.logoutDelivery.findUnique({ where: { id } });
    if (!row) return 'skipped';
    try {
      // The client's registration as it is now: a URI removed (or the client disabled) since means nobody to tell.
      const target = (await deps.clients.backchannelTargets([row.clientId])).get(row.clientId);
      if (!target || !allowed(target.uri)) {
        await prisma.logoutDelivery.update({ where: { id }, data: { failedAt: new Date(), lockedUntil: null, lastError: 'the client no longer registers a back-channel logout URI it may be sent to' } });
        return 'skipped';
      }
      await post(target.uri, await sign(row, target.alg));
    } catch (err) {
      const lastError = deliveryError(err);
      const next = new Date(Date.now() + backoffMs(row.attempts));
      const giveUp = next.getTime() > row.createdAt.getTime() + policy.deliveryHours * 3600 * 1000;
      const recorded = await prisma.logoutDelivery.updateMany({
        where: { id, lockedUntil: heldUntil },
        data: { lockedUntil: null, lastError, nextAttemptAt: next, ...(giveUp ? { failedAt: new Date() } : {}) },
      });
      if (recorded.count !== 1) return 'skipped';
      const details = { delivery: id, clientId: row.clientId, attempts: row.attempts, error: lastError };
      if (giveUp) {
        deps.log?.warn(details, 'back-channel logout not delivered; given up');
        await deps.audit.record(SYSTEM, 'logout.delivery_failed', row.clientId, { delivery: id, userId: row.accountId, attempts: row.attempts, error: lastError });
        return 'failed';
      }
      if (failing) deps.log?.debug(details, 'back-channel logout not delivered; will retry');
      else deps.log?.warn(details, 'back-channel logout not delivered; will retry (further failures are logged at debug until one is delivered)');
      failing = true;
      return 'retry';
    }
    await prisma.logoutDelivery.update({ where: { id }, data: { deliveredAt: new Date(), lockedUntil: null, lastError: null } });
    failing = false;
    return 'delivered';
  }

  async function pass(counts: Record<'delivered' | 'retry' | 'failed', number>) {
    const now = new Date();
    for (;;) {
      const due = await prisma.logoutDelivery.findMany({
        where: { deliveredAt: null, failedAt: null, nextAttemptAt: { lte: now }, OR: [{ lockedUntil: null }, { lockedUntil: { lt: now } }] },
        orderBy: [{ nextAttemptAt: 'asc' }, { id: 'asc' }],
        take: BATCH,
        select: { id: true },
      });
      // Different clients are independent: a batch is sent in parallel.
      const outcomes = await Promise.all(due.map((row) => deliver(row.id, now)));
      for (const outcome of outcomes) if (outcome !== 'skipped') counts[outcome]++;
      if (due.length < BATCH) return;
    }
  }

  const wakeNow = () => {
    woken = true;
    if (!delivering) wake();
  };

  return {
    /**
     * Sessions ended (src/artifacts/store.ts, the provider's end_session): a notice for each
     * client each of them had signed in to that registered a back-channel logout URI. Never
     * throws: a session ends whether or not its notices could be written.
     */
    async sessionsEnded(sessions: readonly EndedSession[]): Promise<void> {
      try {
        const ids = [...new Set(sessions.flatMap((s) => s.clients.map((c) => c.clientId)))];
        if (!ids.length) return;
        const targets = await deps.clients.backchannelTargets(ids);
        const rows = sessions.flatMap((s) =>
          s.clients.flatMap((c) => {
            const target = targets.get(c.clientId);
            return target && allowed(target.uri) ? [{ id: randomUUID(), clientId: c.clientId, accountId: s.accountId, sid: c.sid ?? null }] : [];
          }),
        );
        if (!rows.length) return;
        await prisma.logoutDelivery.createMany({ data: rows });
        wakeNow();
      } catch (err) {
        deps.log?.error({ err }, 'back-channel logout notices not written');
      }
    },

    /** The keys that sign logout tokens: the running provider's (src/app.ts). */
    useKeys(fn: () => readonly JWK[]) {
      keys = fn;
    },

    /** What runs delivery now: the background job, once the app is running (src/app.ts). */
    onWake(fn: () => void) {
      wake = fn;
    },

    /** Delivers the notices that are due; a wake during the run makes it look again. */
    async deliverDue(): Promise<Record<'delivered' | 'retry' | 'failed', number>> {
      const counts = { delivered: 0, retry: 0, failed: 0 };
      delivering = true;
      try {
        do {
          woken = false;
          await pass(counts);
        } while (woken);
      } finally {
        delivering = false;
      }
      return counts;
    },

    /** Deletes notices delivered or given up before `before` (housekeeping). */
    async purge(before: Date): Promise<number> {
      const { count } = await prisma.logoutDelivery.deleteMany({ where: { OR: [{ deliveredAt: { lt: before } }, { failedAt: { lt: before } }] } });
      return count;
    },
  };
}

export type BackchannelLogout = ReturnType<typeof createBackchannelLogout>;
