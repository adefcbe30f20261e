import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Command, Option } from 'commander';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { loadConfig } from '../config.ts';
import { randomToken, sha256 } from '../lib/crypto.ts';
import { AppError, badRequest } from '../lib/errors.ts';
import { integer, jsonOption, print, type JsonOption } from './kit.ts';

interface LoginOptions extends JsonOption {
  client: string;
  clientSecret?: string;
  issuer?: string;
  scope: string;
  resource?: string;
  prompt?: string;
  port: number;
  timeout: number;
  open: boolean;
}

/** What the command reads from the issuer's discovery document. */
interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  pushed_authorization_request_endpoint?: string;
  authorization_response_iss_parameter_supported?: boolean;
}

const seconds = (n: number) => `${n} second${n === 1 ? '' : 's'}`;

/** A failure the person can act on: printed as `{error, error_description}` by the CLI. */
const failure = (code: string, message: string) => badRequest(message, code);

const HELP = `
The client must have the redirect URI http://127.0.0.1:<port>/callback registered:
http://127.0.0.1:8765/callback for the default port. Redirect URIs match exactly, port
included, unless the client is registered with --application-type native: a native app's
loopback redirect URIs match any port (RFC 8252), so --port may then be anything, 0 included.
  npx idp clients create --name "Terminal" --redirect-uri http://127.0.0.1:8765/callback --json
A confidential client's secret is read from IDP_CLIENT_SECRET (or --client-secret); a client
created with --public has none.

Without --resource the access token is for this identity provider itself: /userinfo takes it
  curl -H "Authorization: Bearer <access_token>" <issuer>/userinfo
With --resource <API identifier> (an API the client may use: ask for its scopes in --scope as
well, "openid read") the access token is a JWT (typ at+jwt) whose audience is that API; the
API checks it with the issuer's published keys. /userinfo refuses it, since it was issued for
the API and not for userinfo: sign in again without --resource for a token /userinfo takes.

A refresh token comes back when the client may use refresh_token and --scope includes
offline_access, asked with --prompt consent.

The address to open is printed on standard error; the tokens, on standard output.`;

/** `idp dev …`: tools for trying the identity provider out from a terminal. */
export function devCommands(program: Command) {
  const dev = program.command('dev').description('try the identity provider from a terminal, without writing an app');
  jsonOption(
    dev
      .command('login')
      .description('sign in through a browser with the authorization code flow (PKCE), then print the tokens and the ID token’s claims')
      .requiredOption('--client <client_id>', 'the client to sign in with')
      .addOption(new Option('--client-secret <secret>', 'the client’s secret, for a confidential client (prefer the environment variable: arguments show up in process lists)').env('IDP_CLIENT_SECRET'))
      .option('--issuer <url>', 'the identity provider (default: ISSUER, else http://localhost:PORT, as the server derives it)')
      .option('--scope <scopes>', 'space-separated scopes to ask for', 'openid email')
      .option('--resource <identifier>', 'an API identifier: the access token is then a JWT for that API (RFC 8707, RFC 9068)')
      .option('--prompt <prompt>', 'consent: ask for consent again (needed for offline_access); login: sign in again')
      .option('--port <port>', 'the loopback port that receives the redirect (0: any free port, for a native client)', integer('--port', 0, 65535), 8765)
      .option('--timeout <seconds>', 'how long to wait for the sign-in', integer('--timeout', 1, 24 * 3600), 300)
      .option('--no-open', 'print the address to open without trying to open a browser'),
  )
    .addHelpText('after', HELP)
    .action(login);
}

