import { config } from './config.ts';

/**
 * The console's words come from the IdP's messages catalogue (views/locales/<locale>.json, the
 * `console.` keys), fetched for the page's language. `{name}` placeholders and plural forms
 * (`<key>.one`, `<key>.other`) work as on the sign-in pages.
 */
type Vars = Readonly<Record<string, string | number>>;

let locale = document.documentElement.lang || 'en';
let messages: Record<string, string> = {};
const listeners = new Set<() => void>();

export const currentLocale = () => locale;
export const onLocaleChange = (fn: () => void) => {
  listeners.add(fn);
  return () => listeners.delete(fn);
};

export async function loadLocale(next: string): Promise<void> {
  const response = await fetch(`${config.issuer}/console/messages/${encodeURIComponent(next)}.json`);
  if (!response.ok) throw new Error(`no messages for ${next}`);
  messages = (await response.json()) as Record<string, string>;
  locale = next;
  document.documentElement.lang = next;
  for (const fn of listeners) fn();
}

/** Switches the language here and remembers it for the IdP's pages too (the language switcher's cookie). */
export async function switchLocale(next: string): Promise<void> {
  await loadLocale(next);
  await fetch(`${config.issuer}/locale/${encodeURIComponent(next)}?return=/console/`, { redirect: 'manual', credentials: 'same-origin' }).catch(() => {});
}

const fill = (text: string, vars?: Vars) => (vars ? text.replace(/\{(\w+)\}/g, (all, name: string) => (name in vars ? String(vars[name]) : all)) : text);

export function t(key: string, vars?: Vars): string {
  const full = `console.${key}`;
  const direct = messages[full];
  if (direct !== undefined) return fill(direct, vars);
  if (vars && typeof vars.count === 'number') {
    const form = messages[`${full}.${new Intl.PluralRules(locale).select(vars.count)}`] ?? messages[`${full}.other`];
    if (form !== undefined) return fill(form, vars);
  }
  return full;
}

/** The name of a language in its own words (the browser's), for the switcher and the settings. */
export const languageName = (tag: string) => new Intl.DisplayNames([tag], { type: 'language' }).of(tag) ?? tag;

const dateTime = () => new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
export const formatDate = (iso: string | null | undefined) => (iso ? dateTime().format(new Date(iso)) : '—');
export const formatNumber = (n: number) => new Intl.NumberFormat(locale).format(n);
