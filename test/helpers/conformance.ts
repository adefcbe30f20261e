/**
 * What the OpenID conformance suite's test modules do, against a real server: one server per
 * test file, on an https issuer behind a pretend TLS-terminating proxy (TRUST_PROXY=1 and
 * X-Forwarded-Proto: https on every request), so that discovery advertises https endpoints as
 * the suite requires, and openid-client talks to it without any plain-http allowance.
 *
 * The suite's client is registered as an operator would for a certification run: confidential,
 * client_secret_basic, and exempt from PKCE (the suite sends no code_challenge, except in
 * oidcc-ensure-request-with-valid-pkce-succeeds); a person signs in through the real pages.
 */
import { createLocalJWKSet, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import { expect } from 'vitest';
import { cliActor } from '../../src/audit/service.ts';
import type { createClientSchema } from '../../src/clients/service.ts';
import { idp } from './cli.ts';
import { REDIRECT_URI } from './flow.ts';
import { withServices } from './seed.ts';
import { freePort, startServer, type TestServer } from './server.ts';
import { formAction, UserAgent } from './user-agent.ts';

export { REDIRECT_URI };
/** Where the suite's client is sent back after logout (registered as its post_logout_redirect_uri). */
export const POST_LOGOUT_REDIRECT_URI = `${new URL(REDIRECT_URI).origin}/post_logout_redirect`;

interface Person {
  email: string;
  password: string;
  userId: string;
}

export interface Op {
  server: TestServer;
  /** The public https issuer. */
  issuer: string;
  person: Person;
  /** The suite's static client: confidential, client_secret_basic, exempt from PKCE. */
  client: { clientId: string; clientSecret: string };
  /** fetch through the pretend proxy: public https URLs go to the plain-http server. */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
  /** A fresh browser (cookies of its own) behind the same proxy. */
  browser(): UserAgent;
  /** openid-client's configuration for a client, from discovery, through the proxy. */
  discover(clientId: string, secret?: string, auth?: oidc.ClientAuth): Promise<oidc.Configuration>;
  /** The JWKS the server publishes now. */
  jwks(): Promise<ReturnType<typeof createLocalJWKSet>>;
  /** The discovery document. */
  metadata(): Promise<Record<string, unknown>>;
  /** A client created as an admin would (the services, in this process). */
  createClient(input: Partial<ClientInput> & { name: string }): Promise<{ clientId: string; clientSecret: string }>;
  /** Registers a client at the registration endpoint with an initial access token (RFC 7591). */
  register(metadata: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

type ClientInput = Parameters<(typeof createClientSchema)['parse']>[0] & Record<string, unknown>;

export async function startOp(extraEnv: Record<string, string> = {}): Promise<Op> {
  const port = await freePort();
  const issuer = `https://127.0.0.1:${port}`;
  const serverOrigin = `http://127.0.0.1:${port}`;
  const server = await startServer({ ISSUER: issuer, TRUST_PROXY: '1', ...extraEnv }, { port });
  const proxied = (url: string | URL) => {
    const text = String(url);
    return text.startsWith(issuer) ? serverOrigin + text.slice(issuer.length) : text;
  };
  const opFetch = (url: string | URL, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (String(url).startsWith(issuer)) headers.set('x-forwarded-proto', 'https');
    return fetch(proxied(url), { redirect: 'manual', ...init, headers });
  };
  const clients: Op['createClient'] = (input) =>
    withServices(server.env, async (services) => {
      const { client, clientSecret } = await services.clients.create(input as never, cliActor());
      return { clientId: client.clientId, clientSecret: clientSecret ?? '' };
    });

  const person = await withServices(server.env, async ({ users }) => {
    const email = `buffy-${Math.random().toString(36).slice(2)}@example.com`;
    const password = 'a long enough password';
    const user = await users.create({ email, password, name: 'Buffy Summers' }, cliActor());
    return { email, password, userId: user.id };
  });
  const client = await clients({
    name: 'Conformance Suite',
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: [POST_LOGOUT_REDIRECT_URI],
    grantTypes: ['authorization_code', 'refresh_token'],
    scope: 'openid profile email offline_access',
    requirePkce: false,
  });

  let initialAccessToken: string | undefined;
  const op: Op = {
    server,
    issuer,
    person,
    client,
    fetch: opFetch,
    browser: () => new UserAgent({ headers: { 'x-forwarded-proto': 'https' }, proxy: { publicOrigin: issuer, serverOrigin } }),
    discover: (clientId, secret, auth) =>
      oidc.discovery(new URL(issuer), clientId, secret, auth ?? (secret ? undefined : oidc.None()), {
        [oidc.customFetch]: (url: string, options: oidc.CustomFetchOptions) => opFetch(url, options as RequestInit),
      }),
    async jwks() {
      const res = await opFetch(`${issuer}/jwks`);
      return createLocalJWKSet((await res.json()) as JSONWebKeySet);
    },
    async metadata() {
      return (await (await opFetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    },
    createClient: clients,
    async register(metadata) {
      if (!initialAccessToken) {
        const created = await idp(['clients', 'initial-access-token', 'create', '--expires-in', '600', '--uses', 'unlimited', '--json'], server.env);
        if (created.code !== 0) throw new Error(created.stderr);
        initialAccessToken = created.json<{ initialAccessToken: string }>().initialAccessToken;
      }
      const res = await opFetch(`${issuer}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${initialAccessToken}` },
        body: JSON.stringify(metadata),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    close: () => server.close(),
  };
  return op;
}

/** How the authorization response comes back: in the redirect's query, or as an auto-posting form. */
export type ResponseMode = 'query' | 'form_post';

export interface AuthorizationResult {
  /** What the browser went through on the way: the login page, the consent page. */
  pages: ('login' | 'consent')[];
  /** The authorization response's parameters (code, state, iss; or error), read as the client would. */
  response: URLSearchParams;
  /** What openid-client reads the response from: the callback URL, or the form's POST. */
  callback: URL | Request;
  state: string;
  nonce: string | undefined;
  /** The page the browser stopped at when the server never called the client back (an error page). */
  page?: { status: number; html: string };
  /** With `post`: how the server answered the form (then followed as a browser does). */
  posted?: { status: number; location: string | null; cacheControl: string | null; sent: URLSearchParams };
}

export interface AuthorizeOptions {
  mode?: ResponseMode;
  /** Who signs in if the login page shows; the login page showing without it fails the test. */
  login?: Person;
  /** Send no nonce (oidcc-ensure-request-without-nonce-succeeds-for-code-flow). */
  noNonce?: boolean;
  redirectUri?: string;
  /** The parameters of the request, added to (or replacing) client_id, redirect_uri, response_type, scope, state and nonce. */
  params?: Record<string, string | undefined>;
  /** The full authorization URL to open instead (a request object, parameters in another order). */
  url?: URL;
  /**
   * Send the request as the suite's browser does in oidcc-ensure-post-request-succeeds: a form,
   * posted from the suite's origin to the authorization endpoint, its parameters in the body.
   */
  post?: boolean;
}

/** The authorization URL the suite builds: response_type=code, scope openid, state, nonce (and response_mode=form_post in that plan). */
export function authorizationUrl(config: oidc.Configuration, opts: AuthorizeOptions & { state: string; nonce?: string | undefined }) {
  const params: Record<string, string> = {
    redirect_uri: opts.redirectUri ?? REDIRECT_URI,
    scope: 'openid',
    state: opts.state,
    ...(opts.nonce ? { nonce: opts.nonce } : {}),
    ...(opts.mode === 'form_post' ? { response_mode: 'form_post' } : {}),
  };
  for (const [name, value] of Object.entries(opts.params ?? {})) {
    if (value === undefined) delete params[name];
    else params[name] = value;
  }
  const url = oidc.buildAuthorizationUrl(config, params);
  // openid-client always sends response_type: a module that leaves a parameter out removes it here.
  for (const [name, value] of Object.entries(opts.params ?? {})) if (value === undefined) url.searchParams.delete(name);
  return url;
}

/** The fields of the auto-posting form of response_mode=form_post, and where it posts. */
function readForm(html: string) {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]?.replaceAll('&amp;', '&');
  const fields = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) fields.append(m[1]!, m[2]!.replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#x2F;', '/').replaceAll('&#x3D;', '='));
  return { action, fields };
}

/**
 * Runs the front channel as the suite's browser would: opens the authorization URL, signs in if
 * the login page shows (and `login` is given), allows access if the consent page shows, and reads
 * the authorization response from wherever it comes.
 */
export async function authorize(ua: UserAgent, config: oidc.Configuration, opts: AuthorizeOptions = {}): Promise<AuthorizationResult> {
  const state = oidc.randomState();
  const nonce = opts.noNonce ? undefined : oidc.randomNonce();
  const redirectUri = opts.redirectUri ?? REDIRECT_URI;
  const url = opts.url ?? authorizationUrl(config, { ...opts, state, nonce });
  const pages: AuthorizationResult['pages'] = [];
  let posted: AuthorizationResult['posted'];
  let step: { res: Response; url: string };
  if (opts.post) {
    const endpoint = new URL(url.pathname, url.origin);
    const sent = new URLSearchParams(url.search);
    // A cross-site form. A real browser sends no SameSite=Lax cookie with it (this UserAgent does not
    // model SameSite, and the module's browser is fresh): hence the server's redirect to a GET.
    const res = await ua.request(endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://conformance.example.com' }, body: sent.toString() });
    const location = res.headers.get('location');
    posted = { status: res.status, location: location && new URL(location, endpoint).href, cacheControl: res.headers.get('cache-control'), sent };
    // The browser follows a 303 with a GET, as a top-level navigation.
    step = location && res.status >= 300 && res.status < 400 ? await ua.follow(new URL(location, endpoint), redirectUri) : { res, url: endpoint.href };
  } else {
    step = await ua.follow(url, redirectUri);
  }
  for (let i = 0; i < 4 && !step.url.startsWith(redirectUri); i++) {
    const html = await step.res.text();
    // form_post: the response (an error too, with its status) is a form that posts itself to the client.
    const form = readForm(html);
    if (form.action?.startsWith(redirectUri)) {
      const callback = new Request(form.action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.fields.toString() });
      return { pages, response: form.fields, callback, state, nonce, posted };
    }
    if (step.res.status !== 200) return { pages, response: new URLSearchParams(), callback: new URL(step.url), state, nonce, posted, page: { status: step.res.status, html } };
    if (/action="[^"]*\/login"/.test(html) && html.includes('name="password"')) {
      if (!opts.login) return { pages: [...pages, 'login'], response: new URLSearchParams(), callback: new URL(step.url), state, nonce, posted, page: { status: 200, html } };
      pages.push('login');
      step = await ua.submit(step.url, html, formAction(html, '/login'), { email: opts.login.email, password: opts.login.password }, redirectUri);
    } else if (html.includes('Allow access')) {
      pages.push('consent');
      step = await ua.submit(step.url, html, formAction(html, '/confirm'), {}, redirectUri);
    } else {
      return { pages, response: new URLSearchParams(), callback: new URL(step.url), state, nonce, posted, page: { status: step.res.status, html } };
    }
  }
  if (!step.url.startsWith(redirectUri)) {
    return { pages, response: new URLSearchParams(), callback: new URL(step.url), state, nonce, posted, page: { status: step.res.status, html: await step.res.text() } };
  }
  const callback = new URL(step.url);
  return { pages, response: callback.searchParams, callback, state, nonce, posted };
}

/** The code exchange the suite makes, through openid-client, with the ID token validated (nonce included). */
export async function exchange(config: oidc.Configuration, result: AuthorizationResult, extra: { pkceCodeVerifier?: string } = {}) {
  expect(result.response.get('error'), result.response.get('error_description') ?? '').toBeNull();
  expect(result.response.get('code')).toBeTruthy();
  return oidc.authorizationCodeGrant(config, result.callback, { expectedState: result.state, expectedNonce: result.nonce, idTokenExpected: true, ...extra });
}

/** Signs in from scratch (or with the browser's session) and redeems the code: the suite's happy flow. */
export async function happyFlow(op: Op, config: oidc.Configuration, opts: AuthorizeOptions & { ua?: UserAgent } = {}) {
  const ua = opts.ua ?? op.browser();
  const result = await authorize(ua, config, { login: op.person, ...opts });
  const tokens = await exchange(config, result);
  return { ua, result, tokens, claims: tokens.claims()! };
}

/** The server's error page, never a redirect to the client (what the suite asks to screenshot). */
export function expectErrorPage(result: AuthorizationResult, error?: string) {
  expect(result.page, 'the browser was sent to the client').toBeDefined();
  expect(result.page!.status).toBeGreaterThanOrEqual(400);
  expect(result.response.get('code')).toBeNull();
  if (error) expect(result.page!.html).toContain(error);
}

/** An error sent back to the client, with the state (and the issuer, RFC 9207). */
export function expectErrorResponse(op: Op, result: AuthorizationResult, error: string) {
  expect(result.page, result.page?.html.slice(0, 300)).toBeUndefined();
  expect(result.response.get('error')).toBe(error);
  expect(result.response.get('state')).toBe(result.state);
  expect(result.response.get('iss')).toBe(op.issuer);
  expect(result.response.get('code')).toBeNull();
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface EndSession {
  /** Whether the server asked the person to confirm (its logout page). */
  confirmed: boolean;
  /** Where the browser ended up: the client's post_logout_redirect_uri, or the server's own page. */
  url: URL;
  status: number;
  html: string;
}

/**
 * Sends the browser to the end_session_endpoint with `params`, confirms on the logout page if
 * the server shows one (as the suite's tester does), and follows to wherever that leads.
 */
export async function endSession(op: Op, ua: UserAgent, params: Record<string, string>): Promise<EndSession> {
  const url = new URL(`${op.issuer}/session/end`);
  url.search = new URLSearchParams(params).toString();
  const page = await ua.follow(url, REDIRECT_URI.replace(/\/callback$/, '/'));
  if (page.url.startsWith(new URL(REDIRECT_URI).origin)) return { confirmed: false, url: new URL(page.url), status: page.res.status, html: '' };
  const html = await page.res.text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
  if (!xsrf) return { confirmed: false, url: new URL(page.url), status: page.res.status, html };
  const confirm = await ua.request(`${op.issuer}/session/end/confirm`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: op.issuer },
    body: new URLSearchParams({ xsrf, logout: 'yes' }),
  });
  const location = confirm.headers.get('location');
  if (!location) return { confirmed: true, url: new URL(`${op.issuer}/session/end/confirm`), status: confirm.status, html: await confirm.text() };
  const landing = new URL(location, op.issuer);
  if (landing.origin === new URL(REDIRECT_URI).origin) return { confirmed: true, url: landing, status: confirm.status, html: '' };
  const done = await ua.follow(landing);
  return { confirmed: true, url: new URL(done.url), status: done.res.status, html: await done.res.text() };
}
