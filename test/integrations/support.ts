import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { expect } from 'vitest';
import { formAction, type UserAgent } from '../helpers/user-agent.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Debian's chromium, as test/browser.test.ts uses it (CI installs it); elsewhere the browser suites are skipped. */
export const browser = { path: CHROMIUM, available: existsSync(CHROMIUM) || process.env.CI === 'true' };

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'];

export const API = 'https://api.example.com';

export interface Loopback {
  origin: string;
  close(): Promise<void>;
}

/** An HTTP server of the test's own (an app, a resource server) on 127.0.0.1, on `port` or a free one. */
export async function listen(handler: RequestListener, port = 0): Promise<Loopback> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    origin: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Hands a Node request to a fetch-style handler (`(Request) => Response`, as Auth.js's `Auth()` is) and writes its answer. */
export function fetchHandler(origin: string, handle: (request: Request) => Promise<Response>): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        for (const v of Array.isArray(value) ? value : [value ?? '']) headers.append(name, v);
      }
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      const response = await handle(new Request(new URL(req.url ?? '/', origin), { method: req.method, headers, ...(hasBody ? { body: Buffer.concat(chunks) } : {}) }));
      for (const [name, value] of response.headers) if (name !== 'set-cookie') res.setHeader(name, value);
      res.setHeader('set-cookie', response.headers.getSetCookie());
      res.writeHead(response.status).end(Buffer.from(await response.arrayBuffer()));
    })().catch((err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)));
  };
}

/**
 * A person signs in as a browser would, from the app's own sign-in URL: redirects followed one by
 * one through our login and consent pages, back to the app, and on to wherever the app sends
 * them (or up to the first URL starting with `stopAt`, not requested). Returns the last answer and its URL.
 */
export async function signInThroughPages(ua: UserAgent, start: string | URL, login: { email: string; password: string }, stopAt?: string) {
  let step = await ua.follow(start, stopAt);
  let html = await step.res.text();
  expect(step.res.status, html).toBe(200);
  expect(html).toContain('Sign in');
  step = await ua.submit(step.url, html, formAction(html, '/login'), login, stopAt);
  html = stopAt && step.url.startsWith(stopAt) ? '' : await step.res.text();
  // The consent page, when the person has not consented to all of this yet.
  if (/action="[^"]*\/confirm"/.test(html)) {
    step = await ua.submit(step.url, html, formAction(html, '/confirm'), {}, stopAt);
    html = stopAt && step.url.startsWith(stopAt) ? '' : await step.res.text();
  }
  return { status: step.res.status, url: step.url, html };
}

/**
 * The code of a guide's section that a test does not contain word for word: the lines of every
 * TypeScript or JavaScript block between `heading` and the next heading of its level in `docFile`, less blank lines,
 * comments and the settings a reader fills in (`const ISSUER = '…'`: an all-capitals name), each
 * compared without its trailing comment against the lines of the test's sources (an import: against
 * the names the sources import from the same module). The guides say
 * which test runs each snippet; this keeps the two the same code.
 */
export function snippetLinesMissingFrom(docFile: string, heading: string, sourceFiles: (string | URL)[]): string[] {
  const doc = readFileSync(new URL(`../../${docFile}`, import.meta.url), 'utf8');
  const start = doc.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no heading "${heading}" in ${docFile}`);
  const level = heading.slice(0, heading.indexOf(' ') + 1);
  const end = doc.indexOf(`\n${level}`, start + heading.length + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  const blocks = [...section.matchAll(/```(?:ts|js)\n([\s\S]*?)```/g)].map((m) => m[1]!);
  if (!blocks.length) throw new Error(`no code block under "${heading}" in ${docFile}`);
  const normalize = (line: string) => line.replace(/\s+\/\/ .*$/, '').trim();
  const sources = sourceFiles.map((file) => readFileSync(file, 'utf8'));
  const ours = new Set(sources.flatMap((source) => source.split('\n').map(normalize)));
  // An import is there when the same module is imported with (at least) the same names.
  const imported = new Map<string, Set<string>>();
  for (const [, names, from] of sources.join('\n').matchAll(/^import (.+) from '([^']+)';$/gm)) {
    const known = imported.get(from!) ?? new Set<string>();
    for (const name of names!.match(/[\w$]+/g) ?? []) known.add(name);
    imported.set(from!, known);
  }
  const isImported = (line: string) => {
    const match = /^import (.+) from '([^']+)';$/.exec(line);
    return Boolean(match && (match[1]!.match(/[\w$]+/g) ?? []).every((name) => imported.get(match[2]!)?.has(name)));
  };
  return blocks
    .flatMap((block) => block.split('\n'))
    .map(normalize)
    .filter((line) => line && !line.startsWith('//') && !/^const [A-Z_]+ =/.test(line))
    .filter((line) => !ours.has(line) && !isImported(line));
}

/**
 * A resource server of the tests' own, validating our access tokens as docs/resource-servers.md
 * says (jose: signature from the JWKS, typ at+jwt, issuer, audience); `GET /orders` answers the
 * token's claims, to any origin (a single-page app calls it).
 */
export async function startApi(issuer: string): Promise<Loopback> {
  const { jwks_uri } = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
  const jwks = createRemoteJWKSet(new URL(jwks_uri));
  return listen((req, res) => {
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'authorization' };
    if (req.method === 'OPTIONS') return void res.writeHead(204, cors).end();
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    jwtVerify(token, jwks, { issuer, audience: API, typ: 'at+jwt', algorithms: ['RS256'] }).then(
      ({ payload }) => res.writeHead(200, { ...cors, 'content-type': 'application/json' }).end(JSON.stringify({ sub: payload.sub, client_id: payload.client_id, scope: payload.scope })),
      () => res.writeHead(401, { ...cors, 'www-authenticate': 'Bearer error="invalid_token"' }).end(),
    );
  });
}
