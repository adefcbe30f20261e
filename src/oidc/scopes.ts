/** The OpenID Connect scopes the provider knows; every other scope belongs to a registered API. */
export const OIDC_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access', 'profile', 'email']);
