import type { ArtifactStore } from '../artifacts/store.ts';

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
export function createGrantService(store: ArtifactStore, clientNames: (ids: string[]) => Promise<Map<string, string>>) {
  return {
    async listForUser(accountId: string): Promise<GrantView[]> {
      const grants = await store.grantsOf(accountId);
      const names = await clientNames([...new Set(grants.map((g) => g.clientId))]);
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
    revoke: (accountId: string, grantId: string) => store.revokeGrant(accountId, grantId),

    /** Ends everything a user holds: grants and their tokens, and optionally their sessions. */
    revokeAllForUser: (accountId: string, { sessions = false }: { sessions?: boolean } = {}) => store.revokeAccount(accountId, sessions),

    /** Ends the user's browser sessions, but the one whose uid is `exceptUid` if given. */
    revokeSessions: (accountId: string, { exceptUid }: { exceptUid?: string } = {}) => store.revokeSessions(accountId, exceptUid),

    /** Everything issued to a client: its grants, their tokens, and its client_credentials tokens. */
    revokeAllForClient: (clientId: string) => store.revokeClient(clientId),
  };
}

export type GrantService = ReturnType<typeof createGrantService>;
