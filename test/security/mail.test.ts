// Outgoing email: ASVS V14.2.4 (sensitive data encrypted at rest), V16.2.5 (no secrets in logs),
// V8.2.1 (function-level authorization); OWASP Forgot Password Cheat Sheet (a reset link is a
// credential); CWE-312 (cleartext storage of sensitive information).
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from '../helpers/admin.ts';
import { createdClient, idp } from '../helpers/cli.ts';
import { enqueueMail, NOTICE, noticeTheme, waitFor } from '../helpers/mail.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { startMailbox, type Mailbox } from '../helpers/smtp.ts';
import { captureLog } from '../helpers/log.ts';

const SMTP_USER = 'idp-mailer';
const SMTP_PASSWORD = 'smtp-Pa55word-kept-secret';

const { lines, destination: capture } = captureLog();

let theme: string;
let mailbox: Mailbox;
/** Sends through the mailbox, with the right password. */
let server: TestServer;
/** Its SMTP server refuses the password it has: every message fails, after two attempts. */
let refused: TestServer;
let refusedAdmin: AdminApi;

beforeAll(async () => {
  theme = await noticeTheme();
  mailbox = await startMailbox({ auth: { user: SMTP_USER, pass: SMTP_PASSWORD } });
  const common = { LOG_LEVEL: 'trace', MAIL_POLL_SECONDS: '0.05', MAIL_RETRY_SECONDS: '0.1', THEME_DIR: theme };
  server = await startServer({ ...common, SMTP_URL: mailbox.url, MAIL_MAX_ATTEMPTS: '10' }, { logDestination: capture });
  refused = await startServer({ ...common, SMTP_URL: mailbox.url.replace(encodeURIComponent(SMTP_PASSWORD), 'a-wrong-password'), MAIL_MAX_ATTEMPTS: '2' }, { logDestination: capture });
  refusedAdmin = await adminApi(refused);
});
afterAll(async () => {
  await server?.close();
  await refused?.close();
  await mailbox?.close();
  await rm(theme, { recursive: true, force: true });
});

/** A message holding a single-use link and a code, both secrets. */
const secretMail = (label: string, to: string) => {
  const token = `${label}-Tk-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const code = String(100000 + Math.floor(Math.random() * 899999));
  return { token, code, spec: { to, lang: 'en', link: `https://app.example.com/reset/${token}`, code } };
};

/** Everything the database holds about mail and what happened to it, as text. */
const stored = async (s: TestServer) => {
  const prisma = s.current.db.prisma;
  return JSON.stringify([await prisma.outboxMessage.findMany(), await prisma.auditEvent.findMany()]);
};

/** A failed message on the server whose SMTP password is refused. */
async function failedMessage(label: string) {
  const mail = secretMail(label, `${label}@example.com`);
  const [id] = await enqueueMail(refused.env, [mail.spec]);
  await waitFor(() => refused.current.db.prisma.outboxMessage.findUniqueOrThrow({ where: { id: id! } }), (r) => r.status === 'failed');
  return { id: id!, ...mail };
}

describe('mail at rest', () => {
  it('SEC-ML-01 the stored message is encrypted: no link, token, code or text of it in the database in clear, before it is sent, and none at all after', async () => {
    await mailbox.stop();
    const { token, code, spec } = secretMail('rest', 'rest@example.com');
    const [id] = await enqueueMail(server.env, [spec]);
    // Waiting: one attempt failed (the SMTP server is down), the message is kept for the next.
    const waiting = await waitFor(() => server.current.db.prisma.outboxMessage.findUniqueOrThrow({ where: { id: id! } }), (r) => r.attempts >= 1 && r.lockedUntil === null);
    expect(waiting.status).toBe('pending');
    expect(waiting.body).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    const before = await stored(server);
    for (const secret of [token, code, spec.link, NOTICE.en['mail.notice.intro'], 'href=']) expect(before.includes(secret), `${secret} stored in clear`).toBe(false);

    await mailbox.start();
    const delivered = await mailbox.next('rest@example.com');
    expect(delivered.text).toContain(token);
    expect(delivered.text).toContain(code);
    const sent = await waitFor(() => server.current.db.prisma.outboxMessage.findUniqueOrThrow({ where: { id: id! } }), (r) => r.status === 'sent');
    expect(sent.body).toBe('');
    const after = await stored(server);
    for (const secret of [token, code, NOTICE.en['mail.notice.intro']]) expect(after.includes(secret), `${secret} stored after sending`).toBe(false);
  });
});

