import type { AuditService } from '../../audit/service.ts';
import type { ClientService } from '../../clients/service.ts';
import type { UpstreamService } from '../../federation/upstreams.ts';
import type { FederationService } from '../../federation/service.ts';
import type { KeyService } from '../../keys/service.ts';
import type { ResourceService } from '../../resources/service.ts';
import type { UserService } from '../../users/service.ts';
import type { LoginThrottle } from '../../users/throttle.ts';

/** The services the admin API calls (the wiring in src/services.ts provides them). */
export interface AdminServices {
  clients: ClientService;
  resources: ResourceService;
  users: UserService;
  federation: FederationService;
  upstreams: UpstreamService;
  keys: KeyService;
  audit: AuditService;
  /** DPoP proof replay detection. */
  throttle: Pick<LoginThrottle, 'hit'>;
}
