import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Views } from './views.ts';

/** A path on this site to come back to: one slash, no scheme, no backslash, no control character. */
const isLocalPath = (value: unknown): value is string =>
  typeof value === 'string' && value.length <= 4096 && /^\/(?![/\\])/.test(value) && !value.includes('\\') && [...value].every((c) => c.charCodeAt(0) > 0x1f && c !== '\u007f');

const wantsHtml = (req: FastifyRequest) => /\btext\/html\b/i.test(String(req.headers.accept ?? ''));

/**
 * What a browser finds outside the sign-in flow: the stylesheets, script and icons under
 * /assets/, a landing page at /, the language switcher, and a page (not JSON) for an unknown
 * address.
 */
export async function siteRoutes(app: FastifyInstance, opts: { views: Views; issuer: string; secure: boolean }) {
  const { views } = opts;
  const page = (req: FastifyRequest, reply: FastifyReply, status: number, template: string, data: Record<string, unknown>) =>
    reply.code(status).headers(views.headers).type('text/html; charset=utf-8').send(views.render(template, data, { headers: req.headers, here: req.method === 'GET' ? req.url : undefined }));

  app.get<{ Params: { name: string } }>('/assets/:name', (req, reply) => {
    const asset = views.asset(req.params.name);
    if (!asset) return reply.code(404).type('text/plain; charset=utf-8').send('Not found');
    return reply.type(asset.type).header('cache-control', 'public, max-age=3600').header('x-content-type-options', 'nosniff').send(asset.body);
  });

  app.get('/', (req, reply) => page(req, reply, 200, 'landing', { discoveryUrl: `${opts.issuer}/.well-known/openid-configuration` }));

  // The language switcher: remembers the choice for a year and goes back to the page it was on.
  app.get<{ Params: { locale: string }; Querystring: { return?: unknown } }>('/locale/:locale', (req, reply) => {
    const back = isLocalPath(req.query.return) ? req.query.return : '/';
    const locale = views.catalogue.locales.find((l) => l === req.params.locale);
    if (locale) {
      reply.header('set-cookie', app.serializeCookie(views.localeCookie, locale, { path: '/', httpOnly: true, sameSite: 'lax', secure: opts.secure, maxAge: 365 * 24 * 3600 }));
    }
    return reply.code(303).header('location', back).header('cache-control', 'no-store').send();
  });

  app.setNotFoundHandler((req, reply) => {
    if (wantsHtml(req)) return page(req, reply, 404, 'error', { page: 'not_found' });
    return reply.code(404).send({ error: 'not_found', error_description: 'No such endpoint.' });
  });
}
