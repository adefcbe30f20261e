import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, type AdminApi } from './helpers/admin.ts';
import { idp } from './helpers/cli.ts';
import { enqueueMail, NOTICE, noticeTheme, waitFor } from './helpers/mail.ts';
import { withServices } from './helpers/seed.ts';
import { startInstance, startServer, type TestServer } from './helpers/server.ts';
import { startMailbox, type Mailbox } from './helpers/smtp.ts';
import { captureLog } from './helpers/log.ts';

type MailMessage = { id: string; kind: string; recipient: string; subject: string; status: string; attempts: number; nextAttemptAt: string; lastError: string | null; createdAt: string; sentAt: string | null };
type Page<T> = { items: T[]; total: number; limit: number; offset: number };

let theme: string;
let mailbox: Mailbox;
let server: TestServer;

beforeAll(async () => {
  theme = await noticeTheme();
  mailbox = await startMailbox();
  server = await startServer({ SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.1', MAIL_RETRY_SECONDS: '0.2', MAIL_MAX_ATTEMPTS: '10', PRODUCT_NAME: 'Acme', THEME_DIR: theme });
});
afterAll(async () => {
  await server?.close();
  await mailbox?.close();
  await rm(theme, { recursive: true, force: true });
});

const row = (id: string) => server.current.db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } });
const link = (token: string) => `https://app.example.com/notice/${token}`;

