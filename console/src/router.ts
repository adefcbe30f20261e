import { BASE } from './config.ts';

/**
 * The console's addresses are real paths under /console/ (the server answers each with the
 * app), so a screen can be bookmarked, reloaded and opened in a new tab.
 */
const listeners = new Set<() => void>();

export const onNavigate = (fn: () => void) => {
  listeners.add(fn);
  return () => listeners.delete(fn);
};

/** The path inside the console, without /console/ ("" for the overview). */
export const currentPath = () => (location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '');
export const currentQuery = () => new URLSearchParams(location.search);

export function navigate(path: string, opts: { replace?: boolean } = {}): void {
  const url = path.startsWith('/') ? path : `${BASE}${path}`;
  if (opts.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  for (const fn of listeners) fn();
}

addEventListener('popstate', () => {
  for (const fn of listeners) fn();
});

/** Links inside the console: followed in the page, unless opened in a new tab. */
export function onLinkClick(event: MouseEvent): void {
  const link = (event.target as Element | null)?.closest?.('a');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || link.target) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}
