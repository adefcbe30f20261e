import type { IncomingHttpHeaders } from 'node:http';

/**
 * Whether a form post comes from another site. Browsers say where a request comes from in
 * Sec-Fetch-Site, and in Origin unless the page's Referrer-Policy (no-referrer) makes it
 * "null"; whichever is present must say "here". CSRF tokens are checked as well.
 */
export function isCrossSite(headers: IncomingHttpHeaders, issuerOrigin: string): boolean {
  const site = headers['sec-fetch-site'];
  const origin = headers.origin;
  const foreignSite = site !== undefined && site !== 'same-origin' && site !== 'none';
  const foreignOrigin = origin !== undefined && origin !== 'null' && origin !== issuerOrigin;
  return foreignSite || foreignOrigin;
}
