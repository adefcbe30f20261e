import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';

const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

/**
 * Headers for every HTML page we render, whether Fastify or the embedded provider writes it:
 * no inline script, no framing, no caching of pages that carry per-user state or CSRF tokens.
 * There is deliberately no `form-action` directive: browsers apply it to the redirects that
 * follow a form post, which end at the client's redirect URI.
 */
const HTML_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/**
 * The provider writes a few pages itself: the form_post response and the logout form it submits
 * when there is nothing to confirm. Each carries one fixed inline script that submits the form;
 * the provider appends that script's sha256 to a `script-src` directive it finds, so exactly
 * that script runs and nothing else ('report-sample' alone allows nothing).
 */
export const PROVIDER_PAGE_CSP = `${HTML_HEADERS['content-security-policy']}; script-src 'report-sample'`;

/** Browsers remember to use https only for this host (sent only when the issuer is https). */
const HSTS = { 'strict-transport-security': 'max-age=31536000; includeSubDomains' };

export interface Views {
  render(template: string, data: Record<string, unknown>): string;
  /** The headers every page is sent with. */
  readonly headers: Readonly<Record<string, string>>;
}

export function createViews(opts: { secure: boolean } = { secure: false }): Views {
  // autoEscape: every <%= %> is HTML-escaped; templates never use raw output for user data.
  const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, cache: true, autoTrim: false });
  return {
    render: (template, data) => eta.render(template, data),
    headers: opts.secure ? { ...HTML_HEADERS, ...HSTS } : HTML_HEADERS,
  };
}
