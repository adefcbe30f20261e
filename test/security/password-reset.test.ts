// Password reset: OWASP Forgot Password Cheat Sheet; ASVS V6.4.1–V6.4.3 (recovery), V6.3.8 (no enumeration); RFC 9700 §4.11 (open redirectors).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorize, discover, loginAndExchange, REDIRECT_URI } from '../helpers/flow.ts';
import { seed } from '../helpers/seed.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { startMailbox, type Mailbox } from '../helpers/smtp.ts';
import { csrfToken, formAction, UserAgent } from '../helpers/user-agent.ts';

let server: TestServer;
let mailbox: Mailbox;
beforeAll(async () => {
  mailbox = await startMailbox();
  server = await startServer({ SMTP_URL: mailbox.url, MAIL_POLL_SECONDS: '0.2', LOGIN_MAX_FAILURES: '3' });
});
afterAll(async () => {
  await server?.close();
  await mailbox?.close();
});

async function newApp() {
  const app = await seed(server.env, { redirectUri: REDIRECT_URI });
  return { app, config: await discover(server.issuer, app.clientId, app.clientSecret) };
}

/** The "Forgot password?" form of a fresh sign-in in `ua`. */
async function forgotForm(ua: UserAgent, config: Awaited<ReturnType<typeof discover>>) {
  const started = await authorize(ua, config, { consent: false, prompt: 'login consent' });
  const url = `${started.last.url}/forgot`;
  const html = await (await ua.request(url)).text();
  return { url, html, action: new URL(formAction(html, '/forgot'), url).href };
}

async function linkFor(email: string, config: Awaited<ReturnType<typeof discover>>) {
  const ua = new UserAgent();
  const form = await forgotForm(ua, config);
  await ua.submit(form.url, form.html, form.action, { email });
  return mailbox.links(await mailbox.next(email)).find((l) => l.includes('/password/reset/'))!;
}

const post = (ua: UserAgent, url: string, fields: Record<string, string>, origin = server.issuer) =>
  ua.request(url, { method: 'POST', body: new URLSearchParams(fields), headers: { 'content-type': 'application/x-www-form-urlencoded', origin } });

