import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { basename, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Config } from '../config.ts';
import { createCatalogue, loadMessages, type Catalogue, type Messages } from '../i18n/catalogue.ts';
import { StartupError } from '../lib/errors.ts';
import { brandStylesheet } from './brand.ts';

const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));
const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

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
  /** The headers every page is sent with. */
  readonly headers: Readonly<Record<string, string>>;
  readonly catalogue: Catalogue;
  /** The stylesheets, script, icons and theme files under /assets/. */
  asset(name: string): Asset | undefined;
  /** The name of the cookie the language switcher sets. */
  readonly localeCookie: string;
}

const TEMPLATE_NAMES = new Set(readdirSync(VIEWS_DIR).filter((f) => f.endsWith('.eta')).map((f) => basename(f, '.eta')));

/**
 * Raw (unescaped) output a theme template may use: the page body inside the layout, the
 * provider's own logout form, and includes. Anything else would let a theme print data unescaped.
 */
const RAW_ALLOWED = /^(it\.body|it\.form|include\(.*\))$/s;

function themeTemplates(themeDir: string | undefined): Map<string, string> {
  const overrides = new Map<string, string>();
  if (!themeDir) return overrides;
  for (const file of readdirSync(themeDir).filter((f) => f.endsWith('.eta'))) {
    const name = basename(file, '.eta');
    if (!TEMPLATE_NAMES.has(name)) throw new StartupError('invalid_theme', `THEME_DIR: ${file} does not replace a page (the pages are ${[...TEMPLATE_NAMES].map((n) => `${n}.eta`).join(', ')})`);
    const path = join(themeDir, file);
    for (const m of readFileSync(path, 'utf8').matchAll(/<%~([\s\S]*?)%>/g)) {
      const expression = m[1]!.trim();
      if (!RAW_ALLOWED.test(expression)) throw new StartupError('invalid_theme', `THEME_DIR: ${file} prints "${expression.slice(0, 60)}" unescaped; use <%= %>, which escapes`);
    }
    overrides.set(name, path);
  }
  return overrides;
}

/** The built-in messages, with a theme's files merged over them (a theme may reword, or add a language). */
function messagesWithTheme(themeDir: string | undefined): Map<string, Messages> {
  const all = loadMessages();
  const themeLocales = themeDir ? join(themeDir, 'locales') : undefined;
  if (!themeLocales || !existsSync(themeLocales)) return all;
  for (const [locale, messages] of loadMessages(themeLocales)) all.set(locale, Object.freeze({ ...all.get(locale), ...messages }));
  return all;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
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

type ViewsConfig = Pick<Config, 'secure' | 'defaultLocale' | 'brand' | 'themeDir'>;

export function createViews(config: ViewsConfig): Views {
  const overrides = themeTemplates(config.themeDir);
  // autoEscape: every <%= %> is HTML-escaped; templates never use raw output for user data.
  const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, cache: true, autoTrim: false });
  // Templates are named, flat: a theme's template replaces the built-in one of the same name
  // (layout and includes too, from either folder); the others stay.
  eta.resolvePath = (template) => {
    const name = basename(template, '.eta');
    if (!TEMPLATE_NAMES.has(name)) throw new Error(`no template ${name}`);
    return overrides.get(name) ?? join(VIEWS_DIR, `${name}.eta`);
  };
  const catalogue = createCatalogue(config.defaultLocale, messagesWithTheme(config.themeDir));
  const assets = loadAssets(config.themeDir, config.brand.colour);
  const localeCookie = config.secure ? '__Host-idp_locale' : 'idp_locale';
  const languages = catalogue.locales.map((locale) => ({ locale, name: catalogue.translator(locale)('language.name') }));

  return {
    render(template, data, req) {
      const lang = catalogue.negotiate({ uiLocales: req.uiLocales, cookie: cookieValue(req.headers.cookie, localeCookie), acceptLanguage: req.headers['accept-language'] });
      const back = req.here ?? '/';
      const switcher = languages.map((l) => ({ ...l, current: l.locale === lang, href: `/locale/${l.locale}?return=${encodeURIComponent(back).replaceAll('%2F', '/')}` }));
      return eta.render(template, { ...data, lang, t: catalogue.translator(lang), brand: config.brand, switcher });
    },
    headers: config.secure ? { ...HTML_HEADERS, ...HSTS } : HTML_HEADERS,
    catalogue,
    asset: (name) => assets.get(name),
    localeCookie,
  };
}
