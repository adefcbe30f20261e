import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { freePort } from './server.ts';

export interface Mailbox {
  /** smtp://… of the server, for SMTP_URL (with the user name and password when it asks for them). */
  url: string;
  readonly messages: ParsedMail[];
  /** SMTP connections accepted so far. */
  readonly connections: number;
  /** The next message to `to` (waits for it to arrive). */
  next(to: string, timeoutMs?: number): Promise<ParsedMail>;
  /** Every message received for `to` so far. */
  received(to: string): ParsedMail[];
  /** The links in a message's text part. */
  links(mail: ParsedMail): string[];
  /** Stops accepting connections (an SMTP outage), until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real SMTP server in the test process (smtp-server), keeping every message it receives, parsed.
 * With `auth`, it accepts only that user name and password (AUTH PLAIN or LOGIN, over plain TCP);
 * it refuses (550) the recipients `refuse` picks.
 */
export async function startMailbox(opts: { auth?: { user: string; pass: string }; refuse?: (recipient: string) => boolean } = {}): Promise<Mailbox> {
  const port = await freePort();
  const messages: ParsedMail[] = [];
  const waiters: { to: string; resolve: (m: ParsedMail) => void }[] = [];
  const taken = new Set<ParsedMail>();
  const recipient = (m: ParsedMail) => (Array.isArray(m.to) ? m.to : m.to ? [m.to] : []).flatMap((a) => a.value.map((v) => v.address?.toLowerCase()));

  const deliver = (mail: ParsedMail) => {
    messages.push(mail);
    const i = waiters.findIndex((w) => recipient(mail).includes(w.to));
    if (i >= 0) {
      taken.add(mail);
      waiters.splice(i, 1)[0]!.resolve(mail);
    }
  };

  let server: SMTPServer | undefined;
  let connections = 0;
  const start = async () => {
    const { auth } = opts;
    server = new SMTPServer({
      authOptional: !auth,
      allowInsecureAuth: Boolean(auth),
      disabledCommands: auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      logger: false,
      // A stop() that finds a connection open ends it soon rather than after the default 30 s.
      closeTimeout: 1000,
      onAuth(login, _session, callback) {
        if (auth && login.username === auth.user && login.password === auth.pass) return callback(null, { user: login.username });
        return callback(new Error('Invalid username or password'));
      },
      onConnect(_session, callback) {
        connections++;
        callback();
      },
      onRcptTo(address, _session, callback) {
        if (!opts.refuse?.(address.address)) return callback();
        return callback(Object.assign(new Error('Mailbox unavailable'), { responseCode: 550 }));
      },
      onData(stream, _session, callback) {
        simpleParser(stream).then(
          (mail) => {
            deliver(mail);
            callback();
          },
          (err: Error) => callback(err),
        );
      },
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
  };
  const stop = async () => {
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await start();

  const credentials = opts.auth ? `${encodeURIComponent(opts.auth.user)}:${encodeURIComponent(opts.auth.pass)}@` : '';
  return {
    url: `smtp://${credentials}127.0.0.1:${port}`,
    messages,
    get connections() {
      return connections;
    },
    next(to, timeoutMs = 10_000) {
      const address = to.toLowerCase();
      const waiting = messages.find((m) => !taken.has(m) && recipient(m).includes(address));
      if (waiting) {
        taken.add(waiting);
        return Promise.resolve(waiting);
      }
      return new Promise((resolve, reject) => {
        const waiter = {
          to: address,
          resolve: (m: ParsedMail) => {
            clearTimeout(timer);
            resolve(m);
          },
        };
        // A waiter that gave up is removed, so that it takes no later message.
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no mail to ${to} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    received: (to) => messages.filter((m) => recipient(m).includes(to.toLowerCase())),
    links: (mail) => [...String(mail.text ?? '').matchAll(/https?:\/\/\S+/g)].map((m) => m[0]),
    stop,
    start,
    close: stop,
  };
}
