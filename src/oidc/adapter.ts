import Provider, { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { PrismaClient } from '../db/index.ts';
import type { ClientMetadata, ClientService } from '../clients/service.ts';
import { AppError } from '../lib/errors.ts';
import { ADMIN_API, ADMIN_SCOPES, OIDC_SCOPES } from './scopes.ts';

/** Models whose artifacts belong to a grant and die with it (revokeByGrantId). */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

const expiry = (expiresIn?: number) => (expiresIn ? new Date(Date.now() + expiresIn * 1000) : null);

const isLive = (expiresAt: Date | null) => !expiresAt || expiresAt.getTime() > Date.now();

function livePayload(row: { payload: string; expiresAt: Date | null; consumedAt: Date | null }): AdapterPayload | undefined {
  if (!isLive(row.expiresAt)) return undefined;
  const payload = JSON.parse(row.payload) as AdapterPayload;
  return row.consumedAt ? { ...payload, consumed: Math.floor(row.consumedAt.getTime() / 1000) } : payload;
}

/** Tokens that introspection and revocation look up by the same value, all at once. */
const PRESENTED_TOKENS = ['AccessToken', 'ClientCredentials', 'RefreshToken'] as const;

interface TokenRow {
  model: string;
  payload: string;
  expiresAt: Date | null;
  consumedAt: Date | null;
  grantId: string | null;
  grantPayload: string | null;
  grantExpiresAt: Date | null;
  sessionUid: string | null;
  sessionPayload: string | null;
  sessionExpiresAt: Date | null;
}

interface StoredRow {
  payload: string;
  expiresAt: Date | null;
}

const stored = (payload: string | null, expiresAt: Date | null): StoredRow | null => (payload === null ? null : { payload, expiresAt });

/**
 * What one provider request has read already. A code or token is read together with its grant
 * and, when it dies with a session, that session (one query, not three); the provider's next
 * steps, reading the grant and checking the session, are served from here. Introspection and
 * revocation look a presented value up as an access token, client-credentials token and refresh
 * token at once: one query answers all three. Scoped to the request (its Koa context), so nothing
 * read here outlives it; a write in the same request drops what it changes.
 */
interface RequestReads {
  tokens: Map<string, Promise<TokenRow[]>>;
  grants: Map<string, StoredRow | null>;
  /** Sessions by uid. */
  sessions: Map<string, StoredRow | null>;
}

const reads = new WeakMap<object, RequestReads>();

/** This request's reads; made only by a lookup that keeps something in them (`create`). */
function requestReads(create = false): RequestReads | undefined {
  const ctx = Provider.ctx;
  if (!ctx) return undefined;
  let found = reads.get(ctx);
  if (!found && create) reads.set(ctx, (found = { tokens: new Map(), grants: new Map(), sessions: new Map() }));
  return found;
}

/** Whether this request looks a presented value up as every token kind, `model` among them. */
function presentedTogether(model: string): boolean {
  const route = Provider.ctx?.oidc?.route;
  return (route === 'introspection' || route === 'revocation') && (PRESENTED_TOKENS as readonly string[]).includes(model);
}

/** Ids come from requests; one with a NUL character cannot exist (and PostgreSQL refuses it in a query). */
const impossible = (value: string) => value.includes('\u0000');

/**
 * Every protocol artifact lives in OidcPayload, keyed by (model, id), with the columns the
 * provider looks things up by. Grants have a table of their own so that a user's consents can be
 * listed, and clients are read from the Client table, which is written through our services.
 */
class PayloadAdapter implements Adapter {
  readonly model: string;
  readonly prisma: PrismaClient;

  constructor(model: string, prisma: PrismaClient) {
    this.model = model;
    this.prisma = prisma;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const memo = requestReads();
    memo?.tokens.delete(id);
    if (this.model === 'Session' && payload.uid) memo?.sessions.delete(payload.uid);
    const grantable = GRANTABLE.has(this.model);
    const grantId = grantable ? (payload.grantId ?? null) : null;
    const sessionUid = grantable && payload.expiresWithSession ? (payload.sessionUid ?? null) : null;
    const uid = this.model === 'Session' ? (payload.uid ?? null) : null;
    const userCode = this.model === 'DeviceCode' ? (payload.userCode ?? null) : null;
    // Every save of every artifact comes through here: one statement that reads nothing back,
    // less than half the CPU of the equivalent model upsert (`npm run bench:queries`).
    await this.prisma.$executeRaw`
      INSERT INTO "OidcPayload" ("model", "id", "payload", "grantId", "sessionUid", "uid", "userCode", "accountId", "clientId", "expiresAt")
      VALUES (${this.model}, ${id}, ${JSON.stringify(payload)}, ${grantId}, ${sessionUid}, ${uid}, ${userCode}, ${payload.accountId ?? null}, ${payload.clientId ?? null}, ${expiry(expiresIn)})
      ON CONFLICT ("model", "id") DO UPDATE SET
        "payload" = excluded."payload", "grantId" = excluded."grantId", "sessionUid" = excluded."sessionUid", "uid" = excluded."uid",
        "userCode" = excluded."userCode", "accountId" = excluded."accountId", "clientId" = excluded."clientId", "expiresAt" = excluded."expiresAt"`;
  }

  /** By a unique column (one lookup, batched with others of the moment), then checked to be of this model. */
  private async findWhere(where: { uid: string } | { userCode: string }): Promise<AdapterPayload | undefined> {
    if (Object.values(where).some(impossible)) return undefined;
    const uid = this.model === 'Session' && 'uid' in where ? where.uid : undefined;
    const memo = uid === undefined ? undefined : requestReads();
    if (uid !== undefined && memo?.sessions.has(uid)) {
      const session = memo.sessions.get(uid);
      return session ? livePayload({ ...session, consumedAt: null }) : undefined;
    }
    const row = await this.prisma.oidcPayload.findUnique({ where, select: { model: true, payload: true, expiresAt: true, consumedAt: true } });
    return row?.model === this.model ? livePayload(row) : undefined;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (impossible(id)) return undefined;
    const together = presentedTogether(this.model);
    if (!together && !GRANTABLE.has(this.model)) {
      const row = await this.prisma.oidcPayload.findUnique({ where: { model_id: { model: this.model, id } }, select: { payload: true, expiresAt: true, consumedAt: true } });
      return row ? livePayload(row) : undefined;
    }
    const memo = requestReads(true);
    let rows = together ? memo?.tokens.get(id) : undefined;
    if (!rows) {
      rows = this.withGrantAndSession(id, together ? PRESENTED_TOKENS : [this.model]);
      if (together) memo?.tokens.set(id, rows);
    }
    const row = (await rows).find((r) => r.model === this.model);
    if (!row) return undefined;
    if (memo && row.grantId) memo.grants.set(row.grantId, stored(row.grantPayload, row.grantExpiresAt));
    if (memo && row.sessionUid) memo.sessions.set(row.sessionUid, stored(row.sessionPayload, row.sessionExpiresAt));
    return livePayload(row);
  }

  /** The artifact stored under `id` as any of `models`, each with its grant and session (if they still exist). */
  private withGrantAndSession(id: string, models: readonly string[]): Promise<TokenRow[]> {
    const [first, second = first, third = first] = models;
    return this.prisma.$queryRaw<TokenRow[]>`
      SELECT p."model", p."payload", p."expiresAt", p."consumedAt", p."grantId", p."sessionUid",
             g."payload" AS "grantPayload", g."expiresAt" AS "grantExpiresAt",
             s."payload" AS "sessionPayload", s."expiresAt" AS "sessionExpiresAt"
      FROM "OidcPayload" p
        LEFT JOIN "Grant" g ON g."id" = p."grantId"
        LEFT JOIN "OidcPayload" s ON s."model" = 'Session' AND s."uid" = p."sessionUid"
      WHERE p."id" = ${id} AND p."model" IN (${first}, ${second}, ${third})`;
  }

  findByUid(uid: string) {
    return this.findWhere({ uid });
  }

  findByUserCode(userCode: string) {
    return this.findWhere({ userCode });
  }

  /**
   * Atomic: of several parallel redemptions of one code or refresh token, exactly one marks
   * it consumed; the others are refused here instead of also being issued tokens.
   */
  async consume(id: string): Promise<void> {
    requestReads()?.tokens.delete(id);
    const { count } = await this.prisma.oidcPayload.updateMany({
      where: { model: this.model, id, consumedAt: null },
      data: { consumedAt: new Date() },
    });
    if (count === 0) throw new errors.InvalidGrant(`${this.model} was already used`);
  }

  async destroy(id: string): Promise<void> {
    const memo = requestReads();
    memo?.tokens.delete(id);
    if (this.model === 'Session') memo?.sessions.clear();
    await this.prisma.oidcPayload.deleteMany({ where: { model: this.model, id } });
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    requestReads()?.tokens.clear();
    await this.prisma.oidcPayload.deleteMany({ where: { model: this.model, grantId } });
  }
}

/** For models that are never looked up by uid or user code, and never consumed. */
abstract class KeyedAdapter {
  async findByUid(): Promise<undefined> {
    return undefined;
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(): Promise<void> {}
}

class GrantAdapter extends KeyedAdapter implements Adapter {
  readonly prisma: PrismaClient;

  constructor(prisma: PrismaClient) {
    super();
    this.prisma = prisma;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const columns = { payload: JSON.stringify(payload), expiresAt: expiry(expiresIn) };
    requestReads()?.grants.delete(id);
    await this.prisma.grant.upsert({
      where: { id },
      create: { id, accountId: String(payload.accountId), clientId: String(payload.clientId), ...columns },
      update: columns,
      select: { id: true },
    });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (impossible(id)) return undefined;
    const memo = requestReads();
    const row = memo?.grants.has(id) ? memo.grants.get(id) : await this.prisma.grant.findUnique({ where: { id }, select: { payload: true, expiresAt: true } });
    return row && isLive(row.expiresAt) ? (JSON.parse(row.payload) as AdapterPayload) : undefined;
  }

  async destroy(id: string): Promise<void> {
    requestReads()?.grants.delete(id);
    await this.prisma.grant.deleteMany({ where: { id } });
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.destroy(grantId);
  }
}

/**
 * Clients are written through the client service (CLI, admin API, and dynamic registration,
 * which reaches it through upsert below), which keeps only a hash of the secret. The provider
 * sees that hash as `client_secret` and compares presented secrets to it through the hook
 * installed in provider.ts. A disabled client does not exist for the provider.
 */
class ClientAdapter extends KeyedAdapter implements Adapter {
  readonly clients: ClientService;
  readonly prisma: PrismaClient;

  constructor(clients: ClientService, prisma: PrismaClient) {
    super();
    this.clients = clients;
    this.prisma = prisma;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (impossible(id)) return undefined;
    const row = await this.clients.findEnabled(id);
    if (!row) return undefined;
    const metadata = JSON.parse(row.metadata) as ClientMetadata;
    const oidcScopes = String(metadata.scope ?? '').split(' ').filter((s) => OIDC_SCOPES.has(s));
    // The admin API is reachable through the admin flag alone, never through registered metadata.
    const { [ADMIN_API]: _never, ...apis } = metadata.resource_scopes ?? {};
    return {
      ...metadata,
      scope: oidcScopes.length ? oidcScopes.join(' ') : undefined,
      resource_scopes: row.admin ? { ...apis, [ADMIN_API]: [...ADMIN_SCOPES] } : apis,
      ...(row.secretHash ? { client_secret: row.secretHash } : {}),
    } as AdapterPayload;
  }

  /** Dynamic client registration (RFC 7591) and its management updates (RFC 7592). */
  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    // A valid new registration uses up one use of its initial access token before it is stored.
    const iat = Provider.ctx?.oidc?.route === 'registration' ? Provider.ctx.oidc.entities.InitialAccessToken : undefined;
    const gate = async () => {
      if (iat?.jti && !(await useInitialAccessToken(this.prisma, iat.jti))) throw new errors.InvalidToken('initial access token already used');
    };
    try {
      await this.clients.upsertRegistered({ ...payload, client_id: id }, { actor: `registration:${id}` }, gate);
    } catch (err) {
      if (err instanceof AppError && err.status === 400) throw new errors.InvalidClientMetadata(err.message);
      throw err;
    }
  }

  async destroy(id: string): Promise<void> {
    await this.clients.delete(id, { actor: `registration:${id}` });
  }

  async revokeByGrantId(): Promise<void> {}
}

/**
 * Takes one use of an initial access token; false when it has none left. Of parallel
 * registrations with a single-use token, exactly one gets it. A token with no count (null) works
 * until it expires.
 */
async function useInitialAccessToken(prisma: PrismaClient, id: string): Promise<boolean> {
  const { count } = await prisma.oidcPayload.updateMany({
    where: { model: 'InitialAccessToken', id, OR: [{ remainingUses: null }, { remainingUses: { gt: 0 } }] },
    data: { remainingUses: { decrement: 1 } },
  });
  if (count) await prisma.oidcPayload.deleteMany({ where: { model: 'InitialAccessToken', id, remainingUses: 0 } });
  return count === 1;
}

/** How many registrations an initial access token just saved may make (null: any number until it expires). */
export async function limitInitialAccessToken(prisma: PrismaClient, id: string, uses: number | null): Promise<void> {
  await prisma.oidcPayload.updateMany({ where: { model: 'InitialAccessToken', id }, data: { remainingUses: uses } });
}

export function createAdapterFactory(prisma: PrismaClient, clients: ClientService) {
  return (model: string): Adapter => {
    if (model === 'Client') return new ClientAdapter(clients, prisma);
    if (model === 'Grant') return new GrantAdapter(prisma);
    return new PayloadAdapter(model, prisma);
  };
}