describe('mail and logs', () => {
  it('SEC-ML-02 with SMTP_URL set, no link, token, code or text of a message reaches the logs, whether it is delivered, retried or fails', async () => {
    await mailbox.stop();
    const retried = secretMail('logged', 'logged@example.com');
    const [id] = await enqueueMail(server.env, [retried.spec]);
    await waitFor(() => server.current.db.prisma.outboxMessage.findUniqueOrThrow({ where: { id: id! } }), (r) => r.attempts >= 1 && r.lockedUntil === null);
    await mailbox.start();
    await mailbox.next('logged@example.com');
    await waitFor(() => server.current.db.prisma.outboxMessage.findUniqueOrThrow({ where: { id: id! } }), (r) => r.status === 'sent');
    const failed = await failedMessage('logged-failed');

    const log = lines.join('\n');
    // The failures were logged (with why), so the log was looked at where it matters.
    expect(log).toContain('mail not delivered; will retry');
    expect(log).toContain('mail failed for good');
    for (const { token, code, spec } of [retried, failed]) {
      for (const secret of [token, code, spec.link]) expect(log.includes(secret), `${secret} is in the logs`).toBe(false);
    }
    for (const text of [NOTICE.en['mail.notice.intro'], NOTICE.en['mail.notice.outro'], 'This message was sent by']) expect(log.includes(text), `${text} is in the logs`).toBe(false);
  });

  it('SEC-ML-03 the SMTP password is never shown: not in logs, in a message’s lastError, in the audit trail or in the admin API, even when the SMTP server refuses it', async () => {
    const { id } = await failedMessage('password');
    const row = await refused.current.db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } });
    expect(row.lastError).toMatch(/EAUTH|Invalid login/);
    const listed = await refusedAdmin.call('GET', '/admin/v1/mail?status=failed');
    expect(listed.status).toBe(200);
    const everywhere = [lines.join('\n'), await stored(refused), await stored(server), JSON.stringify(listed.body)].join('\n');
    for (const form of [SMTP_PASSWORD, encodeURIComponent(SMTP_PASSWORD), Buffer.from(SMTP_PASSWORD).toString('base64'), Buffer.from(`\u0000${SMTP_USER}\u0000${SMTP_PASSWORD}`).toString('base64')]) {
      expect(everywhere.includes(form), `${form} is shown`).toBe(false);
    }
  });
});

describe('the admin API’s mail', () => {
  it('SEC-ML-04 listing mail needs an admin client’s token (admin:read suffices), and never shows a message’s body', async () => {
    const { token, code, spec } = await failedMessage('listed');
    expect((await refusedAdmin.call('GET', '/admin/v1/mail', undefined, null)).status).toBe(401);
    expect((await refusedAdmin.call('GET', '/admin/v1/mail', undefined, 'not-a-token')).status).toBe(401);
    // A client that is not an admin client gets no token for the admin API: its own token is refused.
    const m2m = createdClient(await idp(['clients', 'create', '--name', 'svc', '--grant-type', 'client_credentials', '--scope', '', '--json'], refused.env));
    const res = await fetch(`${refused.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${m2m.clientId}:${m2m.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin:read' }),
    });
    const other = ((await res.json()) as { access_token?: string }).access_token;
    expect((await refusedAdmin.call('GET', '/admin/v1/mail', undefined, other ?? 'none')).status).toBe(401);

    const listed = await refusedAdmin.call<{ items: Record<string, unknown>[] }>('GET', '/admin/v1/mail', undefined, await refusedAdmin.token('admin:read'));
    expect(listed.status).toBe(200);
    expect(listed.body.items.length).toBeGreaterThan(0);
    for (const item of listed.body.items) expect(item).not.toHaveProperty('body');
    const text = JSON.stringify(listed.body);
    for (const secret of [token, code, spec.link, NOTICE.en['mail.notice.intro'], 'v1.']) expect(text.includes(secret), `${secret} is shown`).toBe(false);
    const doc = (await (await fetch(`${refused.issuer}/admin/openapi.json`)).json()) as { components: { schemas: Record<string, { properties: Record<string, unknown> }> } };
    expect(Object.keys(doc.components.schemas.MailMessage!.properties)).not.toContain('body');
  });

  it('SEC-ML-05 retrying a message needs the admin scope: an admin:read token is refused (403) and the message stays failed', async () => {
    const { id } = await failedMessage('retried');
    const denied = await refusedAdmin.call('POST', `/admin/v1/mail/${id}/retry`, undefined, await refusedAdmin.token('admin:read'));
    expect(denied.status).toBe(403);
    expect(denied.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect((await refusedAdmin.call('POST', `/admin/v1/mail/${id}/retry`, undefined, null)).status).toBe(401);
    expect(await refused.current.db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } })).toMatchObject({ status: 'failed', attempts: 2 });
    expect(await refused.current.db.prisma.auditEvent.count({ where: { action: 'mail.retried', target: id } })).toBe(0);
    // With the admin scope, it is queued again.
    const allowed = await refusedAdmin.call('POST', `/admin/v1/mail/${id}/retry`, undefined, await refusedAdmin.token('admin'));
    expect(allowed.status).toBe(200);
    expect(await refused.current.db.prisma.auditEvent.count({ where: { action: 'mail.retried', target: id } })).toBe(1);
  });
});
