import type { PrismaClient } from '../db/index.ts';
import type { ArtifactColumns, RedisArtifacts } from './redis.ts';

/**
 * Protocol artifacts (sessions, interactions, codes, tokens, the pending state of upstream
 * sign-ins…) and grants: the one module that reads and writes the OidcPayload and Grant tables.
 * The oidc-provider adapter, the grant service, federation and housekeeping all come here.
 */

/** Artifact kinds, as oidc-provider names its models (and ours: the pending upstream sign-in state). */
export const MODEL = {
  session: 'Session',
  interaction: 'Interaction',
  initialAccessToken: 'InitialAccessToken',
  federatedLogin: 'FederatedLogin',
  federatedLink: 'FederatedLink',
  /** The account page's own session (src/http/account/): who, since when, bound to a browser session. */
  accountSession: 'AccountSession',
  /** The account page's pending sign-in: its PKCE verifier and where to come back to, by `state`. */
  accountLogin: 'AccountLogin',
  /** Which browser and address a browser session is used from, by the session's uid (src/account/devices.ts). */
  sessionDevice: 'SessionDevice',
  /** A WebAuthn challenge, by its value: what it is bound to, used once (src/mfa/passkeys.ts). */
  passkeyChallenge: 'PasskeyChallenge',
  /**
   * A refresh-token rotation inside a client's reuse interval, by the rotated-out token: first
   * claimed while it happens, then naming the successor that presenting the token again returns.
   */
  refreshRotation: 'RefreshRotation',
} as const;

/** Kinds whose artifacts belong to a grant and die with it (revokeByGrantId). */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

export const isGrantable = (model: string) => GRANTABLE.has(model);

/**
 * The short-lived state of sign-ins and codes, kept in Redis with EPHEMERAL_STORE=redis
 * (src/artifacts/redis.ts); everything else (grants, tokens, our own state) stays in the database.
 */
export const EPHEMERAL_MODELS: ReadonlySet<string> = new Set<string>([
  MODEL.session,
  MODEL.interaction,
  'AuthorizationCode',
  'ReplayDetection',
  'PushedAuthorizationRequest',
  'DeviceCode',
  MODEL.federatedLogin,
  MODEL.federatedLink,
]);

/** What an artifact is stored with: the payload, and the columns it is looked up and revoked by. */
export interface ArtifactPayload {
  grantId?: string;
  sessionUid?: string;
  expiresWithSession?: boolean;
  uid?: string;
  userCode?: string;
  accountId?: string;
  clientId?: string;
  [key: string]: unknown;
}

/** What an interaction's payload (oidc-provider's Interaction) says of its session and grant. */
interface InteractionPayload extends ArtifactPayload {
  session?: { uid?: string };
  result?: { consent?: { grantId?: string } };
}

export interface StoredArtifact {
  payload: string;
  expiresAt: Date | null;
  consumedAt: Date | null;
}

/** An artifact read together with its grant and, when it dies with one, its session. */
export interface ArtifactWithGrant extends StoredArtifact {
  model: string;
  grantId: string | null;
  grantPayload: string | null;
  grantExpiresAt: Date | null;
  sessionUid: string | null;
  sessionPayload: string | null;
  sessionExpiresAt: Date | null;
}

export interface GrantRow {
  id: string;
  clientId: string;
  payload: string;
  createdAt: Date;
  expiresAt: Date | null;
}

/** The columns an artifact is looked up and revoked by, from its payload. */
function columnsOf(model: string, payload: ArtifactPayload): ArtifactColumns {
  const grantable = GRANTABLE.has(model);
  const interaction = model === MODEL.interaction ? (payload as InteractionPayload) : undefined;
  // An interaction is read with the browser session it belongs to and the grant it consents
  // to (or found), which the provider reads next.
  return {
    grantId: grantable ? (payload.grantId ?? null) : (interaction?.result?.consent?.grantId ?? interaction?.grantId ?? null),
    sessionUid: grantable ? (payload.expiresWithSession ? (payload.sessionUid ?? null) : null) : (interaction?.session?.uid ?? null),
    uid: model === MODEL.session ? (payload.uid ?? null) : null,
    userCode: model === 'DeviceCode' ? (payload.userCode ?? null) : null,
    accountId: payload.accountId ?? null,
    clientId: payload.clientId ?? null,
  };
}