describe('delivery', () => {
  it('delivers a message written in a transaction, as a text and an HTML part in the recipient’s language, and erases its body once sent', async () => {
    const [en, ko] = await enqueueMail(server.env, [
      { to: 'ada@example.com', lang: 'en', link: link('en-token-0123456789'), code: '120034' },
      { to: 'min@example.com', lang: 'ko-KR', link: link('ko-token-0123456789'), code: '560078' },
    ]);

    const english = await mailbox.next('ada@example.com');
    expect(english.subject).toBe('Your Acme notice');
    expect(english.text).toContain(NOTICE.en['mail.notice.intro']);
    expect(english.text).toContain(`${NOTICE.en['mail.notice.action']}:\n${link('en-token-0123456789')}`);
    expect(english.text).toContain('Or type this code: 120034');
    expect(english.text).toContain('This message was sent by Acme.');
    expect(english.html).toContain('<html lang="en">');
    expect(english.html).toContain(`href="${link('en-token-0123456789')}"`);
    expect(english.html).toContain(NOTICE.en['mail.notice.action']);

    const korean = await mailbox.next('min@example.com');
    expect(korean.subject).toBe('Acme 알림');
    expect(korean.text).toContain(NOTICE.ko['mail.notice.intro']);
    expect(korean.text).toContain('또는 다음 코드를 입력하세요: 560078');
    expect(korean.text).toContain('이 메일은 Acme에서 보냈습니다.');
    expect(korean.html).toContain('<html lang="ko">');
    expect(korean.html).toContain(NOTICE.ko['mail.notice.action']);
    expect(korean.html).toContain(`href="${link('ko-token-0123456789')}"`);

    for (const id of [en!, ko!]) {
      const sent = await waitFor(() => row(id), (r) => r.status === 'sent');
      expect(sent).toMatchObject({ body: '', attempts: 1, lastError: null, lockedUntil: null });
      expect(sent.sentAt).toBeInstanceOf(Date);
    }
  });

  it('sends a burst over a few reused SMTP connections (MAIL_CONNECTIONS, 4), not one connection per message', async () => {
    const before = mailbox.connections;
    const burst = Array.from({ length: 24 }, (_, i) => ({ to: `burst-${i}@example.com`, lang: 'en', link: link(`burst-token-${i}-0123456789`) }));
    const ids = await enqueueMail(server.env, burst);
    for (const { to } of burst) expect((await mailbox.next(to)).to).toBeDefined();
    for (const id of ids) await waitFor(() => row(id), (r) => r.status === 'sent');
    expect(mailbox.connections - before).toBeLessThanOrEqual(4);
  });

  it('keeps a message through an SMTP outage, retrying with a growing wait, and delivers it once when the server is back', async () => {
    await mailbox.stop();
    const to = 'outage@example.com';
    const [id] = await enqueueMail(server.env, [{ to, lang: 'en', link: link('outage-token-0123456789') }]);

    // Each failed attempt is recorded (the row is not held any more); the waits double.
    const seen = new Map<number, Awaited<ReturnType<typeof row>>>();
    await waitFor(
      () => row(id!),
      (r) => {
        if (r.lockedUntil === null && r.attempts > 0) seen.set(r.attempts, r);
        return seen.size >= 2 && r.lockedUntil === null && r.attempts >= 3;
      },
    );
    const observed = [...seen.values()].sort((a, b) => a.attempts - b.attempts);
    for (const r of observed) {
      expect(r.status).toBe('pending');
      expect(r.lastError).toMatch(/ECONNREFUSED|ECONNECTION/);
      expect(r.body).not.toBe('');
    }
    for (let i = 1; i < observed.length; i++) {
      const [before, after] = [observed[i - 1]!, observed[i]!];
      // After its n-th failure a message waits MAIL_RETRY_SECONDS × 2^(n − 1): the next attempt is planned at least that much later.
      expect(after.nextAttemptAt.getTime() - before.nextAttemptAt.getTime()).toBeGreaterThanOrEqual(200 * 2 ** (after.attempts - 1));
    }
    expect(mailbox.received(to)).toHaveLength(0);

    await mailbox.start();
    const mail = await mailbox.next(to);
    expect(mail.text).toContain(link('outage-token-0123456789'));
    const sent = await waitFor(() => row(id!), (r) => r.status === 'sent');
    expect(sent.attempts).toBeGreaterThanOrEqual(4);
    expect(sent.body).toBe('');
    expect(mailbox.received(to)).toHaveLength(1);
  });

  it('when the server is back, delivers what waited out the outage at once, not at the end of its backoff; a message the server refused keeps its wait', async () => {
    const box = await startMailbox({ refuse: (to) => to.startsWith('refused@') });
    // After a failure, a message waits an hour.
    const patient = await startServer({ SMTP_URL: box.url, MAIL_POLL_SECONDS: '0.1', MAIL_RETRY_SECONDS: '3600', THEME_DIR: theme });
    try {
      const read = (id: string) => patient.current.db.prisma.outboxMessage.findUniqueOrThrow({ where: { id } });
      const failedOnce = (r: Awaited<ReturnType<typeof read>>) => r.attempts === 1 && r.lockedUntil === null && r.lastError !== null;
      const [refused] = await enqueueMail(patient.env, [{ to: 'refused@example.com', lang: 'en', link: link('refused-token-0123456789') }]);
      const refusedOnce = await waitFor(() => read(refused!), failedOnce);
      expect(refusedOnce.lastError).toMatch(/^EENVELOPE: /);

      await box.stop();
      const [waiting] = await enqueueMail(patient.env, [{ to: 'waiting@example.com', lang: 'en', link: link('waiting-token-0123456789') }]);
      const waitingOnce = await waitFor(() => read(waiting!), failedOnce);
      expect(waitingOnce.lastError).toMatch(/ECONNREFUSED|ECONNECTION/);
      expect(waitingOnce.nextAttemptAt.getTime() - Date.now()).toBeGreaterThan(50 * 60_000);

      // The server is back; the next message through it releases the one that waited.
      await box.start();
      await enqueueMail(patient.env, [{ to: 'fresh@example.com', lang: 'en', link: link('fresh-token-0123456789') }]);
      await box.next('fresh@example.com');
      expect((await box.next('waiting@example.com')).text).toContain(link('waiting-token-0123456789'));
      expect(await waitFor(() => read(waiting!), (r) => r.status === 'sent')).toMatchObject({ attempts: 2, body: '' });

      const stillRefused = await read(refused!);
      expect(stillRefused).toMatchObject({ status: 'pending', attempts: 1 });
      expect(stillRefused.nextAttemptAt).toEqual(refusedOnce.nextAttemptAt);
      expect(box.received('refused@example.com')).toHaveLength(0);
    } finally {
      await patient.close();
      await box.close();
    }
  });

  it('during an outage, a run tries a few messages (one per connection), not every waiting one, and writes wait for the next poll; the others keep their attempts', async () => {
    const box = await startMailbox();
    await box.stop();
    // A migrated database whose server is stopped: the passes here are the only ones.
    const quiet = await startServer({ SMTP_URL: box.url, THEME_DIR: theme });
    await quiet.current.app.close();
    try {
      const ids = await enqueueMail(
        quiet.env,
        Array.from({ length: 12 }, (_, i) => ({ to: `waiting-${i}@example.com`, lang: 'en', link: link(`waiting-token-${i}-0123456789`) })),
      );
      const counts = await withServices(quiet.env, (s) => s.outbox.deliverDue());
      expect(counts.sent).toBe(0);
      expect(counts.retry).toBeGreaterThan(0);
      expect(counts.retry).toBeLessThanOrEqual(4);
      const rows = await withServices(quiet.env, (s) => s.outbox.list({ limit: 50, offset: 0 }));
      const waiting = rows.items.filter((r) => ids.includes(r.id));
      expect(waiting.filter((r) => r.attempts === 0)).toHaveLength(12 - counts.retry);
      expect(waiting.every((r) => r.status === 'pending')).toBe(true);

      // Mail written during the outage does not start a run of its own (which would fail at
      // once, again and again): the next poll takes it. Once a run delivers, writes do again.
      await withServices(quiet.env, async (s) => {
        const runs: number[] = [];
        s.outbox.onWake(() => runs.push(Date.now()));
        s.outbox.wake();
        expect(runs).toHaveLength(1);
        expect((await s.outbox.deliverDue()).sent).toBe(0);
        s.outbox.wake();
        expect(runs).toHaveLength(1);
        await box.start();
        expect((await s.outbox.deliverDue()).sent).toBe(12);
        s.outbox.wake();
        expect(runs).toHaveLength(2);
      });
      expect(box.messages).toHaveLength(12);
    } finally {
      await quiet.close();
      await box.close();
    }
  });

  it('with two instances on one database, delivers each message exactly once', async () => {
    const other = await startInstance(server.env);
    try {
      const recipients = Array.from({ length: 40 }, (_, i) => `scale-${i}@example.com`);
      const ids = await enqueueMail(
        server.env,
        recipients.map((to) => ({ to, lang: 'en', link: link(`scale-${to}`) })),
      );
      const rows = await waitFor(
        () => server.current.db.prisma.outboxMessage.findMany({ where: { id: { in: ids } } }),
        (all) => all.every((r) => r.status === 'sent'),
        20_000,
      );
      // Each was held once: one attempt each, by one instance or the other.
      expect(rows.map((r) => r.attempts)).toEqual(ids.map(() => 1));
      for (const to of recipients) expect(mailbox.received(to), to).toHaveLength(1);
    } finally {
      await other.close();
    }
  });
});

