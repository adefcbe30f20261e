import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import type { ClientService } from '../clients/service.ts';
import type { Config } from '../config.ts';
import { CLIENT_CORS_ROUTES, PROVIDER_ROUTES } from '../oidc/provider.ts';
import type { OidcHolder } from '../oidc/keyring.ts';
import { pinToIssuer } from './forwarded.ts';
import { isCrossSite } from './origin.ts';
import type { Views } from './views.ts';

/** The provider's endpoints that browsers visit, where it sets cookies. */
const BROWSER_ROUTES = [PROVIDER_ROUTES.authorization, PROVIDER_ROUTES.end_session, PROVIDER_ROUTES.code_verification];

/** Endpoints that only take form posts (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1, RFC 9126 §2, RFC 8628 §3.1). */
const POST_ONLY_ROUTES: ReadonlySet<string> = new Set([
  PROVIDER_ROUTES.token,
  PROVIDER_ROUTES.revocation,
  PROVIDER_ROUTES.introspection,
  PROVIDER_ROUTES.pushed_authorization_request,
  PROVIDER_ROUTES.device_authorization,
]);

const DISCOVERY_PATHS = ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server'];

/** The provider reads at most 56 KiB of body; a larger declared body is refused up front with 413. */
const PROVIDER_BODY_LIMIT = 56 * 1024;

/**
 * OpenID Connect Core §3.1.2.1 and RP-Initiated Logout §2: the authorization and logout endpoints
 * take POST as well as GET. A form posted there is answered with a redirect (303) to the same
 * request as a GET: the browser follows it as a top-level navigation, which carries the session
 * cookie (SameSite=Lax), as a cross-site POST would not. Its parameters must fit in an address.
 */
const POST_AS_GET_ROUTES: ReadonlySet<string> = new Set([PROVIDER_ROUTES.authorization, PROVIDER_ROUTES.end_session]);
const POST_AS_GET_LIMIT = 8 * 1024;

/** The form a browser posted, as a query string; undefined when it is larger than `limit` bytes. */
async function readForm(raw: NodeJS.ReadableStream, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of raw) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Hands the provider's paths to it untouched. The request body is left unread (the provider
 * parses it itself), and the URL is not rewritten, so the endpoints it advertises are the
 * ones it serves.
 */
