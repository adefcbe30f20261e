import { AsyncLocalStorage } from 'node:async_hooks';
import Provider, { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { isGrantable, MODEL, type ArtifactStore, type ArtifactWithGrant } from '../artifacts/store.ts';
import { CLIENT_LINKS, clientLinks, CONSOLE_CLIENT_ID, type ClientMetadata, type ClientService } from '../clients/service.ts';
import { AppError } from '../lib/errors.ts';
import { ADMIN_API, ADMIN_SCOPES, OIDC_SCOPES } from '../lib/scopes.ts';

/** What the Client adapter needs of the client service. */
export type ClientStore = Pick<ClientService, 'findEnabled' | 'upsertRegistered' | 'delete'>;

const isLive = (expiresAt: Date | null) => !expiresAt || expiresAt.getTime() > Date.now();

function livePayload(row: { payload: string; expiresAt: Date | null; consumedAt: Date | null }): AdapterPayload | undefined {
  if (!isLive(row.expiresAt)) return undefined;
  const payload = JSON.parse(row.payload) as AdapterPayload;
  return row.consumedAt ? { ...payload, consumed: Math.floor(row.consumedAt.getTime() / 1000) } : payload;
}

/** Tokens that introspection and revocation look up by the same value, all at once. */
const PRESENTED_TOKENS = ['AccessToken', 'ClientCredentials', 'RefreshToken'] as const;

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
  tokens: Map<string, Promise<ArtifactWithGrant[]>>;
  grants: Map<string, StoredRow | null>;
  /** Sessions by uid. */
  sessions: Map<string, StoredRow | null>;
}

const reads = new WeakMap<object, RequestReads>();
const newReads = (): RequestReads => ({ tokens: new Map(), grants: new Map(), sessions: new Map() });
/** Reads of a call made outside any provider request (`withReads`). */
const scoped = new AsyncLocalStorage<RequestReads>();

/**
 * Runs `fn` with reads of its own (or the ones it runs within), as a provider request has: an
 * interaction page reads its interaction with its session and grant, and the provider's check
 * of that session, and the consent's read of that grant, are served from there.
 */
export function withReads<T>(fn: () => Promise<T>): Promise<T> {
  return scoped.getStore() ? fn() : scoped.run(newReads(), fn);
}

/** This request's reads; made only by a lookup that keeps something in them (`create`). */
function requestReads(create = false): RequestReads | undefined {
  const own = scoped.getStore();
  if (own) return own;
  const ctx = Provider.ctx;
  if (!ctx) return undefined;
  let found = reads.get(ctx);
  if (!found && create) {
    found = newReads();
    reads.set(ctx, found);
  }
  return found;
}

