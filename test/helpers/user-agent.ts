/**
 * A minimal user agent for the HTML pages: it keeps cookies, follows redirects one at a time
 * (so tests can stop at the client's redirect URI) and fills forms from the real pages.
 */
export interface UserAgentOptions {
  /** Headers sent with every request (X-Forwarded-Proto from a pretend TLS proxy, say). */
  headers?: Record<string, string>;
  /** An https issuer served over plain http: URLs keep the public origin, requests go to the server's. */
  proxy?: { publicOrigin: string; serverOrigin: string };
}

export class UserAgent {
  private readonly options: UserAgentOptions;

  constructor(options: UserAgentOptions = {}) {
    this.options = options;
  }

  /** Cookies by host name, as browsers keep them (ports share a host's cookies). */
  readonly jars = new Map<string, Map<string, string>>();

  private jar(url: string | URL): Map<string, string> {
    const host = new URL(url).hostname;
    if (!this.jars.has(host)) this.jars.set(host, new Map());
    return this.jars.get(host)!;
  }

  /** The cookies of 127.0.0.1, where the identity provider under test runs. */
  get cookies(): Map<string, string> {
    return this.jar('http://127.0.0.1');
  }

  /** Every Set-Cookie line received, with its attributes, for tests of cookie flags. */
  readonly setCookieLines: string[] = [];

  private store(url: string | URL, res: Response) {
    const jar = this.jar(url);
    for (const line of res.headers.getSetCookie()) {
      this.setCookieLines.push(line);
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && new Date(a.split('=')[1]!).getTime() < Date.now());
      if (!value || expired) jar.delete(name);
      else jar.set(name, value);
    }
  }

  async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers({ ...this.options.headers, ...Object.fromEntries(new Headers(init.headers)) });
    const jar = this.jar(url);
    if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const { proxy } = this.options;
    const target = proxy && String(url).startsWith(proxy.publicOrigin) ? proxy.serverOrigin + String(url).slice(proxy.publicOrigin.length) : url;
    const res = await fetch(target, { ...init, headers, redirect: 'manual' });
    this.store(url, res);
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
