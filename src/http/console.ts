import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CONSOLE_CLIENT_ID } from '../clients/service.ts';
import { ADMIN_API } from '../lib/scopes.ts';
import { CONTENT_TYPES, type Views } from './views.ts';

/** Where `npm install` / `npm run build` put the console (console/ built by Vite; not committed). */
const BUILT = fileURLToPath(new URL('../../dist/console/', import.meta.url));

/**
 * The page's policy: its own scripts and styles only (no inline script or style), its calls to
 * this origin only (the admin API, the token endpoint), no framing.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const escapeAttr = (value: string) => value.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;');

interface Built {
  html: string;
  assets: Map<string, { body: Buffer; type: string }>;
}

function loadBuilt(dir: string): Built | undefined {
  const index = join(dir, 'index.html');
  if (!existsSync(index)) return undefined;
  const assets = new Map<string, { body: Buffer; type: string }>();
  const assetDir = join(dir, 'assets');
  if (existsSync(assetDir)) {
    for (const file of readdirSync(assetDir)) {
      const type = CONTENT_TYPES[extname(file)];
      if (type && /^[\w.-]+$/.test(file)) assets.set(file, { body: readFileSync(join(assetDir, file)), type });
    }
  }
  return { html: readFileSync(index, 'utf8'), assets };
}

/**
 * The admin console: a single-page app (console/, built by Vite) that signs the admin in as the
 * built-in public client CONSOLE_CLIENT_ID and does everything through the admin API with the
 * admin's own token. Every path under /console/ answers its page (the app routes in the
 * browser); the hashed files under /console/assets/ are cached for good.
 */
export async function consoleRoutes(app: FastifyInstance, opts: { views: Views; issuer: string; dir?: string }) {
  const { views, issuer } = opts;
  const built = loadBuilt(opts.dir ?? BUILT);
  if (!built) app.log.warn('the admin console is not built (npm run build:console): /console answers 503');
  const headers = { ...views.headers, 'content-security-policy': CSP };
  const { locales } = views.catalogue;

  // The page in each language, made once: what the server tells the app (issuer, client, API,
  // languages) in meta tags, and the theme's accent colour after the console's own stylesheet.
  const head = [
    ['idp-issuer', issuer],
    ['idp-client-id', CONSOLE_CLIENT_ID],
    ['idp-admin-api', ADMIN_API],
    ['idp-locales', locales.join(' ')],
  ]
    .map(([name, content]) => `<meta name="${name}" content="${escapeAttr(content!)}">`)
    .concat('<link rel="stylesheet" href="/assets/brand.css">')
    .join('');
  const pages = new Map(built ? locales.map((lang) => [lang, built.html.replace('<html lang="en">', `<html lang="${lang}">`).replace('</head>', `${head}</head>`)]) : []);

  const page = (req: FastifyRequest, reply: FastifyReply) => {
    reply.headers(headers).type('text/html; charset=utf-8');
    const html = pages.get(views.lang({ headers: req.headers }));
    if (!html) return reply.code(503).header('retry-after', '60').send(views.render('error', { page: 'console_missing' }, { headers: req.headers }));
    return reply.send(html);
  };

  app.get('/console', (_req, reply) => reply.code(308).header('location', '/console/').send());
  app.get('/console/*', page);

  app.get<{ Params: { name: string } }>('/console/assets/:name', (req, reply) => {
    const asset = built?.assets.get(req.params.name);
    if (!asset) return reply.code(404).type('text/plain; charset=utf-8').send('Not found');
    // File names carry a hash of their content: a new build has new names.
    return reply.type(asset.type).header('cache-control', 'public, max-age=31536000, immutable').header('x-content-type-options', 'nosniff').send(asset.body);
  });

  // The console's words: the `console.` messages of one locale of the catalogue.
  const messages = new Map(locales.map((locale) => [locale, Object.fromEntries(Object.entries(views.catalogue.messages(locale)).filter(([k]) => k.startsWith('console.')))]));
  app.get<{ Params: { locale: string } }>('/console/messages/:locale', (req, reply) => {
    const found = messages.get(req.params.locale.replace(/\.json$/, ''));
    if (!found) return reply.code(404).send({ error: 'not_found', error_description: `no messages for ${req.params.locale}; there are ${locales.join(', ')}` });
    return reply.header('cache-control', 'no-cache').send(found);
  });
}
