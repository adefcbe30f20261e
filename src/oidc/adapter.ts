import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { PrismaClient } from '../db/index.ts';
import type { ClientMetadata, ClientService } from '../clients/service.ts';
import { AppError } from '../lib/errors.ts';
import { OIDC_SCOPES } from './scopes.ts';

/** Models whose artifacts belong to a grant and die with it (revokeByGrantId). */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

const expiry = (expiresIn?: number) => (expiresIn ? new Date(Date.now() + expiresIn * 1000) : null);

const isLive = (expiresAt: Date | null) => !expiresAt || expiresAt.getTime() > Date.now();

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
    const columns = {
      payload: JSON.stringify(payload),
      grantId: GRANTABLE.has(this.model) ? (payload.grantId ?? null) : null,
      uid: this.model === 'Session' ? (payload.uid ?? null) : null,
      userCode: this.model === 'DeviceCode' ? (payload.userCode ?? null) : null,
      accountId: payload.accountId ?? null,
      clientId: payload.clientId ?? null,
      expiresAt: expiry(expiresIn),
    };
    await this.prisma.oidcPayload.upsert({
      where: { model_id: { model: this.model, id } },
      create: { model: this.model, id, ...columns },
      update: columns,
    });
  }

  private async findWhere(where: { id: string } | { uid: string } | { userCode: string }): Promise<AdapterPayload | undefined> {
    if (Object.values(where).some(impossible)) return undefined;
    const row = await this.prisma.oidcPayload.findFirst({ where: { model: this.model, ...where } });
    if (!row || !isLive(row.expiresAt)) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    return row.consumedAt ? { ...payload, consumed: Math.floor(row.consumedAt.getTime() / 1000) } : payload;
  }

  find(id: string) {
    return this.findWhere({ id });
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
    const { count } = await this.prisma.oidcPayload.updateMany({
      where: { model: this.model, id, consumedAt: null },
      data: { consumedAt: new Date() },
    });
    if (count === 0) throw new errors.InvalidGrant(`${this.model} was already used`);
  }

  async destroy(id: string): Promise<void> {
    await this.prisma.oidcPayload.deleteMany({ where: { model: this.model, id } });
  }

  async revokeByGrantId(grantId: string): Promise<void> {
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
    await this.prisma.grant.upsert({
      where: { id },
      create: { id, accountId: String(payload.accountId), clientId: String(payload.clientId), ...columns },
      update: columns,
    });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (impossible(id)) return undefined;
    const row = await this.prisma.grant.findUnique({ where: { id } });
    return row && isLive(row.expiresAt) ? (JSON.parse(row.payload) as AdapterPayload) : undefined;
  }

  async destroy(id: string): Promise<void> {
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

  constructor(clients: ClientService) {
    super();
    this.clients = clients;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (impossible(id)) return undefined;
    const row = await this.clients.findEnabled(id);
    if (!row) return undefined;
    const metadata = JSON.parse(row.metadata) as ClientMetadata;
    const scopes = String(metadata.scope ?? '').split(' ').filter(Boolean);
    const oidcScopes = scopes.filter((s) => OIDC_SCOPES.has(s));
    return {
      ...metadata,
      scope: oidcScopes.length ? oidcScopes.join(' ') : undefined,
      api_scopes: scopes.filter((s) => !OIDC_SCOPES.has(s)),
      ...(row.secretHash ? { client_secret: row.secretHash } : {}),
    } as AdapterPayload;
  }

  /** Dynamic client registration (RFC 7591) and its management updates (RFC 7592). */
  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    try {
      await this.clients.upsertRegistered({ ...payload, client_id: id }, { actor: `registration:${id}` });
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

export function createAdapterFactory(prisma: PrismaClient, clients: ClientService) {
  return (model: string): Adapter => {
    if (model === 'Client') return new ClientAdapter(clients);
    if (model === 'Grant') return new GrantAdapter(prisma);
    return new PayloadAdapter(model, prisma);
  };
}
