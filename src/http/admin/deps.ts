import type { PasswordReset } from '../../account/password-reset.ts';
import type { Invitations } from '../../account/invitations.ts';
import type { EmailVerification } from '../../account/verification.ts';
import type { AuditService } from '../../audit/service.ts';
import type { ClientService } from '../../clients/service.ts';
import type { UpstreamService } from '../../federation/upstreams.ts';
import type { FederationService } from '../../federation/service.ts';
import type { KeyService } from '../../keys/service.ts';
import type { Outbox } from '../../mail/outbox.ts';
import type { MfaService } from '../../mfa/service.ts';
import type { ResourceService } from '../../resources/service.ts';
import type { RoleService } from '../../roles/service.ts';
import type { UserService } from '../../users/service.ts';
import type { LoginThrottle } from '../../users/throttle.ts';

/** The services the admin API calls (the wiring in src/services.ts provides them). */
export interface AdminServices {
  clients: ClientService;
  resources: ResourceService;
  users: UserService;
  /** Roles and who has them; what a person's roles grant on the admin API. */
  roles: RoleService;
  federation: FederationService;
  /** People's second factors: seen, and turned off. */
  mfa: Pick<MfaService, 'overview' | 'resetAll'>;
  upstreams: UpstreamService;
  keys: KeyService;
  audit: AuditService;
  /** Outgoing email: listed, and retried when it failed. */
  outbox: Pick<Outbox, 'list' | 'retry'>;
  /** Password reset links an admin sends. */
  passwordReset: Pick<PasswordReset, 'sendByAdmin'>;
  /** Invitations, and verification email an admin sends. */
  invitations: Pick<Invitations, 'invite'>;
  verification: Pick<EmailVerification, 'sendByAdmin'>;
  /** DPoP proof replay detection. */
  throttle: Pick<LoginThrottle, 'hit'>;
}