async function login(opts: LoginOptions) {
  const issuer = issuerOf(opts);
  const meta = await discover(issuer);
  const secret = opts.clientSecret || undefined;

  const loopback = await listen(opts.port);
  try {
    const redirectUri = `http://127.0.0.1:${loopback.port}/callback`;
    const verifier = randomToken(32);
    const state = randomToken(32);
    const nonce = randomToken(32);
    const params = new URLSearchParams({
      response_type: 'code',
      client_id: opts.client,
      redirect_uri: redirectUri,
      scope: opts.scope,
      state,
      nonce,
      code_challenge: sha256(verifier),
      code_challenge_method: 'S256',
    });
    if (opts.prompt) params.set('prompt', opts.prompt);
    if (opts.resource) params.set('resource', opts.resource);

    // The pushed authorization endpoint (RFC 9126) checks the request as the authorization
    // endpoint would (client, secret, redirect URI, scopes, API), but answers in JSON: a mistake
    // is reported here at once, where a browser would only show an error page. Its request_uri is
    // not used, so that the address printed below shows every parameter and does not expire.
    if (meta.pushed_authorization_request_endpoint) {
      await post(meta.pushed_authorization_request_endpoint, params, opts.client, secret, 'the pushed authorization endpoint', (error, description) => hint(error, description, redirectUri, opts.port === 0));
    }

    const url = `${meta.authorization_endpoint}?${params}`;
    const opened = opts.open && openBrowser(url);
    process.stderr.write(
      `${opened ? 'A browser should open; if it does not, open' : 'Open'} this address to sign in:\n\n${url}\n\nWaiting up to ${seconds(opts.timeout)} for the redirect to ${redirectUri} ...\n`,
    );

    const callback = await loopback.next(state, opts.timeout);
    try {
      const tokens = await redeem(meta, callback.params, { clientId: opts.client, secret, redirectUri, verifier, nonce, resource: opts.resource });
      callback.answer(200, 'Signed in. You can close this tab and go back to the terminal.');
      print(opts, tokens);
    } catch (err) {
      callback.answer(400, `Sign-in failed: ${err instanceof AppError && err.expose ? err.message : 'unexpected error'}\n\nSee the terminal for details; you can close this tab.`);
      throw err;
    }
  } finally {
    loopback.close();
  }
}

/** --issuer, else the issuer the server itself would use (ISSUER, else http://localhost:PORT). */
function issuerOf(opts: LoginOptions): string {
  if (opts.issuer === undefined) return loadConfig().issuer;
  if (!URL.canParse(opts.issuer) || !/^https?:$/.test(new URL(opts.issuer).protocol)) throw badRequest('--issuer must be an http(s) URL');
  return opts.issuer.replace(/\/+$/, '');
}

/** A request to the identity provider; an unreachable server is a clear error, not a stack trace. */
async function request(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    const reason = (err as { cause?: { code?: string; message?: string } }).cause;
    throw failure('server_unreachable', `cannot reach ${url} (${reason?.code ?? reason?.message ?? (err as Error).message}): is the server running, and is the issuer right (--issuer or ISSUER)?`);
  }
}

/** The discovery document (OpenID Connect Discovery 1.0), which must name the issuer asked for. */
async function discover(issuer: string): Promise<Discovery> {
  const url = `${issuer}/.well-known/openid-configuration`;
  const res = await request(url, { headers: { accept: 'application/json' } });
  const meta = res.ok ? ((await res.json().catch(() => undefined)) as Partial<Discovery> | undefined) : undefined;
  if (!meta || typeof meta !== 'object') throw failure('invalid_issuer', `${url} answered ${res.status} without a discovery document: is ${issuer} the issuer (--issuer or ISSUER)?`);
  if (meta.issuer !== issuer) throw failure('invalid_issuer', `the discovery document at ${url} names the issuer ${String(meta.issuer)}: pass --issuer ${String(meta.issuer)}`);
  for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
    if (typeof meta[field] !== 'string') throw failure('invalid_issuer', `the discovery document at ${url} has no ${field}`);
  }
  return meta as Discovery;
}

/**
 * A next step for the mistakes a first sign-in most often meets. (The pushed authorization
 * endpoint reports an unregistered redirect URI as invalid_request, RFC 9126 §2.3.)
 */
function hint(error: string, description: string, redirectUri: string, anyPort: boolean): string {
  if (error === 'invalid_client') return '; check --client, and give a confidential client’s secret in IDP_CLIENT_SECRET or --client-secret (a public client has none)';
  if (!/redirect_uri/.test(description)) return '';
  if (anyPort) return '; --port 0 needs a client registered with --application-type native and a redirect URI http://127.0.0.1/callback';
  return `; the client must have ${redirectUri} among its redirect URIs, or run with the --port of the one it has (idp clients show <client_id>)`;
}

/**
 * A form post to an endpoint that authenticates the client: client_secret_basic with a secret,
 * otherwise a public client that names itself (token_endpoint_auth_method none). An OAuth error
 * answer becomes the CLI's error, with its `error` code.
 */
async function post(url: string, form: URLSearchParams, clientId: string, secret: string | undefined, endpoint: string, more: (error: string, description: string) => string = () => ''): Promise<Record<string, unknown>> {
  const body = new URLSearchParams(form);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (secret !== undefined) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  else body.set('client_id', clientId);
  const res = await request(url, { method: 'POST', headers, body });
  const answer = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (res.ok && answer && typeof answer === 'object') return answer;
  const error = typeof answer?.error === 'string' ? answer.error : 'server_error';
  const description = typeof answer?.error_description === 'string' ? answer.error_description : `status ${res.status}`;
  throw failure(error, `${endpoint} refused the request: ${error} (${description})${more(error, description)}`);
}