describe('failed messages', () => {
  let dead: Mailbox;
  let failing: TestServer;
  let admin: AdminApi;
  beforeAll(async () => {
    dead = await startMailbox();
    await dead.stop();
    failing = await startServer({ SMTP_URL: dead.url, MAIL_POLL_SECONDS: '0.05', MAIL_RETRY_SECONDS: '0.1', MAIL_MAX_ATTEMPTS: '2', PRODUCT_NAME: 'Acme', THEME_DIR: theme });
    admin = await adminApi(failing);
  });
  afterAll(async () => {
    await failing?.close();
    await dead?.close();
  });

  it('fails a message after MAIL_MAX_ATTEMPTS, audits it, lists it in the admin API and the CLI, and retry from either delivers it', async () => {
    const [first, second] = await enqueueMail(failing.env, [
      { to: 'first@example.com', lang: 'en', link: link('first-token-0123456789') },
      { to: 'second@example.com', lang: 'ko', link: link('second-token-0123456789') },
    ]);
    const prisma = failing.current.db.prisma;
    await waitFor(
      () => prisma.outboxMessage.findMany({ where: { id: { in: [first!, second!] } } }),
      (rows) => rows.length === 2 && rows.every((r) => r.status === 'failed'),
    );

    // The admin API lists them, without their bodies.
    const listed = await admin.call<Page<MailMessage>>('GET', '/admin/v1/mail?status=failed');
    expect(listed.status).toBe(200);
    expect(listed.body).toMatchObject({ total: 2, limit: 50, offset: 0 });
    expect(listed.body.items.map((m) => m.id).sort()).toEqual([first, second].sort());
    for (const item of listed.body.items) {
      expect(Object.keys(item).sort()).toEqual(['attempts', 'createdAt', 'id', 'kind', 'lastError', 'nextAttemptAt', 'recipient', 'sentAt', 'status', 'subject']);
      expect(item).toMatchObject({ kind: 'notice', status: 'failed', attempts: 2, sentAt: null, lastError: expect.stringMatching(/ECONNREFUSED|ECONNECTION/) });
    }
    expect(listed.body.items.find((m) => m.id === second)!.subject).toBe('Acme 알림');
    expect((await admin.call<Page<MailMessage>>('GET', '/admin/v1/mail?status=sent')).body.total).toBe(0);
    const paged = await admin.call<Page<MailMessage>>('GET', '/admin/v1/mail?limit=1&offset=1');
    expect(paged.body).toMatchObject({ total: 2, limit: 1, offset: 1 });
    expect(paged.body.items).toHaveLength(1);
    expect((await admin.call('GET', '/admin/v1/mail?status=lost')).status).toBe(400);

    // The CLI too, in the same shape.
    const cli = await idp(['mail', 'list', '--status', 'failed', '--json'], failing.env);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.json()).toEqual(listed.body);
    const readable = await idp(['mail', 'list', '--status', 'failed'], failing.env);
    expect(readable.stdout).toContain(`${first}  failed`);
    expect((await idp(['mail', 'list', '--status', 'lost'], failing.env)).code).toBe(2);

    // Each failure is audited.
    const audit = await admin.call<Page<{ target: string; actor: string; details: { kind: string; attempts: number } }>>('GET', '/admin/v1/audit?action=mail.failed');
    expect(audit.body.items.map((e) => e.target).sort()).toEqual([first, second].sort());
    expect(audit.body.items[0]).toMatchObject({ actor: 'system:outbox', details: { kind: 'notice', attempts: 2 } });

    // Only a failed message can be retried; an unknown one is not found.
    await dead.start();
    const retried = await admin.call<MailMessage>('POST', `/admin/v1/mail/${first}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ id: first, status: 'pending', attempts: 0, lastError: null });
    expect((await dead.next('first@example.com')).text).toContain(link('first-token-0123456789'));
    expect(await waitFor(() => prisma.outboxMessage.findUniqueOrThrow({ where: { id: first! } }), (r) => r.status === 'sent')).toMatchObject({ attempts: 1, body: '' });
    const again = await admin.call<{ error: string; error_description: string }>('POST', `/admin/v1/mail/${first}/retry`);
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: 'conflict', error_description: `message ${first} is sent: only a failed message can be retried` });
    expect((await admin.call('POST', '/admin/v1/mail/no-such-message/retry')).status).toBe(404);

    const byCli = await idp(['mail', 'retry', second!, '--json'], failing.env);
    expect(byCli.code, byCli.stderr).toBe(0);
    expect(byCli.json()).toMatchObject({ id: second, status: 'pending', attempts: 0 });
    expect((await dead.next('second@example.com')).subject).toBe('Acme 알림');
    await waitFor(() => prisma.outboxMessage.findUniqueOrThrow({ where: { id: second! } }), (r) => r.status === 'sent');
    const refused = await idp(['mail', 'retry', second!, '--json'], failing.env);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stderr)).toMatchObject({ error: 'conflict' });

    // Delivered once each; both retries are audited, with who asked.
    expect(dead.received('first@example.com')).toHaveLength(1);
    expect(dead.received('second@example.com')).toHaveLength(1);
    const retries = await admin.call<Page<{ target: string; actor: string }>>('GET', '/admin/v1/audit?action=mail.retried');
    expect(retries.body.items.map((e) => [e.target, e.actor.split(':')[0]]).sort()).toEqual(
      [
        [first, 'client'],
        [second, 'cli'],
      ].sort(),
    );
  });
});

describe('without SMTP_URL', () => {
  it('logs the links of a message at info level, and nothing else of its body', async () => {
    const { lines, destination: capture } = captureLog();
    const local = await startServer({ LOG_LEVEL: 'trace', MAIL_POLL_SECONDS: '0.05', PRODUCT_NAME: 'Acme', THEME_DIR: theme }, { logDestination: capture });
    try {
      const url = link('logged-token-0123456789');
      const [id] = await enqueueMail(local.env, [{ to: 'dev@example.com', lang: 'en', link: url, code: '987123' }]);
      await waitFor(() => local.current.db.prisma.outboxMessage.findUniqueOrThrow({ where: { id: id! } }), (r) => r.status === 'sent');

      const entries = lines.map((l) => JSON.parse(l) as { level: number; msg: string; mail?: { kind: string; to: string; subject: string; links: string[] } });
      const logged = entries.filter((e) => e.mail);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ level: 30, mail: { kind: 'notice', to: 'dev@example.com', subject: 'Your Acme notice', links: [url] } });
      const log = lines.join('\n');
      for (const part of ['987123', NOTICE.en['mail.notice.intro'], NOTICE.en['mail.notice.outro'], 'This message was sent by', '<html']) {
        expect(log.includes(part), `${part} is in the log`).toBe(false);
      }
    } finally {
      await local.close();
    }
  });
});

describe('housekeeping', () => {
  it('purges sent mail past MAIL_RETENTION_DAYS, failed mail past 90 days and emailed tokens spent a week ago; keeps the rest', async () => {
    const prisma = server.current.db.prisma;
    const daysAgo = (days: number) => new Date(Date.now() - days * 24 * 3600 * 1000);
    const later = new Date(Date.now() + 3600 * 1000);
    const message = (id: string, status: string, createdAt: Date, sentAt: Date | null) =>
      prisma.outboxMessage.create({ data: { id, kind: 'notice', recipient: 'old@example.com', subject: 's', body: '', status, createdAt, sentAt, nextAttemptAt: later } });
    await message('purge-sent-old', 'sent', daysAgo(16), daysAgo(15));
    await message('purge-sent-recent', 'sent', daysAgo(6), daysAgo(5));
    await message('purge-failed-old', 'failed', daysAgo(100), null);
    await message('purge-failed-recent', 'failed', daysAgo(60), null);
    await message('purge-pending-old', 'pending', daysAgo(200), null);
    const token = (id: string, expiresAt: Date, usedAt: Date | null) =>
      prisma.accountToken.create({ data: { id, purpose: 'verify_email', tokenHash: `hash-${id}`, email: 'old@example.com', expiresAt, usedAt } });
    await token('purge-used-old', later, daysAgo(8));
    await token('purge-expired-old', daysAgo(8), null);
    await token('purge-used-recent', later, daysAgo(1));
    await token('purge-expired-recent', daysAgo(1), null);
    await token('purge-live', later, null);

    const purged = await idp(['purge', '--json'], { ...server.env, MAIL_RETENTION_DAYS: '10' });
    expect(purged.code, purged.stderr).toBe(0);
    expect(purged.json()).toMatchObject({ mail: 2, accountTokens: 2 });
    const left = (await prisma.outboxMessage.findMany({ where: { id: { startsWith: 'purge-' } }, select: { id: true } })).map((r) => r.id).sort();
    expect(left).toEqual(['purge-failed-recent', 'purge-pending-old', 'purge-sent-recent']);
    const tokens = (await prisma.accountToken.findMany({ where: { id: { startsWith: 'purge-' } }, select: { id: true } })).map((r) => r.id).sort();
    expect(tokens).toEqual(['purge-expired-recent', 'purge-live', 'purge-used-recent']);
  });
});