/** What our own state (`create`) is stored with: looked up by its id alone. */
const NO_COLUMNS: ArtifactColumns = { grantId: null, sessionUid: null, uid: null, userCode: null, accountId: null, clientId: null };

const expiry = (seconds?: number) => (seconds ? new Date(Date.now() + seconds * 1000) : null);

/** A browser session that ended: whose, and the sid it gave each client it had signed in to. */
export interface EndedSessionInfo {
  accountId: string;
  clients: { clientId: string; sid?: string | undefined }[];
}

/** What a session's stored payload (oidc-provider's Session) says of the clients it signed in to. */
function endedSession(payload: string): EndedSessionInfo | null {
  try {
    const p = JSON.parse(payload) as { accountId?: unknown; authorizations?: Record<string, { sid?: unknown }> };
    if (typeof p.accountId !== 'string') return null;
    const clients = Object.entries(p.authorizations ?? {}).map(([clientId, a]) => ({ clientId, sid: typeof a?.sid === 'string' ? a.sid : undefined }));
    return { accountId: p.accountId, clients };
  } catch {
    return null;
  }
}

/**
 * `sessionsEnded`: told of every browser session this store ends on purpose (signed out
 * everywhere, a password reset, a disabled or deleted account, "not you?", the account page),
 * with what the session had signed in to, after it is gone: back-channel logout
 * (src/clients/backchannel-logout.ts). The provider's own end_session tells it directly
 * (src/oidc/internals.ts); a session destroyed by the adapter (a new id after a sign-in) or
 * expiring is not an ending.
 */