/** A grant this request read another way (by account and client): the provider's next read of it is served from here. */
export function rememberGrant(id: string, row: StoredRow): void {
  requestReads(true)?.grants.set(id, row);
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
 * provider looks things up by (see src/artifacts/store.ts). Grants have a table of their own so
 * that a user's consents can be listed, and clients are read from the Client table, which is
 * written through our services.
 */
class PayloadAdapter implements Adapter {
  readonly model: string;
  readonly store: ArtifactStore;

  constructor(model: string, store: ArtifactStore) {
    this.model = model;
    this.store = store;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const memo = requestReads();
    memo?.tokens.delete(id);
    if (this.model === MODEL.session && payload.uid) memo?.sessions.delete(payload.uid);
    await this.store.save(this.model, id, payload, expiresIn);
  }

  /** By a unique column (one lookup, batched with others of the moment), then checked to be of this model. */
  private async findWhere(where: { uid: string } | { userCode: string }): Promise<AdapterPayload | undefined> {
    if (Object.values(where).some(impossible)) return undefined;
    const uid = this.model === MODEL.session && 'uid' in where ? where.uid : undefined;
    const memo = uid === undefined ? undefined : requestReads();
    if (uid !== undefined && memo?.sessions.has(uid)) {
      const session = memo.sessions.get(uid);
      return session ? livePayload({ ...session, consumedAt: null }) : undefined;
    }
    const row = await this.store.findUnique(where);
    return row?.model === this.model ? livePayload(row) : undefined;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (impossible(id)) return undefined;
    const together = presentedTogether(this.model);
    // A code or token with its grant and session; an interaction with its session.
    if (!together && !isGrantable(this.model) && this.model !== MODEL.interaction) {
      const row = await this.store.find(this.model, id);
      return row ? livePayload(row) : undefined;
    }
    const memo = requestReads(true);
    let rows = together ? memo?.tokens.get(id) : undefined;
    if (!rows) {
      rows = this.store.findWithGrantAndSession(id, together ? PRESENTED_TOKENS : [this.model]);
      if (together) memo?.tokens.set(id, rows);
    }
    const row = (await rows).find((r) => r.model === this.model);
    if (!row) return undefined;
    if (memo && row.grantId) memo.grants.set(row.grantId, stored(row.grantPayload, row.grantExpiresAt));
    if (memo && row.sessionUid) memo.sessions.set(row.sessionUid, stored(row.sessionPayload, row.sessionExpiresAt));
    return livePayload(row);
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
    if (!(await this.store.consume(this.model, id))) throw new errors.InvalidGrant(`${this.model} was already used`);
  }

  async destroy(id: string): Promise<void> {
    const memo = requestReads();
    memo?.tokens.delete(id);
    if (this.model === MODEL.session) memo?.sessions.clear();
    await this.store.destroy(this.model, id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    requestReads()?.tokens.clear();
    await this.store.destroyByGrant(this.model, grantId);
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
  readonly store: ArtifactStore;

  constructor(store: ArtifactStore) {
    super();
    this.store = store;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    requestReads()?.grants.delete(id);
    await this.store.saveGrant(id, payload, expiresIn);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (impossible(id)) return undefined;
    const memo = requestReads();
    const row = memo?.grants.has(id) ? memo.grants.get(id) : await this.store.findGrant(id);
    return row && isLive(row.expiresAt) ? (JSON.parse(row.payload) as AdapterPayload) : undefined;
  }

  async destroy(id: string): Promise<void> {
    requestReads()?.grants.delete(id);
    await this.store.destroyGrant(id);
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
  readonly clients: ClientStore;
  readonly store: ArtifactStore;

  constructor(clients: ClientStore, store: ArtifactStore) {
    super();
    this.clients = clients;
    this.store = store;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (impossible(id)) return undefined;
    const row = await this.clients.findEnabled(id);
    if (!row) return undefined;
    const metadata = JSON.parse(row.metadata) as ClientMetadata;
    const oidcScopes = String(metadata.scope ?? '').split(' ').filter((s) => OIDC_SCOPES.has(s));
    // The admin API is reachable through the admin flag (or as the console) alone, never through
    // registered metadata.
    const { [ADMIN_API]: _never, ...apis } = metadata.resource_scopes ?? {};
    return {
      ...metadata,
      // Only links that are https URLs (one stored before that rule is left out).
      ...Object.fromEntries(Object.values(CLIENT_LINKS).map((key) => [key, undefined])),
      ...clientLinks(metadata),
      scope: oidcScopes.length ? oidcScopes.join(' ') : undefined,
      resource_scopes: row.admin || row.id === CONSOLE_CLIENT_ID ? { ...apis, [ADMIN_API]: [...ADMIN_SCOPES] } : apis,
      ...(row.secretHash ? { client_secret: row.secretHash } : {}),
    } as AdapterPayload;
  }

  /** Dynamic client registration (RFC 7591) and its management updates (RFC 7592). */
  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    // A valid new registration uses up one use of its initial access token before it is stored.
    const iat = Provider.ctx?.oidc?.route === 'registration' ? Provider.ctx.oidc.entities.InitialAccessToken : undefined;
    const gate = async () => {
      if (iat?.jti && !(await this.store.useInitialAccessToken(iat.jti))) throw new errors.InvalidToken('initial access token already used');
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

export function createAdapterFactory(store: ArtifactStore, clients: ClientStore) {
  return (model: string): Adapter => {
    if (model === 'Client') return new ClientAdapter(clients, store);
    if (model === 'Grant') return new GrantAdapter(store);
    return new PayloadAdapter(model, store);
  };
}