interface Exchange {
  clientId: string;
  secret: string | undefined;
  redirectUri: string;
  verifier: string;
  nonce: string;
  resource: string | undefined;
}

/**
 * Checks the redirect's `iss` (RFC 9207) and `error`, redeems the code, and checks the ID token
 * (signature, issuer, audience, nonce). Returns what the command prints.
 */
async function redeem(meta: Discovery, params: URLSearchParams, x: Exchange): Promise<Record<string, unknown>> {
  const iss = params.get('iss');
  if (iss !== null ? iss !== meta.issuer : meta.authorization_response_iss_parameter_supported) {
    throw failure('invalid_issuer', `the redirect came from ${iss === null ? 'an unnamed issuer' : iss}, not ${meta.issuer}: its code was not used`);
  }
  const error = params.get('error');
  if (error !== null) {
    const description = params.get('error_description');
    throw failure(error, `the authorization endpoint answered ${error}${description ? ` (${description})` : ''}`);
  }
  const code = params.get('code');
  if (!code) throw failure('invalid_request', 'the redirect carried neither a code nor an error');

  const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: x.redirectUri, code_verifier: x.verifier });
  if (x.resource) form.set('resource', x.resource);
  const tokens = await post(meta.token_endpoint, form, x.clientId, x.secret, 'the token endpoint');

  const out: Record<string, unknown> = {};
  for (const name of ['access_token', 'token_type', 'expires_in', 'scope', 'id_token', 'refresh_token']) {
    if (tokens[name] !== undefined) out[name] = tokens[name];
  }
  if (typeof tokens.id_token === 'string') {
    const { payload } = await jwtVerify(tokens.id_token, createRemoteJWKSet(new URL(meta.jwks_uri)), { issuer: meta.issuer, audience: x.clientId, clockTolerance: 60 }).catch((err: unknown) => {
      throw failure('invalid_id_token', `the ID token did not verify: ${(err as Error).message}`);
    });
    if (payload.nonce !== x.nonce) throw failure('invalid_id_token', 'the ID token does not carry the nonce of this sign-in');
    out.id_token_claims = payload;
  }
  return out;
}

/** The redirect this command waits for, and how to answer the browser that brought it. */
interface Callback {
  params: URLSearchParams;
  answer(status: number, text: string): void;
}

function reply(res: ServerResponse, status: number, text: string) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', connection: 'close' }).end(`${text}\n`);
}

/**
 * A server on 127.0.0.1 whose /callback receives the redirect. A redirect whose `state` is not
 * this sign-in's is refused and the wait goes on (a stale tab, or a forged response); the first
 * one that matches is handed over, to be answered once its code is redeemed.
 */
async function listen(port: number) {
  let waiting: ((callback: Callback) => void) | undefined;
  let expected = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== '/callback') return reply(res, 404, 'Not found.');
    if (!waiting) return reply(res, 410, 'This sign-in is over: start another one from the terminal.');
    if (!expected || url.searchParams.get('state') !== expected) {
      return reply(res, 400, 'Refused: this response does not belong to the sign-in the terminal is waiting for (its state does not match).');
    }
    const resolve = waiting;
    waiting = undefined;
    resolve({ params: url.searchParams, answer: (status, text) => reply(res, status, text) });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' || err.code === 'EACCES' ? badRequest(`--port: cannot listen on 127.0.0.1:${port} (${err.code}); choose another port, registered for the client as well`) : err),
    );
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    next(state: string, timeoutSeconds: number): Promise<Callback> {
      expected = state;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting = undefined;
          reject(failure('timeout', `no sign-in came back within ${seconds(timeoutSeconds)} (--timeout)`));
        }, timeoutSeconds * 1000);
        waiting = (callback) => {
          clearTimeout(timer);
          resolve(callback);
        };
      });
    },
    close() {
      server.close();
      server.closeIdleConnections();
    },
  };
}

/**
 * Opens the address with the platform's opener when a desktop is plausibly there; reports
 * whether it tried. A failure to open is never an error: the address is printed in any case.
 */
function openBrowser(url: string): boolean {
  if (!process.stderr.isTTY) return false;
  const opener: [string, string[]] | undefined =
    process.platform === 'darwin'
      ? process.env.SSH_CONNECTION
        ? undefined
        : ['open', [url]]
      : process.platform === 'win32'
        ? ['rundll32', ['url.dll,FileProtocolHandler', url]]
        : process.env.DISPLAY || process.env.WAYLAND_DISPLAY
          ? ['xdg-open', [url]]
          : undefined;
  if (!opener) return false;
  try {
    const child = spawn(opener[0], opener[1], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
    return true;
  } catch {
    return false;
  }
}
