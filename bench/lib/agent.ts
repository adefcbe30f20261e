import { createHash, randomBytes } from 'node:crypto';
import { UserAgent } from '../../test/helpers/user-agent.ts';

/** A server under test, as a client and a user of it see it. */
export interface Target {
  /** e.g. "ours-sqlite", "ceiling". */
  name: string;
  url: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  apiIdentifier: string;
  user: { email: string; password: string };
}

export const basicAuth = (t: Target) => `Basic ${Buffer.from(`${encodeURIComponent(t.clientId)}:${encodeURIComponent(t.clientSecret)}`).toString('base64')}`;

export const FORM = 'application/x-www-form-urlencoded';

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

const formAction = (html: string) => /<form[^>]*action="([^"]*\/(?:login|confirm|two-step))"/.exec(html)?.[1];
/** The login page's "Sign in with a passkey" form (it holds the challenge's options). */
const passkeyAction = (html: string) => /<form[^>]*action="([^"]*\/passkey)"[^>]*data-passkey=/.exec(html)?.[1];
const csrf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];

export interface AuthorizeOptions {
  scope: string;
  resource?: string;
  prompt?: string;
  /** The code from an authenticator app, when the sign-in asks for a second step. */
  secondFactor?: () => string;
  /** Sign in with a passkey instead of the password: the login page → the `response` field of its passkey form. */
  passkey?: (html: string) => string;
}

export interface Code {
  code: string;
  verifier: string;
}

/**
 * Sends one request of the flow. `authorize` calls it for every request it makes (`send` makes
 * the request), so that a caller can measure around each one; the default just sends.
 */
export type RequestHook = (method: string, url: string, send: () => Promise<Response>) => Promise<Response>;

const direct: RequestHook = (_method, _url, send) => send();

/** A fresh authorization request of the target's client (PKCE S256, state and nonce), and its code verifier. */
export function authorizeUrl(target: Target, opts: AuthorizeOptions): { url: string; verifier: string } {
  const { verifier, challenge } = pkce();
  const params = new URLSearchParams({
    client_id: target.clientId,
    response_type: 'code',
    redirect_uri: target.redirectUri,
    scope: opts.scope,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('base64url'),
    nonce: randomBytes(8).toString('base64url'),
    ...(opts.resource ? { resource: opts.resource } : {}),
    ...(opts.prompt ? { prompt: opts.prompt } : {}),
  });
  return { url: `${target.url}/authorize?${params}`, verifier };
}

/**
 * authorize → (login page → POST email and password) → (consent page → POST allow) → callback.
 * Pages are only met when the provider asks for them: with a signed-in session and a grant
 * that covers the request, /authorize redirects straight to the callback with a code.
 */
export async function authorize(target: Target, agent: UserAgent, opts: AuthorizeOptions, hook: RequestHook = direct): Promise<Code> {
  const request = authorizeUrl(target, opts);
  const { verifier } = request;
  let url = request.url;
  let res = await hook('GET', url, () => agent.request(url));
  for (let step = 0; step < 20; step++) {
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const location = new URL(res.headers.get('location') ?? '', url).href;
      if (location.startsWith(target.redirectUri)) {
        const callback = new URL(location).searchParams;
        const code = callback.get('code');
        if (!code) throw new Error(`${target.name}: the flow ended with ${callback.get('error')}: ${callback.get('error_description')}`);
        return { code, verifier };
      }
      url = location;
      res = await hook('GET', url, () => agent.request(location));
      continue;
    }
    const html = await res.text();
    const action = res.status === 200 ? (opts.passkey && passkeyAction(html)) || formAction(html) : undefined;
    const token = csrf(html);
    if (!action || !token) throw new Error(`${target.name}: unexpected answer ${res.status} at ${url}: ${html.slice(0, 300)}`);
    const fields: Record<string, string> = action.endsWith('/login') ? { email: target.user.email, password: target.user.password } : {};
    if (action.endsWith('/passkey')) fields.response = opts.passkey!(html);
    if (action.endsWith('/two-step')) {
      if (!opts.secondFactor) throw new Error(`${target.name}: the sign-in asks for a second factor at ${url}`);
      fields.code = opts.secondFactor();
    }
    const post = new URL(action, url).href;
    url = post;
    res = await hook('POST', post, () =>
      agent.request(post, {
        method: 'POST',
        body: new URLSearchParams({ _csrf: token, ...fields }),
        headers: { 'content-type': FORM, origin: target.url },
      }),
    );
  }
  throw new Error(`${target.name}: too many steps in the authorization flow`);
}

export interface TokenResponse {
  access_token: string;
  id_token?: string;
  refresh_token?: string;
  token_type: string;
  expires_in: number;
  scope?: string;
}

async function tokenRequest(target: Target, body: Record<string, string>, hook: RequestHook = direct): Promise<TokenResponse> {
  const url = `${target.url}/token`;
  const res = await hook('POST', url, () =>
    fetch(url, {
      method: 'POST',
      headers: { authorization: basicAuth(target), 'content-type': FORM },
      body: new URLSearchParams(body),
    }),
  );
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${target.name}: token endpoint answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as TokenResponse;
}

export function redeem(target: Target, code: Code, extra: Record<string, string> = {}, hook: RequestHook = direct): Promise<TokenResponse> {
  return tokenRequest(target, { grant_type: 'authorization_code', code: code.code, redirect_uri: target.redirectUri, code_verifier: code.verifier, ...extra }, hook);
}

/** The full sign-in of a new browser (the tests' user agent): login with the password, consent, code exchange; `hook` sees every request. */
export async function fullLogin(target: Target, opts: AuthorizeOptions, hook: RequestHook = direct): Promise<{ agent: UserAgent; tokens: TokenResponse }> {
  const agent = new UserAgent();
  const code = await authorize(target, agent, opts, hook);
  return { agent, tokens: await redeem(target, code, {}, hook) };
}

export const isJwt = (token: string) => token.split('.').length === 3;

/** Runs `fn` on `items` with at most `concurrency` at a time. */
export async function inParallel<T, R>(items: T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!, i);
      }
    }),
  );
  return results;
}