describe('password reset', () => {
  it('SEC-PR-01 a reset link works once: used again, or by parallel requests, exactly one sets a password', async () => {
    const { app, config } = await newApp();
    const link = await linkFor(app.email, config);
    const forms = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const ua = new UserAgent();
        const html = await (await ua.request(link)).text();
        return { ua, html };
      }),
    );
    const answers = await Promise.all(forms.map(({ ua, html }, i) => post(ua, link, { _csrf: csrfToken(html), password: `parallel passphrase number ${i}` }).then((r) => r.status)));
    expect(answers.filter((s) => s === 200 || s === 303)).toHaveLength(1);
    expect(answers.filter((s) => s === 410)).toHaveLength(4);
    expect((await fetch(link)).status).toBe(410);
  });

  it('SEC-PR-02 the link is stored only as a hash, and the message that carried it is erased once sent', async () => {
    const { app, config } = await newApp();
    const link = await linkFor(app.email, config);
    const token = link.split('/').pop()!;
    const prisma = server.current.db.prisma;
    await expect.poll(() => prisma.outboxMessage.count({ where: { recipient: app.email, status: 'sent', body: '' } })).toBe(1);
    const stored = JSON.stringify([await prisma.accountToken.findMany(), await prisma.outboxMessage.findMany(), await prisma.auditEvent.findMany({ where: { target: app.userId } })]);
    expect(stored).not.toContain(token);
  });

  it('SEC-PR-03 no enumeration: an unknown, a disabled and a known address get the same status and page; only the known one gets mail', async () => {
    const { app, config } = await newApp();
    const disabled = await seed(server.env, { redirectUri: REDIRECT_URI });
    await server.current.db.prisma.user.update({ where: { id: disabled.userId }, data: { disabled: true } });
    const answers = [];
    for (const email of [`unknown-${Date.now()}@example.com`, disabled.email, app.email]) {
      const ua = new UserAgent();
      const form = await forgotForm(ua, config);
      const res = await ua.submit(form.url, form.html, form.action, { email });
      answers.push({ status: res.res.status, page: (await res.res.text()).replaceAll(email, 'EMAIL').replace(/\/interaction\/[^/"?]+/g, '/interaction/UID') });
    }
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    await mailbox.next(app.email);
    expect(await server.current.db.prisma.outboxMessage.count({ where: { recipient: disabled.email } })).toBe(0);
  });

  it('SEC-PR-04 an address is sent at most three links per quarter hour, however often it is asked for; the page does not change', async () => {
    const { app, config } = await newApp();
    const pages = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const ua = new UserAgent();
      const form = await forgotForm(ua, config);
      pages.add((await ua.submit(form.url, form.html, form.action, { email: app.email })).res.status);
    }
    expect([...pages]).toEqual([200]);
    // The last request's work is done after its answer: wait for the three messages, then for quiet.
    await expect.poll(() => server.current.db.prisma.outboxMessage.count({ where: { recipient: app.email } })).toBe(3);
    const audit = await server.current.db.prisma.auditEvent.count({ where: { action: 'user.password_reset_requested', target: app.userId } });
    expect(audit).toBe(3);
  });

  it('SEC-PR-05 the reset forms need their CSRF token and our origin: without the token, or from another site, 403 and nothing changes', async () => {
    const { app, config } = await newApp();
    const ua = new UserAgent();
    const form = await forgotForm(ua, config);
    expect((await post(ua, form.action, { email: app.email })).status).toBe(403);
    expect((await post(ua, form.action, { _csrf: csrfToken(form.html), email: app.email }, 'https://evil.example.com')).status).toBe(403);
    const link = await linkFor(app.email, config);
    const html = await (await ua.request(link)).text();
    expect((await post(ua, link, { password: 'an attacker passphrase' })).status).toBe(403);
    expect((await post(ua, link, { _csrf: csrfToken(html), password: 'an attacker passphrase' }, 'https://evil.example.com')).status).toBe(403);
    // A token of another page (the sign-in's) does not fit the reset form either.
    expect((await post(ua, link, { _csrf: csrfToken(form.html), password: 'an attacker passphrase' })).status).toBe(403);
    expect((await fetch(link)).status).toBe(200);
  });

  it('SEC-PR-06 a reset ends every session and refresh token, and the browsers trusted before are strangers again', async () => {
    const { app, config } = await newApp();
    const ua = new UserAgent();
    const { tokens } = await loginAndExchange(ua, config, { login: { email: app.email, password: app.password }, scope: 'openid offline_access', prompt: 'consent' });
    const link = await linkFor(app.email, config);
    const html = await (await ua.request(link)).text();
    expect((await post(ua, link, { _csrf: csrfToken(html), password: 'the new passphrase here' })).status).toBeLessThan(400);
    const refresh = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }),
    });
    expect(refresh.status).toBe(400);
    const silent = await authorize(ua, config, { prompt: 'none', consent: false, scope: 'openid' });
    expect(silent.callbackUrl.searchParams.get('error')).toBe('login_required');
    // The device cookie of that browser no longer exempts it from the account's lockout.
    const device = [...ua.cookies].find(([name]) => name === 'idp_device');
    expect(device).toBeDefined();
    for (let i = 0; i < 3; i++) {
      const started = await authorize(ua, config, { consent: false, prompt: 'login consent' });
      const page = await started.last.res.text();
      await ua.submit(started.last.url, page, formAction(page, '/login'), { email: app.email, password: 'wrong guess' });
    }
    const started = await authorize(ua, config, { consent: false, prompt: 'login consent' });
    const page = await started.last.res.text();
    const locked = await ua.submit(started.last.url, page, formAction(page, '/login'), { email: app.email, password: 'the new passphrase here' }, REDIRECT_URI);
    expect(locked.res.status).toBe(429);
  });

  it('SEC-PR-07 where a reset leads back to is stored with the link, never read from the address: an added return address is ignored', async () => {
    const { app, config } = await newApp();
    const link = await linkFor(app.email, config);
    const ua = new UserAgent();
    const tampered = `${link}?return_to=https://evil.example.com/&returnTo=//evil.example.com`;
    const html = await (await ua.request(tampered)).text();
    const res = await post(ua, tampered, { _csrf: csrfToken(html), password: 'yet another passphrase' });
    const location = res.headers.get('location');
    if (location) expect(new URL(location, server.issuer).origin).toBe(server.issuer);
    expect(await res.text()).not.toContain('evil.example.com');
  });
});
