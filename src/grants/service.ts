import type { PrismaClient } from '../db/index.ts';

export interface GrantView {
  grantId: string;
  clientId: string;
  clientName: string | null;
  /** OpenID Connect scopes consented to. */
  scopes: string[];
  /** API identifier → scopes consented to for it. */
  apis: Record<string, string[]>;
  createdAt: Date;
  expiresAt: Date | null;
}

interface GrantPayload {
  openid?: { scope?: string };
  resources?: Record<string, string>;
}

const split = (s?: string) => (s ? s.split(' ').filter(Boolean) : []);

/**
 * Consents (grants) and everything issued under them. Revoking removes the grant and every
 * stored artifact of it (codes, refresh tokens, opaque access tokens); JWT access tokens are not
 * stored and expire on their own within their short lifetime.
 */
export function createGrantService(prisma: PrismaClient) {
  return {
    async listForUser(accountId: string): Promise<GrantView[]> {
      const grants = await prisma.grant.findMany({ where: { accountId }, orderBy: { createdAt: 'desc' } });
      const clients = await prisma.client.findMany({ where: { id: { in: [...new Set(grants.map((g) => g.clientId))] } }, select: { id: true, name: true } });
      const names = new Map(clients.map((c) => [c.id, c.name]));
      return grants.map((g) => {
        const payload = JSON.parse(g.payload) as GrantPayload;
        return {
          grantId: g.id,
          clientId: g.clientId,
          clientName: names.get(g.clientId) ?? null,
          scopes: split(payload.openid?.scope),
          apis: Object.fromEntries(Object.entries(payload.resources ?? {}).map(([api, scope]) => [api, split(scope)])),
          createdAt: g.createdAt,
          expiresAt: g.expiresAt,
        };
      });
    },

    /** Revokes one grant of a user; false when the user holds no such grant. */
    async revoke(accountId: string, grantId: string): Promise<boolean> {
      return prisma.$transaction(async (tx) => {
        const { count } = await tx.grant.deleteMany({ where: { id: grantId, accountId } });
        if (count) await tx.oidcPayload.deleteMany({ where: { grantId } });
        return count > 0;
      });
    },

    /** Ends everything a user holds: grants and their tokens, and optionally their sessions. */
    async revokeAllForUser(accountId: string, { sessions = false }: { sessions?: boolean } = {}): Promise<number> {
      return prisma.$transaction(async (tx) => {
        const { count } = await tx.grant.deleteMany({ where: { accountId } });
        await tx.oidcPayload.deleteMany({ where: { accountId, ...(sessions ? {} : { model: { not: 'Session' } }) } });
        return count;
      });
    },

    async revokeSessions(accountId: string): Promise<number> {
      const { count } = await prisma.oidcPayload.deleteMany({ where: { model: 'Session', accountId } });
      return count;
    },

    /** Everything issued to a client: its grants, their tokens, and its client_credentials tokens. */
    async revokeAllForClient(clientId: string): Promise<number> {
      return prisma.$transaction(async (tx) => {
        const { count } = await tx.grant.deleteMany({ where: { clientId } });
        await tx.oidcPayload.deleteMany({ where: { clientId, model: { not: 'Session' } } });
        return count;
      });
    },
  };
}

export type GrantService = ReturnType<typeof createGrantService>;
