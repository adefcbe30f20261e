import { createServer, type Server, type Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { csrfToken, formAction, UserAgent } from '../../test/helpers/user-agent.ts';
import { authorizeUrl, FORM, type Target } from './agent.ts';
import { freePort } from './proc.ts';

/** How the SMTP server behaves for a run: it accepts mail, refuses connections, or accepts them and never answers. */
export const SMTP_MODES = ['up', 'down', 'hanging'] as const;
export type SmtpMode = (typeof SMTP_MODES)[number];

/** What the server under test is given as SMTP_URL, and what arrived there. */
export interface SmtpStandIn {
  mode: SmtpMode;
  url: string;
  /** Messages accepted so far. */
  readonly received: number;
  /** The outage ends: a working SMTP server on the same port from now on. */
  recover(): Promise<void>;
  close(): Promise<void>;
}

const listen = (server: Server | SMTPServer, port: number) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

/** A real SMTP server (smtp-server, plain TCP, no authentication) that counts what it accepts and keeps nothing. */
function sink(onMessage: () => void): SMTPServer {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      stream.on('end', () => {
        onMessage();
        callback();
      });
      stream.resume();
    },
  });
  // A client that goes away mid-conversation (a server under test stopped) is not the sink's failure.
  server.on('error', () => {});
  return server;
}

export async function startSmtpStandIn(mode: SmtpMode): Promise<SmtpStandIn> {
  const port = await freePort();
  let received = 0;
  let smtp: SMTPServer | undefined;
  const open = async () => {
    smtp = sink(() => received++);
    await listen(smtp, port);
  };
  // hanging: every connection is accepted and held open, without the SMTP greeting.
  const held = new Set<Socket>();
  let hole: Server | undefined;
  if (mode === 'up') await open();
  if (mode === 'hanging') {
    hole = createServer((socket) => {
      held.add(socket);
      socket.on('close', () => held.delete(socket));
      socket.on('error', () => {});
    });
    await listen(hole, port);
  }
  const closeHole = async () => {
    if (!hole) return;
    for (const socket of held) socket.destroy();
    await new Promise<void>((resolve) => hole!.close(() => resolve()));
    hole = undefined;
  };
  return {
    mode,
    url: `smtp://127.0.0.1:${port}`,
    get received() {
      return received;
    },
    async recover() {
      if (smtp) return;
      await closeHole();
      await open();
    },
    async close() {
      await closeHole();
      if (smtp) await new Promise<void>((resolve) => smtp!.close(() => resolve()));
    },
  };
}

/**
 * A browser at the "Forgot password?" form of a sign-in; the returned function sends the form
 * for an address, from a client address (X-Forwarded-For, behind TRUST_PROXY=1), and expects
 * the page that says a link is on its way.
 */
export async function forgotPasswordForm(target: Target): Promise<(email: string, ip: string) => Promise<void>> {
  const agent = new UserAgent();
  const { res, url } = await agent.follow(authorizeUrl(target, { scope: 'openid' }).url);
  await res.arrayBuffer();
  const uid = /\/interaction\/([^/?#]+)/.exec(url)?.[1];
  if (!uid) throw new Error(`${target.name}: the sign-in did not open a login page (ended at ${url})`);
  const page = `${target.url}/interaction/${uid}/forgot`;
  const html = await (await agent.request(page)).text();
  const action = new URL(formAction(html, '/forgot'), page).href;
  const csrf = csrfToken(html);
  return async (email, ip) => {
    const answer = await agent.request(action, {
      method: 'POST',
      body: new URLSearchParams({ _csrf: csrf, email }),
      headers: { 'content-type': FORM, origin: target.url, 'x-forwarded-for': ip },
    });
    const text = await answer.text();
    if (answer.status !== 200) throw new Error(`${target.name}: the forgot-password form answered ${answer.status}: ${text.slice(0, 200)}`);
  };
}

/**
 * A new browser signs up through an app's prompt=create (authorize → sign-up page → form) and
 * is shown the "check your email" page: the account exists, its verification message is written.
 */
export async function signUpThroughApp(target: Target, email: string, ip: string): Promise<void> {
  const agent = new UserAgent({ headers: { 'x-forwarded-for': ip } });
  const { res, url } = await agent.follow(authorizeUrl(target, { scope: 'openid email profile', prompt: 'create' }).url);
  const html = await res.text();
  if (res.status !== 200) throw new Error(`${target.name}: prompt=create answered ${res.status} at ${url}: ${html.slice(0, 200)}`);
  const done = await agent.submit(url, html, formAction(html, '/signup'), { email, name: 'Bench Person', password: 'a bench password that is long enough' });
  const page = await done.res.text();
  if (done.res.status !== 200 || !/action="[^"]*\/verify"/.test(page)) throw new Error(`${target.name}: sign-up ended with ${done.res.status} at ${done.url}: ${page.slice(0, 200)}`);
}

/** Distinct client addresses (10.0.0.1, 10.0.0.2, …): the per-IP limits are what one client meets, not what a benchmark does. */
export function clientAddresses(): () => string {
  let n = 0;
  return () => {
    n++;
    return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  };
}
