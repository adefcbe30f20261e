import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { StartupError } from '../lib/errors.ts';

/**
 * The messages catalogue: every word a person reads on our pages, per locale, one JSON file per
 * language (`views/locales/<tag>.json`, flat keys). Adding a language is adding a file.
 *
 * A message may hold `{name}` placeholders; a message with a count has plural forms as
 * `<key>.one`, `<key>.other`… (Unicode plural categories, chosen by Intl.PluralRules).
 */
export type Messages = Readonly<Record<string, string>>;
type Translate = (key: string, vars?: Readonly<Record<string, string | number>>) => string;

/** What a request says about its language, strongest first. */
interface LocaleHints {
  /** OIDC Core §3.1.2.1: the app's choice, a space-separated list of BCP 47 tags. */
  uiLocales?: unknown;
  /** The language the person chose with the switcher on our pages. */
  cookie?: string | undefined;
  acceptLanguage?: string | undefined;
}

export interface Catalogue {
  /** The locales with a messages file, the default first. */
  readonly locales: readonly string[];
  readonly defaultLocale: string;
  /** The locale to answer in: ui_locales, then the switcher's cookie, then Accept-Language, then the default. */
  negotiate(hints: LocaleHints): string;
  translator(locale: string): Translate;
  messages(locale: string): Messages;
}

const LOCALES_DIR = new URL('../../views/locales/', import.meta.url);
const PLURAL_SUFFIX = /\.(zero|one|two|few|many|other)$/;

/** The key a plural form belongs to (`wait.one` → `wait`); other keys are their own family. */
export const keyFamily = (key: string) => key.replace(PLURAL_SUFFIX, '');

export function loadMessages(dir: URL | string = LOCALES_DIR): Map<string, Messages> {
  const path = typeof dir === 'string' ? dir : dir.pathname;
  const all = new Map<string, Messages>();
  for (const file of readdirSync(path).filter((f) => f.endsWith('.json')).sort()) {
    const locale = basename(file, '.json');
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(join(path, file), 'utf8'));
    } catch (err) {
      throw new StartupError('invalid_messages', `${file}: not valid JSON (${(err as Error).message})`);
    }
    if (!parsed || typeof parsed !== 'object' || Object.values(parsed).some((v) => typeof v !== 'string')) {
      throw new StartupError('invalid_messages', `${file}: must be one JSON object of strings`);
    }
    all.set(locale, Object.freeze(parsed as Record<string, string>));
  }
  return all;
}

/** `ko-KR` matches `ko`; `en` matches `en-GB` only when there is no plain `en`. */
function match(tag: string, locales: readonly string[]): string | undefined {
  const wanted = tag.trim().toLowerCase();
  if (!wanted || wanted === '*') return undefined;
  return locales.find((l) => l.toLowerCase() === wanted) ?? locales.find((l) => l.toLowerCase() === wanted.split('-')[0]);
}

/** Accept-Language's tags by preference (q=0 dropped). */
function acceptLanguageTags(header: string): string[] {
  return header
    .slice(0, 1024)
    .split(',')
    .map((part, index) => {
      const [tag = '', ...params] = part.split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { tag: tag.trim(), q: q ? Number(q.slice(2)) : 1, index };
    })
    .filter((t) => t.tag && Number.isFinite(t.q) && t.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index)
    .map((t) => t.tag);
}

export function createCatalogue(defaultLocale: string, all: Map<string, Messages> = loadMessages()): Catalogue {
  if (!all.has(defaultLocale)) throw new StartupError('invalid_configuration', `DEFAULT_LOCALE: no messages for "${defaultLocale}" (available: ${[...all.keys()].join(', ')})`);
  const locales = [defaultLocale, ...[...all.keys()].filter((l) => l !== defaultLocale)];
  const fallback = all.get(defaultLocale)!;
  const translators = new Map<string, Translate>();

  for (const locale of locales) {
    const own = all.get(locale)!;
    const plural = new Intl.PluralRules(locale);
    const lookup = (key: string) => own[key] ?? fallback[key] ?? all.get('en')?.[key];
    translators.set(locale, (key, vars) => {
      const count = vars?.count;
      const text = (typeof count === 'number' ? (lookup(`${key}.${plural.select(count)}`) ?? lookup(`${key}.other`)) : undefined) ?? lookup(key);
      // A missing message shows its key, which the catalogue test makes impossible for ours.
      if (text === undefined) return key;
      return vars ? text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole)) : text;
    });
  }

  return {
    locales,
    defaultLocale,
    negotiate({ uiLocales, cookie, acceptLanguage }) {
      if (typeof uiLocales === 'string') {
        for (const tag of uiLocales.slice(0, 256).split(' ')) {
          const found = match(tag, locales);
          if (found) return found;
        }
      }
      const chosen = cookie ? match(cookie, locales) : undefined;
      if (chosen) return chosen;
      for (const tag of acceptLanguage ? acceptLanguageTags(acceptLanguage) : []) {
        const found = match(tag, locales);
        if (found) return found;
      }
      return defaultLocale;
    },
    translator: (locale) => translators.get(locale) ?? translators.get(defaultLocale)!,
    messages: (locale) => all.get(locale) ?? fallback,
  };
}
