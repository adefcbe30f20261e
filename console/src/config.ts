/** What the server put in the page (src/http/console.ts): the issuer, our client id, the admin API, the languages. */
const meta = (name: string) => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? '';

export const config = {
  issuer: meta('idp-issuer') || location.origin,
  clientId: meta('idp-client-id') || 'idp-console',
  adminApi: meta('idp-admin-api') || 'urn:idp:admin',
  locales: (meta('idp-locales') || 'en').split(' '),
};

/** Where the console lives, and where the IdP sends the admin back after signing in and out. */
export const BASE = '/console/';
export const CALLBACK = `${config.issuer}${BASE}callback`;
export const SIGNED_OUT = `${config.issuer}${BASE}`;
