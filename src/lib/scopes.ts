/** The OpenID Connect scopes the provider knows; every other scope belongs to a registered API. */
export const OIDC_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access', 'profile', 'email']);

/** The admin API's identifier (the `aud` of its tokens) and scopes: `admin:read` reads, `admin` changes. */
export const ADMIN_API = 'urn:idp:admin';
export const ADMIN_SCOPES: ReadonlySet<string> = new Set(['admin', 'admin:read']);

/**
 * What the admin API's scopes let an app do, in words for people (the consent page translates
 * these built-in ones itself; other APIs' descriptions are registered with them).
 */
export const ADMIN_SCOPE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  admin: 'Manage this identity provider',
  'admin:read': "View this identity provider's configuration",
};
