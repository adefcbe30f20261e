import type { ClientService } from '../clients/service.ts';
import type { RoleService } from '../roles/service.ts';

/**
 * Who must sign in with a second factor, whatever they chose for themselves: everyone
 * (`MFA=required`), people signing in to a client that requires it, and people with a role that
 * requires it. Such a person with no second factor is taken through adding one during the
 * sign-in (src/http/interactions/second-factor.ts); a session without one is asked for it again
 * (the provider's `second_factor_required` check).
 */
export function createMfaPolicy(deps: { mode: 'optional' | 'required'; clients: Pick<ClientService, 'requiresMfa'>; roles: Pick<RoleService, 'requiresMfa'> }) {
  return {
    async requires(accountId: string, clientId: string): Promise<boolean> {
      return deps.mode === 'required' || (await deps.clients.requiresMfa(clientId)) || (await deps.roles.requiresMfa(accountId));
    },
  };
}

export type MfaPolicy = ReturnType<typeof createMfaPolicy>;
