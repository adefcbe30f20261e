import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Config } from '../config.ts';
import { createCatalogue, loadMessages, type Catalogue, type Messages } from '../i18n/catalogue.ts';
import { StartupError } from '../lib/errors.ts';

const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

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

/**
 * The templates of everything a person reads, pages and emails (views/*.eta), with the theme's
 * replacements (THEME_DIR), the messages catalogue and the brand. Every template gets `it.t`
 * (the catalogue in the language asked for), `it.lang` and `it.brand`.
 */
export interface Templates {
  render(template: string, data: Record<string, unknown>, lang: string): string;
  readonly catalogue: Catalogue;
  readonly brand: Config['brand'];
}

export function createTemplates(config: Pick<Config, 'defaultLocale' | 'brand' | 'themeDir'>): Templates {
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
  return {
    render: (template, data, lang) => eta.render(template, { ...data, lang, t: catalogue.translator(lang), brand: config.brand }),
    catalogue,
    brand: config.brand,
  };
}
