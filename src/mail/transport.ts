import nodemailer from 'nodemailer';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type { Logger } from 'pino';
import type { ComposedMail } from './compose.ts';
import type { MailTransport } from './outbox.ts';

/** Every wait of a send is bounded: a server that does not answer is an outage, retried later by the outbox. */
const SMTP_TIMEOUT_MS = 15_000;

/** A failed send, described without the SMTP password (its message is stored and logged). */
class SmtpError extends Error {
  override name = 'SmtpError';
}

/** The forms a password takes on the wire or in a URL, to be cut out of an error message. */
function secretForms(url: string): string[] {
  let password = '';
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    return [];
  }
  if (!password) return [];
  return [password, encodeURIComponent(password), Buffer.from(password).toString('base64')].filter((s) => s.length >= 3);
}

/**
 * SMTP through nodemailer: `SMTP_URL` is smtp:// (STARTTLS when the server offers it; add
 * `?requireTLS=true` to refuse a server that does not) or smtps:// (TLS from the start), with the
 * user name and password in it. Certificates are verified. Up to `connections` connections
 * (MAIL_CONNECTIONS), each reused for up to 100 messages and closed after 15 s idle: the greeting,
 * TLS and login are paid once per connection, not once per message.
 */
export function smtpTransport(url: string, from: string, connections: number): MailTransport {
  const options: SMTPPool.Options = {
    url,
    pool: true,
    maxConnections: connections,
    maxMessages: 100,
    connectionTimeout: SMTP_TIMEOUT_MS,
    greetingTimeout: SMTP_TIMEOUT_MS,
    socketTimeout: SMTP_TIMEOUT_MS,
    dnsTimeout: SMTP_TIMEOUT_MS,
  };
  // The pool itself merges the URL into the options (createTransport would take the URL's alone,
  // and drop the timeouts).
  const transporter = nodemailer.createTransport(new SMTPPool(options), { from });
  const secrets = secretForms(url);
  return {
    async send(mail: ComposedMail) {
      try {
        // An address object: the recipient is one address, never parsed as a list.
        await transporter.sendMail({ to: { name: '', address: mail.to }, subject: mail.subject, text: mail.text, html: mail.html });
      } catch (err) {
        const e = err as { code?: unknown; message?: unknown };
        let message = `${typeof e.code === 'string' ? `${e.code}: ` : ''}${String(e.message ?? err)}`;
        for (const secret of secrets) message = message.replaceAll(secret, '[REDACTED]');
        throw new SmtpError(message);
      }
    },
    close() {
      transporter.close();
    },
  };
}

/**
 * Without SMTP_URL (development and tests only: production refuses to start without it), a
 * message is "delivered" to the log at info level: its kind, recipient, subject and links, and
 * nothing else of it, so that the sign-up and reset flows work on a laptop.
 */
export function logTransport(log: Logger): MailTransport {
  return {
    async send(mail: ComposedMail) {
      const links = [...new Set([...mail.text.matchAll(/https?:\/\/\S+/g)].map((m) => m[0]))];
      log.info({ mail: { kind: mail.kind, to: mail.to, subject: mail.subject, links } }, 'mail not sent (no SMTP_URL): its links are logged instead');
    },
  };
}