export async function providerMount(app: FastifyInstance, opts: { oidc: OidcHolder; clients: Pick<ClientService, 'isRegisteredOrigin'>; config: Pick<Config, 'issuer' | 'issuerOrigin' | 'secure' | 'keys'>; views: Views }) {
  const { issuer, issuerOrigin, secure: secureIssuer } = opts.config;
  const issuerUrl = new URL(issuer);
  const jwksCacheSeconds = opts.config.keys.jwksCacheSeconds;
  const logoutConfirm = `${PROVIDER_ROUTES.end_session}/confirm`;
  // The provider adds the hash of the one inline script of its own pages to script-src.
  const pageHeaders = Object.entries(opts.views.headers).filter(([name]) => name !== 'cache-control');
  // One Koa handler per provider instance (a key change swaps the provider).
  const handlers = new WeakMap<Provider, ReturnType<Provider['callback']>>();
  const handlerFor = (provider: Provider) => {
    if (!handlers.has(provider)) handlers.set(provider, provider.callback());
    return handlers.get(provider)!;
  };
  const errorPage = (request: FastifyRequest, reply: FastifyReply, status: number, data: Record<string, unknown>) =>
    reply.code(status).headers(opts.views.headers).type('text/html; charset=utf-8').send(opts.views.render('error', data, { headers: request.headers }));

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  const paths = [...DISCOVERY_PATHS];
  for (const path of Object.values(PROVIDER_ROUTES)) paths.push(path, `${path}/*`);

  for (const url of paths) {
    app.route({
      method: ['GET', 'HEAD', 'POST', 'OPTIONS', 'PUT', 'DELETE'],
      url,
      async handler(request, reply) {
        const path = request.url.split('?')[0]!;
        if (Number(request.headers['content-length'] ?? 0) > PROVIDER_BODY_LIMIT) {
          return reply.code(413).header('cache-control', 'no-store').send({ error: 'invalid_request', error_description: 'request body too large' });
        }
        if (POST_ONLY_ROUTES.has(path) && request.method !== 'POST' && request.method !== 'OPTIONS') {
          return reply.code(405).header('allow', 'POST').header('cache-control', 'no-store').send({ error: 'invalid_request', error_description: `${path} accepts POST requests only` });
        }
        // Over https the browser endpoints set Secure cookies, which cannot be sent over plain
        // http: say what is wrong instead of failing inside the provider.
        if (secureIssuer && request.protocol !== 'https' && BROWSER_ROUTES.some((route) => path === route || path.startsWith(`${route}/`))) {
          return errorPage(request, reply, 400, {
            page: 'use_https',
            vars: { issuer },
            details: 'Behind a TLS-terminating proxy, set TRUST_PROXY to the number of proxies in front, or their addresses, so that X-Forwarded-Proto is honoured.',
          });
        }
        if (request.method === 'POST' && POST_AS_GET_ROUTES.has(path)) {
          const type = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
          if (type !== 'application/x-www-form-urlencoded') {
            return reply.code(400).header('cache-control', 'no-store').send({ error: 'invalid_request', error_description: `a POST to ${path} must send its parameters as application/x-www-form-urlencoded` });
          }
          const form = await readForm(request.raw, POST_AS_GET_LIMIT);
          if (form === undefined) {
            const hint = path === PROVIDER_ROUTES.authorization ? `; push a larger authorization request to ${PROVIDER_ROUTES.pushed_authorization_request} (PAR) first` : '';
            return reply.code(413).header('cache-control', 'no-store').send({ error: 'invalid_request', error_description: `a POST to ${path} may carry at most ${POST_AS_GET_LIMIT} bytes of parameters${hint}` });
          }
          const query = [request.url.split('?')[1], form].filter(Boolean).join('&');
          return reply.code(303).header('cache-control', 'no-store').redirect(query ? `${path}?${query}` : path, 303);
        }
        // The logout confirmation is a form too: besides its own CSRF token, it must come from here.
        if (request.method === 'POST' && path === logoutConfirm && isCrossSite(request.headers, issuerOrigin)) {
          return errorPage(request, reply, 403, { page: 'logout_rejected' });
        }
        // So are the device flow's (the user code typed, the approval).
        if (request.method === 'POST' && path === PROVIDER_ROUTES.code_verification && isCrossSite(request.headers, issuerOrigin)) {
          return errorPage(request, reply, 403, { page: 'form_rejected' });
        }
        // A preflight names an origin but no client, and the provider would allow any origin.
        // Only origins that some enabled client registered get an answer with CORS headers;
        // the request itself is then checked against the calling client's own origins.
        const origin = request.headers.origin;
        if (request.method === 'OPTIONS' && origin && CLIENT_CORS_ROUTES.has(path) && !(await opts.clients.isRegisteredOrigin(origin))) {
          return reply.code(204).header('vary', 'Origin').send();
        }
        // Pages the provider renders itself get the same headers as ours; caching is left to the
        // provider (no-store on its pages and token responses, public on discovery and JWKS).
        for (const [name, value] of pageHeaders) reply.raw.setHeader(name, value);
        // Relying parties and resource servers may cache discovery and the JWKS this long; key
        // rotation publishes new keys earlier than that.
        if (path === PROVIDER_ROUTES.jwks || DISCOVERY_PATHS.includes(path)) reply.raw.setHeader('cache-control', `public, max-age=${jwksCacheSeconds}`);
        pinToIssuer(request, issuerUrl);
        reply.hijack();
        handlerFor(opts.oidc.current)(request.raw, reply.raw);
      },
    });
  }
}
