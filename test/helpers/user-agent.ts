/**
 * A minimal user agent for the HTML pages: it keeps cookies, follows redirects one at a time
 * (so tests can stop at the client's redirect URI) and fills forms from the real pages.
 */
export class UserAgent {
  readonly cookies = new Map<string, string>();

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private store(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && new Date(a.split('=')[1]!).getTime() < Date.now());
      if (!value || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', this.cookieHeader());
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(res);
    return res;
  }

  /** Follows redirects until a non-redirect answer or a URL that starts with `stopAt`. */
  async follow(url: string | URL, stopAt?: string, init?: RequestInit): Promise<{ res: Response; url: string }> {
    let current = String(url);
    let res = await this.request(current, init);
    for (let hops = 0; hops < 20 && res.status >= 300 && res.status < 400; hops++) {
      current = new URL(res.headers.get('location')!, current).href;
      if (stopAt && current.startsWith(stopAt)) return { res, url: current };
      res = await this.request(current);
    }
    return { res, url: current };
  }

  /** Posts a form as a browser would, with the page's CSRF token, then follows the redirects. */
  async submit(pageUrl: string, html: string, action: string, fields: Record<string, string>, stopAt?: string) {
    const form = new URLSearchParams({ _csrf: csrfToken(html), ...fields });
    const target = new URL(action, pageUrl).href;
    const res = await this.request(target, {
      method: 'POST',
      body: form,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(pageUrl).origin },
    });
    if (res.status < 300 || res.status >= 400) return { res, url: target };
    return this.follow(new URL(res.headers.get('location')!, target), stopAt);
  }
}

export function csrfToken(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error('no CSRF token on the page');
  return match[1]!;
}

export function formAction(html: string, suffix: string): string {
  const match = new RegExp(`action="([^"]*${suffix})"`).exec(html);
  if (!match) throw new Error(`no form posting to *${suffix} on the page`);
  return match[1]!;
}