export function createArtifactStore(prisma: PrismaClient, events: { sessionsEnded?(sessions: EndedSessionInfo[]): Promise<void> } = {}, redis?: RedisArtifacts) {
  /** Where `model` is kept when it is kept in Redis (EPHEMERAL_STORE=redis). */
  const inRedis = (model: string) => (redis && EPHEMERAL_MODELS.has(model) ? redis : undefined);
  const notSession = (model: string) => model !== MODEL.session;
  const findGrant = (id: string) => prisma.grant.findUnique({ where: { id }, select: { payload: true, expiresAt: true } });

  /** Sessions kept in Redis that `where` selects (by id, or an account's except one uid). */
  async function redisSessions(r: RedisArtifacts, where: { accountId?: string; id?: string; exceptUid?: string }) {
    const ids = where.id ? [where.id] : (await r.indexed('account', where.accountId!)).filter((m) => m.model === MODEL.session).map((m) => m.id);
    const rows = await r.findMany(MODEL.session, ids);
    return where.exceptUid ? rows.filter((row) => (JSON.parse(row.payload) as { uid?: string }).uid !== where.exceptUid) : rows;
  }

  /** The artifact under `id` as any of (at most three) `models`, with its grant and session: one query. */
  function sqlJoin(id: string, models: readonly string[]): Promise<ArtifactWithGrant[]> {
    const [first, second = first, third = first] = models;
    return prisma.$queryRaw<ArtifactWithGrant[]>`
        SELECT p."model", p."payload", p."expiresAt", p."consumedAt", p."grantId", p."sessionUid",
               g."payload" AS "grantPayload", g."expiresAt" AS "grantExpiresAt",
               s."payload" AS "sessionPayload", s."expiresAt" AS "sessionExpiresAt"
        FROM "OidcPayload" p
          LEFT JOIN "Grant" g ON g."id" = p."grantId"
          LEFT JOIN "OidcPayload" s ON s."model" = ${MODEL.session} AND s."uid" = p."sessionUid"
        WHERE p."id" = ${id} AND p."model" IN (${first}, ${second}, ${third})`;
  }

  /**
   * The same with sessions in Redis: a code or interaction kept there is read with its session in
   * one Redis round trip, then its grant from the database; a token kept in the database is read
   * with its grant, then its session from Redis.
   */
  async function joinAcross(r: RedisArtifacts, id: string, models: readonly string[]): Promise<ArtifactWithGrant[]> {
    if (models.every((m) => EPHEMERAL_MODELS.has(m))) {
      const rows = await r.findWithSession(id, models);
      return Promise.all(
        rows.map(async (row) => {
          const grant = row.grantId ? await findGrant(row.grantId) : null;
          return { ...row, grantPayload: grant?.payload ?? null, grantExpiresAt: grant?.expiresAt ?? null };
        }),
      );
    }
    const rows = await sqlJoin(id, models);
    return Promise.all(
      rows.map(async (row) => {
        const session = row.sessionUid ? await r.findBy('uid', row.sessionUid) : null;
        return { ...row, sessionPayload: session?.payload ?? null, sessionExpiresAt: session?.expiresAt ?? null };
      }),
    );
  }

  /** Deletes the sessions `where` selects, then tells of those that signed in to some client. */
  async function endSessions(where: { accountId?: string; id?: string; exceptUid?: string }): Promise<number> {
    let ended: { count: number; rows: { payload: string }[] };
    if (redis) {
      const rows = await redisSessions(redis, where);
      ended = { count: await redis.destroy(MODEL.session, rows.map((row) => row.id)), rows };
    } else {
      const { exceptUid, ...columns } = where;
      const sessionWhere = { model: MODEL.session, ...columns, ...(exceptUid ? { uid: { not: exceptUid } } : {}) };
      ended = await prisma.$transaction(async (tx) => {
        const rows = events.sessionsEnded ? await tx.oidcPayload.findMany({ where: sessionWhere, select: { id: true, payload: true } }) : [];
        const { count } = await tx.oidcPayload.deleteMany({ where: sessionWhere });
        return { count, rows };
      });
    }
    const sessions = ended.rows.map((r) => endedSession(r.payload)).filter((s): s is EndedSessionInfo => Boolean(s?.clients.length));
    if (sessions.length) await events.sessionsEnded?.(sessions);
    return ended.count;
  }

  return {
    /** Every save of every artifact: one statement that reads nothing back (or one Redis round trip). */
    async save(model: string, id: string, payload: ArtifactPayload, expiresInSeconds?: number): Promise<void> {
      const c = columnsOf(model, payload);
      const r = inRedis(model);
      if (r) return r.save(model, id, JSON.stringify(payload), c, expiresInSeconds);
      // Less than half the CPU of the equivalent model upsert (`npm run bench:queries`).
      await prisma.$executeRaw`
        INSERT INTO "OidcPayload" ("model", "id", "payload", "grantId", "sessionUid", "uid", "userCode", "accountId", "clientId", "expiresAt")
        VALUES (${model}, ${id}, ${JSON.stringify(payload)}, ${c.grantId}, ${c.sessionUid}, ${c.uid}, ${c.userCode}, ${c.accountId}, ${c.clientId}, ${expiry(expiresInSeconds)})
        ON CONFLICT ("model", "id") DO UPDATE SET
          "payload" = excluded."payload", "grantId" = excluded."grantId", "sessionUid" = excluded."sessionUid", "uid" = excluded."uid",
          "userCode" = excluded."userCode", "accountId" = excluded."accountId", "clientId" = excluded."clientId", "expiresAt" = excluded."expiresAt"`;
    },

    find(model: string, id: string): Promise<StoredArtifact | null> {
      const r = inRedis(model);
      if (r) return r.find(model, id);
      return prisma.oidcPayload.findUnique({ where: { model_id: { model, id } }, select: { payload: true, expiresAt: true, consumedAt: true } });
    },

    /** By a unique column, with the model it was stored as. */
    findUnique(where: { uid: string } | { userCode: string }): Promise<(StoredArtifact & { model: string }) | null> {
      // Sessions (by uid) and device codes (by user code) are both kept in Redis, or neither.
      if (redis) return 'uid' in where ? redis.findBy('uid', where.uid) : redis.findBy('userCode', where.userCode);
      return prisma.oidcPayload.findUnique({ where, select: { model: true, payload: true, expiresAt: true, consumedAt: true } });
    },

    /** The artifact stored under `id` as any of (at most three) `models`, each with its grant and session if they still exist: one query. */
    async findWithGrantAndSession(id: string, models: readonly string[]): Promise<ArtifactWithGrant[]> {
      if (redis) return joinAcross(redis, id, models);
      return sqlJoin(id, models);
    },

    /** Atomic: of parallel calls for one artifact, exactly one gets true. */
    async consume(model: string, id: string): Promise<boolean> {
      const r = inRedis(model);
      if (r) return r.consume(model, id);
      const { count } = await prisma.oidcPayload.updateMany({ where: { model, id, consumedAt: null }, data: { consumedAt: new Date() } });
      return count === 1;
    },

    async destroy(model: string, id: string): Promise<void> {
      const r = inRedis(model);
      if (r) await r.destroy(model, [id]);
      else await prisma.oidcPayload.deleteMany({ where: { model, id } });
    },

    async destroyByGrant(model: string, grantId: string): Promise<void> {
      const r = inRedis(model);
      if (r) await r.destroyIndexed('grant', grantId, (m) => m === model);
      else await prisma.oidcPayload.deleteMany({ where: { model, grantId } });
    },

    /** State of our own that lives like an artifact: written once, read, consumed once, expiring. */
    async create(model: string, id: string, payload: object, expiresInSeconds: number): Promise<void> {
      const r = inRedis(model);
      if (r) await r.save(model, id, JSON.stringify(payload), NO_COLUMNS, expiresInSeconds);
      else await prisma.oidcPayload.create({ data: { model, id, payload: JSON.stringify(payload), expiresAt: expiry(expiresInSeconds) } });
    },

    /** `create`, unless the artifact exists (live or not): of parallel claims of one id, exactly one gets true. */
    async claim(model: string, id: string, payload: ArtifactPayload, expiresInSeconds: number): Promise<boolean> {
      const count = await prisma.$executeRaw`
        INSERT INTO "OidcPayload" ("model", "id", "payload", "accountId", "clientId", "expiresAt")
        VALUES (${model}, ${id}, ${JSON.stringify(payload)}, ${payload.accountId ?? null}, ${payload.clientId ?? null}, ${expiry(expiresInSeconds)})
        ON CONFLICT ("model", "id") DO NOTHING`;
      return count === 1;
    },

    /**
     * Takes one use of an initial access token; false when it has none left. Of parallel uses of
     * a single-use token, exactly one gets it. A token with no count (null) works until it expires.
     */
    async useInitialAccessToken(id: string): Promise<boolean> {
      const model = MODEL.initialAccessToken;
      const { count } = await prisma.oidcPayload.updateMany({
        where: { model, id, OR: [{ remainingUses: null }, { remainingUses: { gt: 0 } }] },
        data: { remainingUses: { decrement: 1 } },
      });
      if (count) await prisma.oidcPayload.deleteMany({ where: { model, id, remainingUses: 0 } });
      return count === 1;
    },

    /** How many registrations an initial access token just saved may make (null: any number until it expires). */
    async limitInitialAccessToken(id: string, uses: number | null): Promise<void> {
      await prisma.oidcPayload.updateMany({ where: { model: MODEL.initialAccessToken, id }, data: { remainingUses: uses } });
    },

    // ---- grants

    async saveGrant(id: string, payload: { accountId?: unknown; clientId?: unknown }, expiresInSeconds?: number): Promise<void> {
      const columns = { payload: JSON.stringify(payload), expiresAt: expiry(expiresInSeconds) };
      await prisma.grant.upsert({
        where: { id },
        create: { id, accountId: String(payload.accountId), clientId: String(payload.clientId), ...columns },
        update: columns,
        select: { id: true },
      });
    },

    findGrant,

    /** The newest live grant an account gave a client: the consent a new browser session reuses. */
    grantFor(accountId: string, clientId: string): Promise<{ id: string; payload: string; expiresAt: Date | null } | null> {
      return prisma.grant.findFirst({
        where: { accountId, clientId, OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] },
        orderBy: { updatedAt: 'desc' },
        select: { id: true, payload: true, expiresAt: true },
      });
    },

    async destroyGrant(id: string): Promise<void> {
      await prisma.grant.deleteMany({ where: { id } });
    },

    grantsOf(accountId: string): Promise<GrantRow[]> {
      return prisma.grant.findMany({ where: { accountId }, orderBy: { createdAt: 'desc' }, select: { id: true, clientId: true, payload: true, createdAt: true, expiresAt: true } });
    },

    /** Revokes one grant of an account and everything issued under it; false when it holds no such grant. */
    async revokeGrant(accountId: string, grantId: string): Promise<boolean> {
      const revoked = await prisma.$transaction(async (tx) => {
        const { count } = await tx.grant.deleteMany({ where: { id: grantId, accountId } });
        if (count) await tx.oidcPayload.deleteMany({ where: { grantId } });
        return count > 0;
      });
      if (revoked) await redis?.destroyIndexed('grant', grantId, () => true);
      return revoked;
    },

    /** Every grant of an account and its artifacts (its sessions too, with `sessions`); returns how many grants. */
    async revokeAccount(accountId: string, sessions: boolean): Promise<number> {
      const count = await prisma.$transaction(async (tx) => {
        const { count } = await tx.grant.deleteMany({ where: { accountId } });
        await tx.oidcPayload.deleteMany({ where: { accountId, model: { not: MODEL.session } } });
        return count;
      });
      await redis?.destroyIndexed('account', accountId, notSession);
      if (sessions) await endSessions({ accountId });
      return count;
    },

    /** Ends the account's browser sessions; `exceptUid`: the one to keep (the browser asking). */
    revokeSessions(accountId: string, exceptUid?: string): Promise<number> {
      return endSessions({ accountId, ...(exceptUid ? { exceptUid } : {}) });
    },

    /** Ends one browser session, by its id (its cookie's value), on purpose: its clients are told. */
    async endSession(id: string): Promise<void> {
      await endSessions({ id });
    },

    /** The account's live browser sessions: each one's id (its cookie's value: never shown), uid and payload. */
    async sessionsOf(accountId: string): Promise<{ id: string; uid: string | null; payload: string; expiresAt: Date | null }[]> {
      if (redis) {
        const rows = (await redisSessions(redis, { accountId })).filter((row) => !row.expiresAt || row.expiresAt.getTime() > Date.now());
        return rows.slice(0, 200).map((row) => ({ id: row.id, uid: (JSON.parse(row.payload) as { uid?: string }).uid ?? null, payload: row.payload, expiresAt: row.expiresAt }));
      }
      return prisma.oidcPayload.findMany({
        where: { model: MODEL.session, accountId, OR: [{ expiresAt: null }, { expiresAt: { gt: new Date() } }] },
        select: { id: true, uid: true, payload: true, expiresAt: true },
        take: 200,
      });
    },

    /** Artifacts of one kind by their ids (at most a few hundred). */
    findMany(model: string, ids: readonly string[]): Promise<{ id: string; payload: string; expiresAt: Date | null }[]> {
      if (!ids.length) return Promise.resolve([]);
      const r = inRedis(model);
      if (r) return r.findMany(model, ids);
      return prisma.oidcPayload.findMany({ where: { model, id: { in: [...ids] } }, select: { id: true, payload: true, expiresAt: true } });
    },

    async destroyMany(model: string, ids: readonly string[]): Promise<void> {
      const r = inRedis(model);
      if (r) await r.destroy(model, ids);
      else if (ids.length) await prisma.oidcPayload.deleteMany({ where: { model, id: { in: [...ids] } } });
    },

    /** Every grant of a client and every artifact issued to it (client_credentials tokens included); returns how many grants. */
    async revokeClient(clientId: string): Promise<number> {
      const count = await prisma.$transaction(async (tx) => {
        const { count } = await tx.grant.deleteMany({ where: { clientId } });
        await tx.oidcPayload.deleteMany({ where: { clientId, model: { not: MODEL.session } } });
        return count;
      });
      await redis?.destroyIndexed('client', clientId, notSession);
      return count;
    },

    /** Deletes expired artifacts and grants; Redis expires its own (used codes and refresh tokens stay until they expire, so a replay is still recognised). */
    async purge(now: Date): Promise<{ artifacts: number; grants: number }> {
      const [artifacts, grants] = await Promise.all([
        prisma.oidcPayload.deleteMany({ where: { expiresAt: { lt: now } } }),
        prisma.grant.deleteMany({ where: { expiresAt: { lt: now } } }),
      ]);
      return { artifacts: artifacts.count, grants: grants.count };
    },
  };
}

export type ArtifactStore = ReturnType<typeof createArtifactStore>;
