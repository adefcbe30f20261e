/** Host names that are this machine: plain http is allowed to them (development, native apps). */
export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** How an API's access tokens may be signed (RFC 9068; chosen per API). */
export const API_SIGNING_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;

/**
 * Every signature algorithm accepted anywhere (client authentication, request objects, ID
 * tokens, DPoP proofs): asymmetric only. HMAC would be keyed with a client secret, which is
 * only stored hashed.
 */
export const ASYMMETRIC_ALGS = ['RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA'] as const;
