import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.ts';
import type { Catalogue } from '../i18n/catalogue.ts';
import type { Templates } from '../templates/engine.ts';
import { brandStylesheet } from './brand.ts';

const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));
/** The browser half of the passkey ceremonies (@simplewebauthn/browser's self-contained build), as /assets/webauthn.js. */
const WEBAUTHN_BUNDLE = join(createRequire(import.meta.url).resolve('@simplewebauthn/browser'), '../../dist/bundle/index.umd.min.js');

/**
 * Headers for every HTML page we render, whether Fastify or the embedded provider writes it:
 * scripts and styles only from our own files, images from us or over https (logos), no framing,
 * no caching of pages that carry per-user state or CSRF tokens. There is deliberately no
 * `form-action` directive: browsers apply it to the redirects that follow a form post, which end
 * at the client's redirect URI.
 */
const HTML_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** Browsers remember to use https only for this host (sent only when the issuer is https). */
const HSTS = { 'strict-transport-security': 'max-age=31536000; includeSubDomains' };

/** Words of the messages catalogue, chosen by a page's handler and translated by its template. */
export interface Message {
  key: string;
  vars?: Record<string, string | number>;
}

/** What a page needs to know of the request it answers. */
export interface PageRequest {
  headers: IncomingHttpHeaders;
  /** The `ui_locales` of the authorization request the page belongs to, if any. */
  uiLocales?: unknown;
  /** A page of ours the language switcher comes back to (a path that answers GET). */
  here?: string | undefined;
}

interface Asset {
  body: Buffer;
  type: string;
}

export interface Views {
  render(template: string, data: Record<string, unknown>, req: PageRequest): string;
  /** The language a page for this request is in (for an email the request causes, say). */
  lang(req: PageRequest): string;
  /** The headers every page is sent with. */
  readonly headers: Readonly<Record<string, string>>;
  readonly catalogue: Catalogue;
  /** The stylesheets, script, icons and theme files under /assets/. */
  asset(name: string): Asset | undefined;
  /** The name of the cookie the language switcher sets. */
  readonly localeCookie: string;
}

/** The types of the files we serve as they are (the pages' assets, the console's). */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/** Built-in assets, then the theme's (which win), then the brand stylesheet; read once at start. */
function loadAssets(themeDir: string | undefined, brandColour: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const dir of [PUBLIC_DIR, ...(themeDir ? [join(themeDir, 'assets')] : [])]) {
    if (!existsSync(dir)) continue;
    for (const file of readdirSync(dir)) {
      const type = CONTENT_TYPES[extname(file).toLowerCase()];
      const path = join(dir, file);
      if (type && /^[\w.-]+$/.test(file) && statSync(path).isFile()) assets.set(file, { body: readFileSync(path), type });
    }
  }
  assets.set('brand.css', { body: Buffer.from(brandStylesheet(brandColour)), type: CONTENT_TYPES['.css']! });
  assets.set('webauthn.js', { body: readFileSync(WEBAUTHN_BUNDLE), type: CONTENT_TYPES['.js']! });
  return assets;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim()).slice(0, 35);
  }
  return undefined;
}

/** The pages: templates in the person's language, with the language switcher, and the headers every page is sent with. */
export function createViews(templates: Templates, config: Pick<Config, 'secure' | 'brand' | 'themeDir'>): Views {
  const { catalogue } = templates;
  const assets = loadAssets(config.themeDir, config.brand.colour);
  const localeCookie = config.secure ? '__Host-idp_locale' : 'idp_locale';
  const languages = catalogue.locales.map((locale) => ({ locale, name: catalogue.translator(locale)('language.name') }));

  const languageOf = (req: PageRequest) => catalogue.negotiate({ uiLocales: req.uiLocales, cookie: cookieValue(req.headers.cookie, localeCookie), acceptLanguage: req.headers['accept-language'] });
  return {
    lang: languageOf,
    render(template, data, req) {
      const lang = languageOf(req);
      const back = req.here ?? '/';
      const switcher = languages.map((l) => ({ ...l, current: l.locale === lang, href: `/locale/${l.locale}?return=${encodeURIComponent(back).replaceAll('%2F', '/')}` }));
      return templates.render(template, { ...data, switcher }, lang);
    },
    headers: config.secure ? { ...HTML_HEADERS, ...HSTS } : HTML_HEADERS,
    catalogue,
    asset: (name) => assets.get(name),
    localeCookie,
  };
}
